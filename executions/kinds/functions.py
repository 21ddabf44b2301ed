"""Retrying a function execution (seed 000).

Retryable: the execution did not succeed, is not still running and was not retried already (retry
the newest to go on). A retry appends a NEW execution with the original payload and the definition
that ran first (handler, params, version, timeout), `retryCount` + 1 and `retry_of` = the original;
the original is kept. A single retry then runs synchronously in the caller (services.py); a bulk
retry queues the new executions for the workers.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .. import engine
from ..models import FunctionExecution, Kind
from ..tenancy import Actor
from . import Retried

KIND = Kind.FUNCTION
PERMISSION = "functions:retry"
RETRYABLE = ("failed", "timeout")


def reason(obj: FunctionExecution) -> str | None:
    if obj.status == "success":
        return "Cannot retry successful execution"
    if obj.status == "running":
        return "Cannot retry an execution that is still running"
    # The reverse accessor: no query when the caller selected it (the console's inbox does).
    retried_by = getattr(getattr(obj, "retried_by", None), "pk", None)
    if retried_by:
        return f"Execution was already retried as {retried_by}"
    return None


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE, retried_by__isnull=True)


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    counts = {
        "already retried": qs.filter(status__in=RETRYABLE, retried_by__isnull=False).count(),
        "succeeded": qs.filter(status="success").count(),
        "still running": qs.filter(status="running").count(),
    }
    return {k: v for k, v in counts.items() if v}


def retry(
    actor: Actor,
    ids: list[str],
    *,
    queued: bool = True,
    current_definition: bool = False,
    **options,
) -> list[Retried]:
    originals = list(
        retryable(FunctionExecution.objects.select_for_update(of=("self",)), actor)
        .filter(pk__in=ids, tenant=actor.tenant)
        .select_related("function")
    )
    invoked_by = "api_key" if actor.api_key is not None else "manual"
    new = FunctionExecution.objects.bulk_create(
        FunctionExecution(
            tenant=actor.tenant,
            function=o.function,
            payload=o.payload,
            invoked_by=invoked_by,
            retry_count=o.retry_count + 1,
            retry_of=o,
            **(
                {
                    "handler": o.function.handler,
                    "params": o.function.params,
                    "function_version": o.function.version,
                    "timeout_ms": o.function.timeout_ms,
                }
                if current_definition
                else {
                    "handler": o.handler,
                    "params": o.params,
                    "function_version": o.function_version,
                    "timeout_ms": o.timeout_ms,
                }
            ),
        )
        for o in originals
    )
    if queued:
        from ..tasks import run_function_execution

        for execution in new:
            engine.enqueue_on_commit(run_function_execution, execution.pk)
    return [
        Retried(target_id=o.pk, new_id=n.pk, status_before=o.status, status_after="running")
        for o, n in zip(originals, new, strict=True)
    ]
