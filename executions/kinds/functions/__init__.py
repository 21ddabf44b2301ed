"""Function executions (seed 000): retry.py (the retry rule), run.py (how one runs)."""

from __future__ import annotations

from typing import Any

from ...models import FunctionExecution, Kind
from ..base import KindSpec
from . import retry, run, shown


def _one_options(obj: FunctionExecution) -> dict[str, Any]:
    # Run the retry right after its commit, and answer its result (seed 000's contract); retry
    # the item as this request found it: if another retries it meanwhile, that one wins.
    return {"queued": False, "seen_retry": obj.retried_by_id}


def _after_one(new_id: Any, options: dict[str, Any]) -> None:
    if not options.get("queued", True):
        # After the commit, outside any transaction: a handler may take up to its timeout.
        run.execute(new_id)


KIND = KindSpec(
    name=Kind.FUNCTION,
    label="Function execution",
    model=FunctionExecution,
    failed_statuses=("failed", "timeout"),
    retryable_statuses=retry.RETRYABLE,
    in_flight=FunctionExecution.IN_FLIGHT,
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
)
