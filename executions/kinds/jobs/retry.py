"""Retrying a job (seed 002): a clone.

Retryable: the job is finished (`completed` or `failed`) and no earlier clone of it is still in
flight; jobs in flight (`unprocessed`, `processing`) are refused. A finished job may be cloned
again, e.g. to another host after a clone failed on `_any`. The caller needs `jobs:write` AND the
permission of the original operation type (re-running `command.exec` needs `command:execute`):
seed 002's product lets anyone with `jobs:write` re-run any job, Redrive does not. The clone has
the same operation, status `unprocessed`, revision 1, the given target host or `_any`, and names
its original; the original keeps its state, gets a `retried` event naming the clone and names
the clone as its latest retry (`retried_by`). Two racing retries: as for function executions
(kinds/functions.py), the second finds the first's clone in flight (job_one_retry_in_flight).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from ... import handlers
from ...errors import InvalidInput
from ...models import Job
from ...validation import HOSTNAME_RE
from .. import base
from ..base import ANY, Retried, Rule
from .run import create_jobs, mark_jobs

if TYPE_CHECKING:
    from ...tenancy import Actor

PERMISSION = "jobs:write"
RETRYABLE = ("completed", "failed")
IN_FLIGHT = Job.IN_FLIGHT


def operation_permission(op_type: str) -> str:
    try:
        return handlers.operation(op_type).permission
    except handlers.HandlerNotFound:
        return PERMISSION


def _forbidden_types(actor: Actor) -> list[str]:
    """Only command.exec needs more than jobs:write (every handler type needs just that)."""
    needs = operation_permission(handlers.COMMAND_OPERATION)
    return [] if actor.can(needs) else [handlers.COMMAND_OPERATION]


def reason(obj: Job) -> str | None:
    if obj.status not in RETRYABLE:
        return f"Job is still in flight (status {obj.status})"
    return base.latest_retry_in_flight(obj, "Job")


retried_meanwhile = base.retried_meanwhile("Job")


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return (
        qs.filter(status__in=RETRYABLE)
        .exclude(retried_by__status__in=IN_FLIGHT)
        .exclude(operation_type__in=_forbidden_types(actor))
    )


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    finished = qs.filter(status__in=RETRYABLE)
    counts = {
        "still in flight": qs.exclude(status__in=RETRYABLE).count(),
        "retry still in flight": finished.filter(retried_by__status__in=IN_FLIGHT).count(),
    }
    for op_type in _forbidden_types(actor):
        n = (
            finished.exclude(retried_by__status__in=IN_FLIGHT)
            .filter(operation_type=op_type)
            .count()
        )
        if n:
            counts[f"needs permission {operation_permission(op_type)}"] = n
    return {k: v for k, v in counts.items() if v}


def retry(
    actor: Actor,
    ids: list[str],
    *,
    target_hostname: str | None = None,
    seen_retry=ANY,
    input=ANY,  # noqa: A002 - the operator's edited operation (executions/retry_input.py)
    **options,
) -> list[Retried]:
    """`seen_retry`: for a single retry, the latest clone its caller saw when it looked the job
    up; if another request has cloned it since, this one clones nothing. `input`: the operation
    (same type, edited data) the clone runs instead of the original's."""
    target = target_hostname or Job.ANY_HOST
    if not HOSTNAME_RE.match(target):
        raise InvalidInput("target_hostname must be a valid hostname", field="target_hostname")
    # Lock, then decide: the locked rows are as the last retry committed them.
    originals = list(
        Job.objects.select_for_update(of=("self",))
        .filter(pk__in=ids, tenant=actor.tenant, status__in=RETRYABLE)
        .exclude(operation_type__in=_forbidden_types(actor))
    )
    originals = base.without_retry_in_flight(originals)
    if seen_retry is not ANY:
        originals = [o for o in originals if o.retried_by_id == seen_retry]
    if not originals:
        return []
    clones = create_jobs(
        actor.tenant,
        [(o.operation if input is ANY else input, o) for o in originals],
        target_hostname=target,
    )
    mark_jobs(
        {
            o.pk: {"new_job_id": str(c.pk), "by": actor.label}
            for o, c in zip(originals, clones, strict=True)
        },
        "retried",
        retried_by=base.retry_in_flight(Job),
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


RULE = Rule(reason, retryable, not_retryable, retry)
