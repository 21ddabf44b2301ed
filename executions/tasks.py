"""Thin django.tasks entry points: load by id, call the engine or a service. Nothing else."""

from __future__ import annotations

import os
import socket

from django.tasks import task

from . import engine


def worker_hostname() -> str:
    return os.environ.get("REDRIVE_WORKER_HOSTNAME") or socket.gethostname()


@task()
def run_function_execution(execution_id: str) -> None:
    engine.execute_function(execution_id)


@task()
def run_automation_executions(execution_ids: list[str]) -> None:
    engine.run_automation_executions(execution_ids)


@task()
def run_job(job_id: str) -> None:
    engine.run_job(job_id, worker_hostname())


@task()
def advance_workflow(execution_id: str) -> None:
    engine.advance_workflow(execution_id)


@task()
def execute_run(run_id: str) -> None:
    engine.execute_run(run_id)


@task()
def reap_lost_attempts() -> dict:
    return {str(k): v for k, v in engine.reap().items()}


@task()
def run_bulk_retry(bulk_id: str) -> None:
    from . import services

    services.run_bulk_retry(bulk_id)
