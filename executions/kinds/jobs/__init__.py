"""Jobs (seed 002): retry.py (the retry rule: a clone), run.py (how a job runs on its host)."""

from __future__ import annotations

from typing import Any

from ...models import Job, Kind
from ..base import KindSpec
from . import retry, run, shown


def _one_options(obj: Job) -> dict[str, Any]:
    # Retry the job as this request found it: if another clones it meanwhile, that one wins.
    return {"seen_retry": obj.retried_by_id}


def _needs(obj: Job) -> str:
    return retry.operation_permission(obj.operation_type)


KIND = KindSpec(
    name=Kind.JOB,
    label="Job",
    model=Job,
    failed_statuses=("failed",),
    retryable_statuses=retry.RETRYABLE,
    in_flight=Job.IN_FLIGHT,
    success_statuses=("completed",),
    time_field="updated_at",
    name_field="operation_type",
    name_label="operation",
    count_source="operation_type",
    permission=retry.PERMISSION,
    read_permission="jobs:read",
    not_found="Job not found",
    rule=retry.RULE,
    shown=shown.JobShown(),
    reap=run.reap,
    needs=_needs,
    one_options=_one_options,
    audit_options=("target_hostname",),
    retried_meanwhile=retry.retried_meanwhile,
    status_words={
        "unprocessed": "queued",
        "processing": "running",
        "completed": "succeeded",
        "failed": "failed",
    },
)
