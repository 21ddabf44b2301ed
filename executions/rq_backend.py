"""The RQ (Redis) django.tasks backend, for many workers on many machines.

django-tasks-rq limits tasks to the queues named in RQ_QUEUES; Redrive's job queues are made per
target host (`host-<name>`), so this backend accepts any queue name (settings.RQ_QUEUES maps every
name to the same Redis).
"""

from __future__ import annotations

from django_tasks_rq.backend import RQBackend


class RedriveRQBackend(RQBackend):
    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        self.queues = set()  # any queue: job queues are created per target host
