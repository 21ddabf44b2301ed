"""The RQ (Redis) django.tasks backend, for many workers on many machines.

django-tasks-rq limits tasks to the queues named in RQ_QUEUES; Redrive's job queues are made per
target host (`host-<name>`), so this backend accepts any queue name (settings.RQ_QUEUES maps every
name to the same Redis).

Its queues give every job retries (RedeliveringQueue), RQ's counterpart of the database backend's
given-back tasks (executions/heartbeats.py): RQ requeues a job whose work-horse died, and one a
dead worker left behind once another worker's maintenance finds it abandoned.
"""

from __future__ import annotations

from django_rq.queues import DjangoRQ
from django_tasks_rq.backend import RQBackend
from rq import Retry


class RedriveRQBackend(RQBackend):
    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        self.queues = set()  # any queue: job queues are created per target host


class RedeliveringQueue(DjangoRQ):
    """Every job may run up to MAX_DELIVERIES times. Running a task again is safe: each claims its
    work with a conditional UPDATE, so what a dead worker had claimed (failed as "worker lost"
    once its lease expires) does not run again, and the rest runs once. No interval: Redrive's
    workers run without RQ's scheduler."""

    def create_job(self, *args, retry: Retry | None = None, **kwargs):
        from .heartbeats import MAX_DELIVERIES

        return super().create_job(*args, retry=retry or Retry(max=MAX_DELIVERIES - 1), **kwargs)
