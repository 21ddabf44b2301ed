"""The task queues and the workers that serve them, for the console's workers page; and pausing
a queue.

A paused queue keeps its tasks: Redrive's workers only stop asking for them. Each worker looks at
the paused queues every PAUSE_CHECK_SECONDS (`follow_pauses`) and asks its backend only for the
others: django-tasks-db's Worker reads its `queue_names` on every look; on RQ the queue class asks
Redis only for the queues this process has not seen paused (rq_backend.PausingQueue). The
worker records what it asks for in its heartbeat, so the page (and a test) sees when a pause took.

Queues and workers are shared by every tenant: any signed-in console user sees them (never which
tenant's executions a worker runs: only the task's name), and only the deployment's staff may pause
one, as a pause stops every tenant's work (`may_pause`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Case, Count, Min, Value, When
from django.db.models.functions import Now
from django.utils import timezone

from . import leases
from .errors import InvalidInput, PermissionDenied
from .models import AuditEvent, QueuePause, WorkerHeartbeat

# How soon a pause (or a resume) takes in every worker: one indexed read of a tiny table per look.
PAUSE_CHECK_SECONDS = 0.5
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,32}$")  # django-tasks-db's queue names: <= 32 chars


# --- pausing ---------------------------------------------------------------------------------


def may_pause(user) -> bool:
    """The deployment's staff only: a tenant's admin role does not reach other tenants' work."""
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def paused() -> dict[str, QueuePause]:
    return {p.queue_name: p for p in QueuePause.objects.all()}


def unpaused(names: Iterable[str]) -> list[str]:
    names = list(names)
    stopped = set(QueuePause.objects.filter(queue_name__in=names).values_list("pk", flat=True))
    return [n for n in names if n not in stopped]


def queue_name(value) -> str:
    if not isinstance(value, str) or not QUEUE_NAME.fullmatch(value):
        raise InvalidInput(
            "queue must be a queue name (letters, digits, _ . : -; at most 32)", field="queue"
        )
    return value


def set_paused(actor, name: str, pause: bool) -> bool:
    """Pause or resume the queue `name` as `actor` (a console Actor), audited in the actor's
    tenant. Returns False when it already was so (nothing written)."""
    if not may_pause(actor.user):
        raise PermissionDenied("queues:pause")
    name = queue_name(name)
    with transaction.atomic():
        if pause:
            _, changed = QueuePause.objects.get_or_create(
                queue_name=name, defaults={"paused_by": actor.label[:200]}
            )
        else:
            changed = QueuePause.objects.filter(queue_name=name).delete()[0] > 0
        if changed:
            AuditEvent.objects.create(
                tenant=actor.tenant,
                user=actor.user,
                actor=actor.label,
                source=actor.source,
                action="queue.pause" if pause else "queue.resume",
                kind="queue",
                target_id=name,
                request_id=actor.request_id,
                ip=actor.ip,
                details={"queue": name},
            )
    return changed


def follow_pauses(names: list[str], heartbeat, apply: Callable[[list[str]], None]) -> None:
    """In a worker: now and every PAUSE_CHECK_SECONDS, `apply` the queues of `names` that are
    not paused (what the worker asks its backend for), then record them in its heartbeat."""
    written: list = []

    def look() -> None:
        asked = unpaused(names)
        apply(asked)
        now = [heartbeat.worker_id, asked]
        # A write only when it changed (or the row was not there yet: the first beat makes it).
        if written != now and WorkerHeartbeat.objects.filter(pk=now[0]).update(queues=asked):
            written[:] = now

    look()
    leases.run_every(PAUSE_CHECK_SECONDS, look, "pauses")


# --- what the page shows ---------------------------------------------------------------------


@dataclass
class QueueStats:
    name: str
    depth: int = 0  # waiting to be taken
    running: int = 0
    oldest: datetime | None = None  # when the oldest waiting task was enqueued
    pause: QueuePause | None = None
    served_by: int = 0  # live workers asking for it

    @property
    def oldest_age(self) -> timedelta | None:
        return timezone.now() - self.oldest if self.oldest else None


@dataclass
class WorkerRow:
    worker_id: str
    hostname: str
    pid: int
    started_at: datetime
    seen_at: datetime
    live: bool
    queues: list[str]
    current: list[tuple[str, datetime | None]] = field(default_factory=list)  # (task, since)


def workers() -> list[WorkerRow]:
    """Every worker with a heartbeat row (live ones first), with what it runs now."""
    lease = timedelta(seconds=leases.lease_seconds())
    rows = [
        WorkerRow(
            worker_id=h.worker_id,
            hostname=h.hostname,
            pid=h.pid,
            started_at=h.started_at,
            seen_at=h.seen_at,
            live=h.fresh,
            queues=list(h.queues or []),
        )
        for h in WorkerHeartbeat.objects.annotate(
            fresh=_younger_than(lease),
        ).order_by("-fresh", "hostname", "started_at")
    ]
    current = _rq_current if settings.REDRIVE_TASKS == "rq" else _db_current
    current({r.worker_id: r for r in rows})
    return rows


def _younger_than(age: timedelta):
    return Case(
        When(seen_at__gte=Now() - age, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def _task_name(path: str) -> str:
    """`executions.kinds.jobs.run.run_job` -> `jobs.run_job`: what runs, never whose."""
    parts = path.split(".")
    if len(parts) >= 4 and parts[:2] == ["executions", "kinds"]:
        return f"{parts[2]}.{parts[-1]}"
    return parts[-1]


def _db_current(by_id: dict[str, WorkerRow]) -> None:
    from django_tasks_db.models import DBTaskResult

    for worker_ids, path, started in DBTaskResult.objects.running().values_list(
        "worker_ids", "task_path", "started_at"
    ):
        row = by_id.get(worker_ids[-1]) if worker_ids else None
        if row is not None:
            row.current.append((_task_name(path), started))


def _rq_current(by_id: dict[str, WorkerRow]) -> None:
    from rq import Worker

    from .rq_backend import connection

    redis = connection()
    for worker in Worker.all(connection=redis):
        row = by_id.get(worker.name)
        job = worker.get_current_job() if row is not None else None
        if job is not None:
            row.current.append((_task_name(job.func_name), job.started_at))


def queues(rows: list[WorkerRow]) -> list[QueueStats]:
    """Every queue that has tasks waiting or running, is asked for by a live worker, is paused,
    or is one every worker serves; by name."""
    stats: dict[str, QueueStats] = {}

    def get(name: str) -> QueueStats:
        return stats.setdefault(name, QueueStats(name))

    from executions import queueing
    from executions.kinds.jobs.run import ANY_HOST

    for name in ("default", queueing.host_queue(ANY_HOST)):
        get(name)
    for row in rows:
        for name in row.queues if row.live else ():
            get(name).served_by += 1
    for name, pause in paused().items():
        get(name).pause = pause
    if settings.REDRIVE_TASKS == "rq":
        _rq_depths(get)
    else:
        _db_depths(get)
    return sorted(stats.values(), key=lambda s: s.name)


def _db_depths(get: Callable[[str], QueueStats]) -> None:
    from django_tasks_db.models import DBTaskResult

    for r in (
        DBTaskResult.objects.ready()
        .order_by()
        .values("queue_name")
        .annotate(n=Count("pk"), oldest=Min("enqueued_at"))
    ):
        s = get(r["queue_name"])
        s.depth, s.oldest = r["n"], r["oldest"]
    for r in DBTaskResult.objects.running().order_by().values("queue_name").annotate(n=Count("pk")):
        get(r["queue_name"]).running = r["n"]


def _rq_depths(get: Callable[[str], QueueStats]) -> None:
    from rq import Queue

    from .rq_backend import connection

    for queue in Queue.all(connection=connection()):
        s = get(queue.name)
        s.depth = queue.count
        s.running = queue.started_job_registry.count
        first = queue.get_jobs(offset=0, length=1)
        when = first[0].enqueued_at if first else None
        if when is not None:
            s.oldest = when if when.tzinfo else when.replace(tzinfo=timezone.UTC)
