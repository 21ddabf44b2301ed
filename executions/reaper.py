"""The reaper: every kind fails its attempts whose worker stopped renewing their lease ("worker
lost"), so they reach the inbox and can be retried (each kind's run.reap). Workers run it every
third of a lease (manage.py worker), and as a task."""

from __future__ import annotations

import logging

from django.utils import timezone

from . import kinds
from .queueing import worker_task

log = logging.getLogger("redrive.engine")


def reap() -> dict[str, int]:
    """Fail every attempt whose worker stopped renewing its lease. Returns counts per kind."""
    now = timezone.now()
    counts = {kind.name: kind.reap(now) for kind in kinds.KINDS}
    if any(counts.values()):
        log.warning("reaped attempts whose worker was lost: %s", counts)
    return counts


@worker_task
def reap_lost_attempts() -> dict:
    return {str(k): v for k, v in reap().items()}
