"""Retrying a function execution (seed 000).

Retryable: the execution did not succeed, is not still running, and no earlier retry of it is
still running: a failed execution may be retried again later, each retry appending a new
execution. A retry appends a NEW execution with the original payload and the function's CURRENT
definition (fix the code, retry the failure: the fix runs; to run an older version, roll the
function back first), `retryCount` + 1 and `retry_of` = the original, which then names it as its
latest retry (`retried_by`); the original is kept, its snapshot the record of what ran then.
A function's retryPolicy retries a failed execution by itself the same way (retry_automatically),
up to `maxRetries` in its lineage, `backoffMs` later.

Two racing retries of one execution: the first locks it and retries; the second gets the lock
once the first has committed, finds its retry running and retries nothing (the partial unique
index fnexec_one_retry_running holds the same rule in the database). The new executions are
queued for the workers (a bulk retry's TASK_BATCH to a task); a single retry's caller then waits
for its result (services.py and KIND.after_one: run.wait_final). `queued=False` is for the demo's
seeding only, which runs the retry itself (no worker there): the new execution then holds a lease
from its creation on, so that the reaper fails it as "worker lost" if its creator dies before it
starts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ...models import FunctionExecution
from ...queueing import enqueue_on_commit
from .. import base
from ..base import ANY, Retried, Rule
from .run import TASK_BATCH, run_function_execution, run_function_executions, unclaimed_lease

if TYPE_CHECKING:
    from ...tenancy import Actor

RETRYABLE = ("failed", "timeout")
IN_FLIGHT = FunctionExecution.IN_FLIGHT
# What a retry does not copy from its original (the function's current definition runs, not the
# snapshot): not read under the lock, where decoding them was most of a sync retry's CPU.
NOT_RETRIED = (
    "handler",
    "params",
    "code",
    "environment",
    "result",
    "logs",
    "error_message",
    "error_stack",
)


def reason(obj: FunctionExecution) -> str | None:
    if obj.status == "success":
        return "Cannot retry successful execution"
    if obj.status in IN_FLIGHT:
        return "Cannot retry an execution that is still running"
    return base.latest_retry_in_flight(obj, "Execution")


retried_meanwhile = base.retried_meanwhile("Execution")


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE).exclude(retried_by__status__in=IN_FLIGHT)


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    counts = {
        "retry still running": qs.filter(
            status__in=RETRYABLE, retried_by__status__in=IN_FLIGHT
        ).count(),
        "succeeded": qs.filter(status="success").count(),
        "still running": qs.filter(status__in=IN_FLIGHT).count(),
    }
    return {k: v for k, v in counts.items() if v}


def retry(
    actor: Actor,
    ids: list[str],
    *,
    queued: bool = True,
    seen_retry=ANY,
    input=ANY,  # noqa: A002 - the operator's edited payload (executions/retry_input.py)
    **options,
) -> list[Retried]:
    """`seen_retry`: for a single retry, the latest retry its caller saw when it looked the
    execution up; if another request has retried it since, this one retries nothing. `input`:
    the payload the new execution runs with instead of the original's."""
    # Lock, then decide: the locked rows are as the last retry committed them.
    originals = list(
        FunctionExecution.objects.select_for_update(of=("self",))
        .filter(pk__in=ids, tenant=actor.tenant, status__in=RETRYABLE)
        .select_related("function")
        .defer(*NOT_RETRIED)
    )
    originals = base.without_retry_in_flight(originals)
    if seen_retry is not ANY:
        originals = [o for o in originals if o.retried_by_id == seen_retry]
    if not originals:
        return []
    invoked_by = "api_key" if actor.api_key is not None else "manual"
    new = _append_retries(originals, invoked_by, queued=queued, payload=input)
    return [
        Retried(target_id=o.pk, new_id=n.pk, status_before=o.status, status_after="running")
        for o, n in zip(originals, new, strict=True)
    ]


def _append_retries(
    originals: list[FunctionExecution],
    invoked_by: str | None,
    *,
    queued: bool = True,
    run_after=None,
    payload=ANY,
) -> list[FunctionExecution]:
    """The one place a retry is written: the originals are locked and retryable. `invoked_by`
    None: each retry is invoked as its original was."""
    definitions = [o.function.definition() for o in originals]
    new = FunctionExecution.objects.bulk_create(
        FunctionExecution(
            tenant_id=o.tenant_id,
            function=o.function,
            payload=o.payload if payload is ANY else payload,
            invoked_by=invoked_by or o.invoked_by,
            retry_count=o.retry_count + 1,
            retry_of=o,
            **definition,
            # Run by its creator right after the commit (the demo): held from here until its claim.
            **({} if queued else unclaimed_lease(definition["timeout_ms"])),
        )
        for o, definition in zip(originals, definitions, strict=True)
    )
    FunctionExecution.objects.filter(pk__in=[o.pk for o in originals]).update(
        retried_by=base.retry_in_flight(FunctionExecution)
    )
    if queued:
        ids = [execution.pk for execution in new]
        if len(ids) == 1 or run_after:
            # A single retry has its own task, whose finish wakes the waiting caller; an
            # automatic one may wait its backoff.
            task = run_function_execution.using(run_after=run_after) if run_after else None
            for execution_id in ids:
                enqueue_on_commit(task or run_function_execution, execution_id)
        else:
            for start in range(0, len(ids), TASK_BATCH):
                enqueue_on_commit(run_function_executions, ids[start : start + TASK_BATCH])
    return new


def retry_automatically(execution_id: str) -> FunctionExecution | None:
    """After a failed attempt (the worker that ran it): if the function's retryPolicy is enabled
    and the lineage has retries left, queue its retry `backoffMs` from now."""
    with transaction.atomic():
        original = (
            FunctionExecution.objects.select_for_update(of=("self",))
            .select_related("function")
            .filter(pk=execution_id, status__in=RETRYABLE, retried_by__isnull=True)
            .first()
        )
        if original is None:
            return None
        function = original.function
        if not (function.retry_enabled and function.is_active):
            return None
        if original.retry_count >= function.retry_max:
            return None
        backoff = timedelta(milliseconds=function.retry_backoff_ms)
        run_after = timezone.now() + backoff if function.retry_backoff_ms else None
        if run_after is not None and not run_function_execution.get_backend().supports_defer:
            run_after = None  # a backend that cannot defer runs it at once
        return _append_retries([original], None, run_after=run_after)[0]


RULE = Rule(reason, retryable, not_retryable, retry)
