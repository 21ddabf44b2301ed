"""Thin django.tasks entry points: load by id, call the engine or a service. Nothing else."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from functools import wraps

from django.tasks import task

from . import engine, leases


def releasing_leases(fn: Callable) -> Callable:
    """A worker runs one task at a time: when a task ends (or raises) it holds no attempt."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            leases.keeper.release_all()

    return wrapper


def worker_hostname() -> str:
    return os.environ.get("REDRIVE_WORKER_HOSTNAME") or socket.gethostname()


@task()
@releasing_leases
def run_function_execution(execution_id: str) -> None:
    engine.execute_function(execution_id)


@task()
@releasing_leases
def run_automation_executions(execution_ids: list[str]) -> None:
    engine.run_automation_executions(execution_ids)


@task()
@releasing_leases
def run_job(job_id: str) -> None:
    engine.run_job(job_id, worker_hostname())


@task()
@releasing_leases
def advance_workflow(execution_id: str) -> None:
    engine.advance_workflow(execution_id)


@task()
@releasing_leases
def execute_run(run_id: str) -> None:
    engine.execute_run(run_id)


@task()
@releasing_leases
def reap_lost_attempts() -> dict:
    return {str(k): v for k, v in engine.reap().items()}


@task()
@releasing_leases
def run_bulk_retry(bulk_id: str) -> None:
    from . import services

    services.run_bulk_retry(bulk_id)
