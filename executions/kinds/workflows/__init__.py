"""Workflow executions (seed 003): retry.py (the retry rule: resume from the failure points),
run.py (how an execution advances), sessions.py (the nonce that authorises a retry)."""

from __future__ import annotations

from ...models import Kind, WorkflowExecution
from ..base import KindSpec
from . import retry, run, sessions, shown

KIND = KindSpec(
    name=Kind.WORKFLOW,
    label="Workflow execution",
    model=WorkflowExecution,
    failed_statuses=("FAILED", "TIMED_OUT", "TERMINATED"),
    retryable_statuses=retry.RETRYABLE,
    in_flight=("RUNNING",),
    success_statuses=("COMPLETED",),
    time_field="updated_at",
    name_field="workflow__external_id",
    name_label="workflow",
    count_source="workflow_id::text",
    permission="workflowOrchestrationACL:WRITE",
    read_permission="workflowOrchestrationACL:READ",
    not_found="Workflow execution not found",
    rule=retry.RULE,
    shown=shown.WorkflowShown(),
    reap=run.reap,
    authorise=sessions.authorise,
    secret_options=("nonce",),
    audit_options=("run_as",),
    status_words={
        "RUNNING": "running",
        "COMPLETED": "succeeded",
        "FAILED": "failed",
        "TIMED_OUT": "timed out",
        "TERMINATED": "terminated",
    },
    resets_to=retry.RESETS_TO,
)
