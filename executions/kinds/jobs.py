"""Retrying a job (seed 002): a clone.

Retryable: the job is finished (`completed` or `failed`) and was not cloned already; jobs still in
flight (`unprocessed`, `processing`) are refused. The caller needs `jobs:write` AND the permission
of the original operation type (re-running `command.exec` needs `command:execute`): seed 002's
product lets anyone with `jobs:write` re-run any job, Redrive does not. The clone has the same
operation, status `unprocessed`, revision 1, the given target host or `_any`, and names its
original; the original keeps its state and gets a `retried` event naming the clone.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .. import engine, handlers
from ..errors import InvalidInput
from ..models import Job, Kind
from ..tenancy import Actor
from ..validation import HOSTNAME_RE
from . import Retried

KIND = Kind.JOB
PERMISSION = "jobs:write"
RETRYABLE = ("completed", "failed")


def operation_permission(op_type: str) -> str:
    try:
        return handlers.operation(op_type).permission
    except handlers.HandlerNotFound:
        return PERMISSION


def _forbidden_types(actor: Actor) -> list[str]:
    return [t for t, op in handlers.OPERATIONS.items() if not actor.can(op.permission)]


def reason(obj: Job) -> str | None:
    if obj.status not in RETRYABLE:
        return f"Job is still in flight (status {obj.status})"
    # The reverse accessor: no query when the caller selected it (the console's inbox does).
    retried_by = getattr(getattr(obj, "retried_by", None), "pk", None)
    if retried_by:
        return f"Job was already retried as {retried_by}"
    return None


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE, retried_by__isnull=True).exclude(
        operation_type__in=_forbidden_types(actor)
    )


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    counts = {
        "still in flight": qs.exclude(status__in=RETRYABLE).count(),
        "already retried": qs.filter(status__in=RETRYABLE, retried_by__isnull=False).count(),
    }
    for op_type in _forbidden_types(actor):
        n = qs.filter(status__in=RETRYABLE, retried_by__isnull=True, operation_type=op_type).count()
        if n:
            counts[f"needs permission {operation_permission(op_type)}"] = n
    return {k: v for k, v in counts.items() if v}


def retry(
    actor: Actor, ids: list[str], *, target_hostname: str | None = None, **options
) -> list[Retried]:
    target = target_hostname or Job.ANY_HOST
    if not HOSTNAME_RE.match(target):
        raise InvalidInput("target_hostname must be a valid hostname", field="target_hostname")
    originals = list(
        retryable(Job.objects.select_for_update(of=("self",)), actor).filter(
            pk__in=ids, tenant=actor.tenant
        )
    )
    if not originals:
        return []
    clones = engine.create_jobs(
        actor.tenant, [(o.operation, o) for o in originals], target_hostname=target
    )
    engine.mark_jobs(
        {
            o.pk: {"new_job_id": str(c.pk), "by": actor.label}
            for o, c in zip(originals, clones, strict=True)
        },
        "retried",
    )
    return [
        Retried(
            target_id=str(o.pk),
            new_id=str(c.pk),
            status_before=o.status,
            status_after="unprocessed",
        )
        for o, c in zip(originals, clones, strict=True)
    ]
