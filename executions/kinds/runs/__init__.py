"""Workflow runs (seed 004): retry.py (the retry rule: a new run from the failure point), run.py
(how a run executes its nodes)."""

from __future__ import annotations

from ...models import Kind, Run
from ..base import KindSpec
from . import retry, run, shown

KIND = KindSpec(
    name=Kind.RUN,
    label="Run",
    model=Run,
    failed_statuses=("failure", "cancelled", "partial"),
    retryable_statuses=retry.RETRYABLE,
    in_flight=("running", "waiting"),
    success_statuses=("success",),
    time_field="started_at",
    name_field="workflow_id",
    name_label="workflow",
    count_source="workflow_id",
    permission="runs:write",
    read_permission="runs:read",
    not_found="Run not found",
    rule=retry.RULE,
    shown=shown.RunShown(),
    reap=run.reap,
    retried_by=retry.retried_by,
    status_words={
        "running": "running",
        "waiting": "waiting",
        "success": "succeeded",
        "partial": "partial",
        "failure": "failed",
        "cancelled": "cancelled",
    },
)
