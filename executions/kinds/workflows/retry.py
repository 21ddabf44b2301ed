"""Retrying a workflow execution (seed 003): resume the same execution from its failure points.

Retryable: FAILED, TIMED_OUT or TERMINATED. The execution goes back to RUNNING (one conditional
UPDATE; its `attempt` is the fencing token of the executor) after its tasks' state is copied to the
Attempt history. Exactly the non-optional tasks that ended CANCELED, FAILED,
FAILED_WITH_TERMINAL_ERROR or TIMED_OUT are scheduled again, each with exactly one more attempt
than it has used; tasks that never ran because of them are still SCHEDULED and run once their
dependencies complete; completed tasks keep their output and do not run again; optional tasks are
not retried. The retried tasks run as the identity of the session whose nonce authorised the retry.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from django.db.models import F, QuerySet
from django.utils import timezone

from ...models import Kind, WorkflowExecution, WorkflowTaskExecution
from ...queueing import enqueue_on_commit
from ..base import ANY, Retried, Rule, by_status, copy_to_history
from .run import advance_workflow

if TYPE_CHECKING:
    from ...tenancy import Actor

RETRYABLE = ("FAILED", "TIMED_OUT", "TERMINATED")
RESETS_TO = "RUNNING"


def reason(obj: WorkflowExecution) -> str | None:
    if obj.status in RETRYABLE:
        return None
    return (
        f"Workflow execution is {obj.status}; only FAILED, TIMED_OUT or TERMINATED executions "
        "can be retried"
    )


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE)


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    return by_status(qs, RETRYABLE)


def retry(
    actor: Actor,
    ids: list[str],
    *,
    run_as: str = "",
    nonce_session: int | None = None,
    input=ANY,  # noqa: A002 - the operator's edited input (executions/retry_input.py)
    bulk_audit: int | None = None,
    **options,
) -> list[Retried]:
    """`input`: the execution's new input (the audit row keeps the one it had)."""
    rows = list(
        WorkflowExecution.objects.select_for_update()
        .filter(pk__in=ids, tenant=actor.tenant, status__in=RETRYABLE)
        .values(
            "pk",
            "status",
            "attempt",
            "error_message",
            "error_stack",
            "reason_for_incompletion",
            "start_time",
            "end_time",
        )
    )
    if not rows:
        return []
    locked = [r["pk"] for r in rows]
    tasks = defaultdict(list)
    for t in WorkflowTaskExecution.objects.filter(execution_id__in=locked).values(
        "execution_id", "task_external_id", "status", "attempts", "error_message", "output"
    ):
        tasks[t["execution_id"]].append(
            {k: t[k] for k in ("task_external_id", "status", "attempts", "error_message")}
        )
    now = timezone.now()
    copy_to_history(
        actor,
        Kind.WORKFLOW,
        rows,
        now,
        bulk_audit,
        started_at=lambda r: r["start_time"],
        finished_at=lambda r: r["end_time"],
        details=lambda r: {
            "reasonForIncompletion": r["reason_for_incompletion"],
            "tasks": tasks[r["pk"]],
            "retriedBy": actor.label,
            "runAs": run_as or actor.label,
            "session": nonce_session,
        },
    )
    WorkflowExecution.objects.filter(pk__in=locked, status__in=RETRYABLE).update(
        status=RESETS_TO,
        attempt=F("attempt") + 1,
        end_time=None,
        reason_for_incompletion=None,
        error_message=None,
        error_stack=None,
        updated_at=now,
        **({} if input is ANY else {"input": input}),
    )
    WorkflowTaskExecution.objects.filter(
        execution_id__in=locked, status__in=WorkflowTaskExecution.FINAL_BAD, is_optional=False
    ).update(
        status="SCHEDULED",
        max_attempts=F("attempts") + 1,
        run_as=run_as or actor.label,
        ended_at=None,
        lease_owner="",
        lease_expires_at=None,
    )
    for pk in locked:
        enqueue_on_commit(advance_workflow, str(pk))
    return [
        Retried(
            target_id=str(r["pk"]),
            new_id=str(r["pk"]),
            status_before=r["status"],
            status_after=RESETS_TO,
        )
        for r in rows
    ]


RULE = Rule(reason, retryable, not_retryable, retry)
