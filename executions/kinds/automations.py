"""Retrying an automation execution (seed 001).

Only `failed` executions. The same row goes back to `pending` in one conditional UPDATE, with its
completion, duration, error and action counters cleared; the attempt that failed is first copied to
the Attempt history (error, stack, logs, counters), the execution is queued for real, and
`automation.execution.retried` {executionId, tenantId, userId} is published after commit.
"""

from __future__ import annotations

from django.db.models import CharField, DateTimeField, F, QuerySet, UUIDField, Value
from django.db.models.functions import Cast, JSONObject
from django.utils import timezone

from .. import engine, events, sets
from ..models import Attempt, AutomationExecution, Kind
from ..tenancy import Actor
from . import Retried, by_status

KIND = Kind.AUTOMATION
PERMISSION = "automation:execute"
RETRYABLE = ("failed",)
# Worker batches: one django.tasks task runs this many executions (claimed in one UPDATE).
TASK_BATCH = 250


def reason(obj: AutomationExecution) -> str | None:
    if obj.status in RETRYABLE:
        return None
    return f"Only failed executions can be retried (status is {obj.status})"


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE)


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    return by_status(qs, RETRYABLE)


def retry(actor: Actor, ids: list[str], **options) -> list[Retried]:
    """Set-based: lock the failed rows among `ids`, copy them to the history, reset them."""
    candidates = AutomationExecution.objects.filter(
        pk__in=ids, tenant=actor.tenant, status__in=RETRYABLE
    )
    locked = [str(pk) for pk in candidates.select_for_update().values_list("pk", flat=True)]
    if not locked:
        return []
    now = timezone.now()
    rows = AutomationExecution.objects.filter(pk__any_of=locked)
    if sets.is_postgresql():
        # The history rows are copied inside the database (see executions/sets.py).
        sets.insert_select(Attempt, ATTEMPT_FIELDS, rows.values(**_attempt_values(actor, now)))
    else:
        Attempt.objects.bulk_create(
            Attempt(
                tenant=actor.tenant,
                kind=KIND,
                object_id=str(r["pk"]),
                number=r["attempt"],
                status=r["status"],
                error_message=r["error_message"],
                error_stack=r["error_stack"],
                logs=r["logs"],
                started_at=r["started_at"],
                finished_at=r["completed_at"],
                recorded_at=now,
                details={k: r[k] for k in COUNTERS},
            )
            for r in rows.values(
                "pk",
                "status",
                "attempt",
                "error_message",
                "error_stack",
                "logs",
                "started_at",
                "completed_at",
                *COUNTERS,
            )
        )
    rows.update(
        status="pending",
        attempt=F("attempt") + 1,
        completed_at=None,
        duration_ms=None,
        error_message=None,
        error_stack=None,
        failed_action_index=None,
        actions_successful=0,
        actions_failed=0,
        logs=[],
        updated_at=now,
        started_at=now,
    )
    from ..tasks import run_automation_executions

    for start in range(0, len(locked), TASK_BATCH):
        engine.enqueue_on_commit(run_automation_executions, locked[start : start + TASK_BATCH])
    user_id = str(actor.user.pk) if actor.user is not None else None
    events.emit_many(
        actor.tenant,
        "automation.execution.retried",
        [{"executionId": pk, "tenantId": str(actor.tenant.pk), "userId": user_id} for pk in locked],
    )
    return [
        Retried(target_id=pk, new_id=pk, status_before="failed", status_after="pending")
        for pk in locked
    ]


COUNTERS = (
    "duration_ms",
    "actions_total",
    "actions_successful",
    "actions_failed",
    "failed_action_index",
)
ATTEMPT_FIELDS = [
    "tenant_id",
    "kind",
    "object_id",
    "number",
    "status",
    "error_message",
    "error_stack",
    "logs",
    "details",
    "started_at",
    "finished_at",
    "recorded_at",
]


def _attempt_values(actor: Actor, now) -> dict:
    """The Attempt row of each execution, as expressions in ATTEMPT_FIELDS order."""
    return {
        "a_tenant": Value(actor.tenant.pk, output_field=UUIDField()),
        "a_kind": Value(KIND, output_field=CharField()),
        "a_object_id": Cast("pk", output_field=CharField()),
        "a_number": F("attempt"),
        "a_status": F("status"),
        "a_error_message": F("error_message"),
        "a_error_stack": F("error_stack"),
        "a_logs": F("logs"),
        "a_details": JSONObject(**{k: F(k) for k in COUNTERS}),
        "a_started_at": F("started_at"),
        "a_finished_at": F("completed_at"),
        "a_recorded_at": Value(now, output_field=DateTimeField()),
    }
