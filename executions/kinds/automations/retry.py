"""Retrying an automation execution (seed 001).

Only `failed` executions. The same row goes back to `pending` in one conditional UPDATE, with its
completion, duration, error and action counters cleared; the attempt that failed is first copied to
the Attempt history (error, stack, logs, counters), the execution is queued for real, and
`automation.execution.retried` {executionId, tenantId, userId} is published after commit.

On PostgreSQL the lock, the history copy, the reset, the audit rows (when the caller hands them
over) and the outbox rows are one statement per call (a data-modifying CTE, see
_retry_postgresql). The workers' tasks, one per TASK_BATCH items, are then enqueued through
django.tasks like any other task (enqueue_on_commit). Elsewhere (SQLite) the same steps run
as ORM statements.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import F, QuerySet
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend

from ... import events, sets
from ...models import Attempt, AuditEvent, AutomationExecution, Kind
from ...queueing import enqueue_on_commit
from ..base import ANY, Retried, Rule, by_status, copy_to_history, write_audit
from .run import run_automation_executions

if TYPE_CHECKING:
    from ...tenancy import Actor

RETRYABLE = ("failed",)
RESETS_TO = "pending"
# Worker batches: one django.tasks task runs this many executions (claimed in one UPDATE).
TASK_BATCH = 250
# A bulk retry's first batch (services._BatchSize): automations are fast enough to skip the
# 100-item probe of a kind's pace, which bench/bulk_retry.py's ramp-up paid for.
FIRST_BATCH = 2500
EVENT = "automation.execution.retried"


def reason(obj: AutomationExecution) -> str | None:
    if obj.status in RETRYABLE:
        return None
    return f"Only failed executions can be retried (status is {obj.status})"


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE)


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    return by_status(qs, RETRYABLE)


def retry(
    actor: Actor,
    ids: list[str],
    *,
    audit: dict | None = None,
    rows: bool = False,
    input=ANY,  # noqa: A002 - the operator's edited event data (executions/retry_input.py)
    bulk_audit: int | None = None,
    **options,
) -> list[Retried]:
    """Set-based: lock the failed rows among `ids`, copy them to the history, reset them, queue
    them, write their events and, given `audit` (the AuditEvent columns every row shares), their
    audit rows. `bulk_audit`: the audit row of the bulk retry they belong to, which their history
    rows name. With `rows`, each Retried carries the reset execution (Retried.obj). `input`:
    the execution's new event data, set in the retry's transaction (the caller's: services)."""
    if not ids:
        return []
    now = timezone.now()
    if sets.is_postgresql():
        locked, objs = _retry_postgresql(actor, ids, now, audit, rows, bulk_audit)
    else:
        locked = _retry_orm(actor, ids, now, bulk_audit)
        objs = {}
        if rows and locked:
            objs = {str(o.pk): o for o in AutomationExecution.objects.filter(pk__in=locked)}
    if not locked:
        return []
    if input is not ANY:
        AutomationExecution.objects.filter(pk__in=locked).update(trigger_data=input)
        for obj in objs.values():
            obj.trigger_data = input
    for start in range(0, len(locked), TASK_BATCH):
        enqueue_on_commit(run_automation_executions, locked[start : start + TASK_BATCH])
    if rows:
        retried = [Retried(pk, pk, "failed", RESETS_TO, objs[pk]) for pk in locked]
    else:
        retried = [Retried(pk, pk, "failed", RESETS_TO) for pk in locked]
    if audit is not None and not sets.is_postgresql():  # PostgreSQL wrote them in the statement
        write_audit(audit, retried)
    return retried


def one_statement(n: int) -> bool:
    """Whether retry() of n items writes in a single statement (so needs no transaction around
    it): on PostgreSQL when the tasks go to another backend (Redis), after the commit. The
    database backend writes each task's row in the retry's transaction, so it needs one."""
    return sets.is_postgresql() and not isinstance(
        run_automation_executions.get_backend(), DatabaseBackend
    )


def _payload(actor: Actor) -> dict:
    """The event payload's fields every row shares (executionId is the row's own)."""
    return {
        "tenantId": str(actor.tenant.pk),
        "userId": str(actor.user.pk) if actor.user is not None else None,
    }


def _retry_orm(actor: Actor, ids: list[str], now, bulk_audit: int | None) -> list[str]:
    candidates = AutomationExecution.objects.filter(
        pk__in=ids, tenant=actor.tenant, status__in=RETRYABLE
    )
    locked = [str(pk) for pk in candidates.select_for_update().values_list("pk", flat=True)]
    if not locked:
        return []
    rows = AutomationExecution.objects.filter(pk__in=locked)
    copy_to_history(
        actor,
        Kind.AUTOMATION,
        rows.values(
            "pk",
            "status",
            "attempt",
            "error_message",
            "error_stack",
            "logs",
            "started_at",
            "completed_at",
            *COUNTERS,
        ),
        now,
        bulk_audit,
        started_at=lambda r: r["started_at"],
        finished_at=lambda r: r["completed_at"],
        details=lambda r: {k: r[k] for k in COUNTERS},
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
    events.emit_many(actor.tenant, EVENT, [{"executionId": pk, **_payload(actor)} for pk in locked])
    return locked


def _retry_postgresql(
    actor: Actor, ids: list[str], now, audit: dict | None, rows: bool, bulk_audit: int | None
) -> tuple[list[str], dict[str, AutomationExecution]]:
    """One statement: `old` locks the failed rows among `ids` (in key order, so two bulk retries
    never deadlock) and hands their values, as they were, to the history INSERT, the audit and
    event INSERTs and the reset UPDATE (PostgreSQL 15 has no RETURNING old.*)."""
    table = connection.ops.quote_name(AutomationExecution._meta.db_table)
    loaded = sets.loader(AutomationExecution)
    parts: list[str] = []
    params: list = []
    if len(ids) == 1:
        # One key by equality: PostgreSQL's generic plan is then as good as a custom one, so the
        # prepared statement is planned once per connection, not on every API retry as with
        # `= ANY(array)` (bench/api.py; a test checks the plan counts).
        source, match = f"{table} e", "e.execution_id = %s::uuid"
        params.append(_uuid_text(ids[0]))
    else:
        # A batch's keys as a range too: thousands of keys in an array alone make the planner
        # read the whole table; with the range it walks the primary key from the first key to
        # the last, already in key order (bench/bulk_retry.py). Bulk batches come in key order,
        # so the range holds little else.
        parts.append("k AS (SELECT %s::uuid[] AS a)")
        params.append(_uuid_array(ids))
        source = f"{table} e, k"
        match = (
            "e.execution_id = ANY(k.a) AND e.execution_id "
            "BETWEEN (SELECT x FROM unnest(k.a) x ORDER BY x LIMIT 1) "
            "AND (SELECT x FROM unnest(k.a) x ORDER BY x DESC LIMIT 1)"
        )
    parts.append(
        # Table and column names from the model, every value a parameter.
        "old AS (SELECT e.execution_id, e.attempt, e.status, e.error_message, e.error_stack, "  # noqa: S608
        "e.logs, e.started_at, e.completed_at, e.duration_ms, e.actions_total, "
        f"e.actions_successful, e.actions_failed, e.failed_action_index FROM {source} "
        f"WHERE {match} AND e.tenant_id = %s "
        "AND e.status = ANY(%s::varchar[]) ORDER BY e.execution_id FOR UPDATE OF e)"
    )
    params += [actor.tenant.pk, list(RETRYABLE)]
    parts.append(
        f"upd AS (UPDATE {table} t SET status = 'pending', attempt = t.attempt + 1, "  # noqa: S608
        "completed_at = NULL, duration_ms = NULL, error_message = NULL, error_stack = NULL, "
        "failed_action_index = NULL, actions_successful = 0, actions_failed = 0, "
        "logs = '[]'::jsonb, updated_at = %s, started_at = %s "
        # Not a join with `old`: for thousands of rows the planner would hash-join and read the
        # whole table; an array of keys is an index scan whatever it guesses about `old`.
        "WHERE t.execution_id = ANY(ARRAY(SELECT execution_id FROM old)) "
        f"RETURNING {loaded.columns('t') if rows else 't.execution_id'})"
    )
    params += [now, now]
    history_columns = {"tenant_id": actor.tenant.pk, "kind": Kind.AUTOMATION, "recorded_at": now}
    if bulk_audit is not None:  # not in a single retry's statement (the API's, kept short)
        history_columns["bulk_audit_id"] = bulk_audit
    history, history_params = sets.insert_from(
        Attempt,
        history_columns,
        {
            "object_id": "old.execution_id::text",
            "number": "old.attempt",
            "status": "old.status",
            "error_message": "old.error_message",
            "error_stack": "old.error_stack",
            "logs": "old.logs",
            "details": "jsonb_build_object(" + ", ".join(f"'{k}', old.{k}" for k in COUNTERS) + ")",
            "started_at": "old.started_at",
            "finished_at": "old.completed_at",
        },
        "old",
    )
    parts.append(f"hist AS ({history})")
    params += history_params
    if audit is not None:
        audit_sql, audit_params = sets.insert_from(
            AuditEvent,
            audit,
            {
                "target_id": "old.execution_id::text",
                "new_target_id": "old.execution_id::text",
                "status_before": "old.status",
                "status_after": "'pending'",
            },
            "old",
        )
        parts.append(f"aud AS ({audit_sql})")
        params += audit_params
    event_sql, event_params, listening = events.emit_from(
        actor.tenant,
        EVENT,
        "jsonb_build_object('executionId', old.execution_id::text) || %s::jsonb",
        "old",
        (json.dumps(_payload(actor)),),
    )
    parts.append(f"ev AS ({event_sql})")
    params += event_params
    outbox_ids = "(SELECT array_agg(id) FROM ev)" if listening else "NULL::bigint[]"
    sql = "WITH " + ", ".join(parts)
    if rows:
        # The reset rows as model instances, converted as the ORM converts them (raw() would
        # work the mapping out again on every call).
        with connection.cursor() as cursor:
            # upd.* is RETURNING's list, in the loader's order. (Under 4,096 characters the
            # driver caches the statement's parsing too: bench/api.py, and a test.)
            cursor.execute(f"{sql} SELECT {outbox_ids}, upd.* FROM upd", params)  # noqa: S608
            fetched = cursor.fetchall()
        objs = {str(obj.pk): obj for obj in (loaded.load(row[1:]) for row in fetched)}
        if listening and fetched:
            events.publish_on_commit(fetched[0][0])
        return sorted(objs), objs
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql} SELECT (SELECT array_agg(execution_id::text ORDER BY execution_id) "  # noqa: S608
            f"FROM upd), {outbox_ids}",
            params,
        )
        locked, event_ids = cursor.fetchone()
    if listening:
        events.publish_on_commit(event_ids or [])
    return locked or [], {}


_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CANONICAL_UUIDS = re.compile(f"{_UUID}(?:,{_UUID})*")


def _uuid_text(pk) -> str:
    return str(pk if isinstance(pk, uuid.UUID) else uuid.UUID(str(pk)))


def _uuid_array(ids: list) -> str:
    """The ids as one uuid[] literal. One string parameter: the driver dumps a list parameter
    element by element in Python (bench/bulk_retry.py). Keys already in PostgreSQL's own text
    form (a bulk retry reads them so) are checked by one regular expression."""
    try:
        text = ",".join(ids)
    except TypeError:  # not all strings (uuid.UUID from the API's path, say)
        text = None
    if text is None or not _CANONICAL_UUIDS.fullmatch(text):
        text = ",".join(_uuid_text(pk) for pk in ids)
    return "{" + text + "}"


COUNTERS = (
    "duration_ms",
    "actions_total",
    "actions_successful",
    "actions_failed",
    "failed_action_index",
)


RULE = Rule(reason, retryable, not_retryable, retry)
