"""Automation executions (seed 001): retry.py (the retry rule), run.py (how a batch runs)."""

from __future__ import annotations

from typing import Any

from ...models import AutomationExecution, Kind
from ..base import KindSpec
from . import retry, run, shown


def _one_options(obj: AutomationExecution) -> dict[str, Any]:
    return {"rows": True}  # the retry answers with the row as it left it


KIND = KindSpec(
    name=Kind.AUTOMATION,
    label="Automation execution",
    model=AutomationExecution,
    failed_statuses=("failed", "timeout"),
    retryable_statuses=retry.RETRYABLE,
    in_flight=("pending", "running"),
    success_statuses=("completed",),
    time_field="updated_at",
    name_field="automation_rule__name",
    name_label="rule",
    count_source="automation_rule_id::text",
    permission="automation:execute",
    read_permission="automation:read",
    not_found="Automation execution not found",
    rule=retry.RULE,
    shown=shown.AutomationShown(),
    reap=run.reap,
    one_options=_one_options,
    # No pre-read: the retry's own locking statement finds the item (or, when it retries
    # nothing, the error path tells missing from not retryable), and answers with the row.
    finds_itself=True,
    one_statement=retry.one_statement,
    first_batch=retry.FIRST_BATCH,
    # The audit rows go in the retry's own statement on PostgreSQL.
    writes_audit=True,
    status_words={
        "pending": "queued",
        "running": "running",
        "completed": "succeeded",
        "failed": "failed",
        "cancelled": "cancelled",
        "timeout": "timed out",
        "skipped": "skipped",
    },
    resets_to=retry.RESETS_TO,
)
