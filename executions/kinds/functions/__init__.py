"""Function executions (seed 000): retry.py (the retry rule), run.py (how one runs)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ...errors import StillRunning
from ...models import FunctionExecution, Kind
from ..base import KindSpec
from . import retry, run, shown


def _one_options(obj: FunctionExecution | None) -> dict[str, Any]:
    # Retry the item as this request found it: if another retries it meanwhile, that one wins.
    # Then wait for its result (seed 000's contract).
    return {"wait": True, "seen_retry": obj.retried_by_id if obj is not None else None}


def _after_one(new_id: Any, options: dict[str, Any]) -> FunctionExecution | None:
    """A single retry answers its result: wait, outside any transaction, for the worker that
    runs it (never run here: user code stays out of the web server), up to the function's
    timeout and REDRIVE_SYNC_WAIT_GRACE_MS; then 504 with its id, the execution going on."""
    if not options.get("wait"):
        return None
    grace = settings.REDRIVE_SYNC_WAIT_GRACE_MS / 1000
    execution, seconds = run.wait_final(str(new_id), grace)
    if execution is None:
        raise StillRunning(str(new_id), seconds)
    return execution


KIND = KindSpec(
    name=Kind.FUNCTION,
    label="Function execution",
    model=FunctionExecution,
    failed_statuses=("failed", "timeout"),
    retryable_statuses=retry.RETRYABLE,
    in_flight=FunctionExecution.IN_FLIGHT,
    success_statuses=("success",),
    time_field="executed_at",
    name_field="function__name",
    name_label="function",
    count_source="function_id",
    permission="functions:retry",
    read_permission="functions:read",
    not_found="Execution not found",
    rule=retry.RULE,
    shown=shown.FunctionShown(),
    reap=run.reap,
    one_options=_one_options,
    after_one=_after_one,
    retried_meanwhile=retry.retried_meanwhile,
    status_words={
        "running": "running",
        "success": "succeeded",
        "failed": "failed",
        "timeout": "timed out",
    },
)
