"""Queueing work for the workers: what the kinds and the bulk retry import to define and enqueue
their django.tasks tasks. It imports nothing of Redrive's but the leases, so each task can live
with the code it runs (executions/kinds/<kind>/run.py, services.py) and no module needs to import
a task module that imports it back."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from functools import partial, wraps

from django.db import transaction
from django.tasks import task
from django_tasks_db.backend import DatabaseBackend

from . import leases


def worker_task(fn: Callable):
    """A django.tasks task that, when it ends (or raises), holds no attempt: a worker runs one
    task at a time."""

    @wraps(fn)
    def releasing_leases(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            leases.keeper.release_all()

    return task()(releasing_leases)


def worker_hostname() -> str:
    return os.environ.get("REDRIVE_WORKER_HOSTNAME") or socket.gethostname()


def host_queue(hostname: str) -> str:
    """The django.tasks queue a job for `hostname` goes to (queue names are at most 32 chars)."""
    name = f"host-{hostname}"
    if len(name) > 32:
        name = "host-" + hashlib.sha1(hostname.encode(), usedforsecurity=False).hexdigest()[:27]
    return name


def enqueue_on_commit(task, *args, queue_name: str | None = None) -> None:
    """Enqueue a django.tasks task so that it exists exactly when the surrounding transaction
    commits. With the database backend the task row is written in that very transaction (it
    commits or rolls back with it, and no crash between commit and enqueue can lose it); other
    backends (Redis) enqueue from an on_commit hook."""
    target = task.using(queue_name=queue_name) if queue_name else task
    if transaction.get_connection().in_atomic_block and isinstance(
        target.get_backend(), DatabaseBackend
    ):
        target.enqueue(*args)
    else:
        transaction.on_commit(partial(target.enqueue, *args))
