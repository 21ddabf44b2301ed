"""An automation retry on PostgreSQL is one statement (lock, history, reset, audit and event
together) plus its worker's task, enqueued through django.tasks in the same transaction: it writes
everything a retry must, and the history keeps the values the retry locked even when the row
changed while it waited for the lock."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from executions import events, services
from executions.models import Attempt, AuditEvent, AutomationExecution, OutboxEvent

pytestmark = [pytest.mark.pg_only, pytest.mark.django_db(transaction=True)]


def test_one_retry_is_one_statement_and_its_task_and_writes_everything_a_retry_writes(items, admin):
    item = items.failed("automation")
    before = AutomationExecution.objects.get(pk=item)
    tasks_before = DBTaskResult.objects.count()

    with CaptureQueriesContext(connection) as queries:
        outcome = services.retry_automation(admin, item)

    sqls = [q["sql"] for q in queries]
    assert len(sqls) == 5, [sql[:80] for sql in sqls]
    assert (sqls[0], sqls[-1]) == ("BEGIN", "COMMIT")
    assert sqls[1].startswith("WITH old AS")
    assert sqls[2].startswith(f'INSERT INTO "{DBTaskResult._meta.db_table}"')
    assert sqls[3] == "SELECT pg_notify('redrive_tasks', '')"  # wakes the idle workers at COMMIT
    assert (outcome.obj.pk, outcome.obj.status, outcome.obj.attempt) == (
        before.pk,
        "pending",
        before.attempt + 1,
    )
    assert outcome.obj.error_message is None and outcome.obj.logs == []
    history = Attempt.objects.get(kind="automation", object_id=item)
    assert (history.number, history.status, history.error_message, history.logs) == (
        before.attempt,
        "failed",
        before.error_message,
        before.logs,
    )
    audit = AuditEvent.objects.get(target_id=item)
    assert (audit.actor, audit.user_id, audit.status_before, audit.status_after) == (
        "user:alice",
        admin.user.pk,
        "failed",
        "pending",
    )
    assert OutboxEvent.objects.get(name="automation.execution.retried").payload == {
        "executionId": item,
        "tenantId": str(admin.tenant.pk),
        "userId": str(admin.user.pk),
    }
    # The worker's task, as the database backend's enqueue() writes it.
    assert DBTaskResult.objects.count() == tasks_before + 1
    task = DBTaskResult.objects.order_by("-enqueued_at").first()
    assert task.args_kwargs == {"args": [[item]], "kwargs": {}}
    assert (task.status, task.task_path) == (
        "READY",
        "executions.kinds.automations.run.run_automation_executions",
    )
    assert task.task.func.__name__ == "run_automation_executions"


def test_the_retry_statement_stays_within_the_drivers_statement_cache(items, admin):
    """psycopg parses a statement once and reuses the parse only up to 4,096 bytes and 50
    parameters; past either, every API retry parses its ~4 kB statement again (~0.1 ms of CPU).
    Checked on the longest shape: the answer's row, and a subscriber waiting for the event."""
    from psycopg import _queries

    statements, received = [], []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    def subscriber(**kwargs):
        received.append(kwargs["event_id"])

    events.published.connect(subscriber, sender=OutboxEvent)
    try:
        with connection.execute_wrapper(record):
            services.retry_automation(admin, items.failed("automation"))
    finally:
        events.published.disconnect(subscriber, sender=OutboxEvent)
    [(sql, params)] = [(sql, params) for sql, params in statements if "WITH old AS" in sql]
    assert received, "no subscriber saw the event: not the longest shape"
    assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(params) <= _queries.MAX_CACHED_STATEMENT_PARAMS


def test_a_missing_item_is_not_found_and_a_second_retry_is_refused(items, admin):
    from executions.errors import NotFound, NotRetryable

    item = items.failed("automation")
    tasks_before = DBTaskResult.objects.count()
    with pytest.raises(NotFound):
        services.retry_automation(admin, "00000000-0000-4000-8000-000000000000")
    with pytest.raises(NotFound):
        services.retry_automation(admin, "not-a-uuid")
    services.retry_automation(admin, item)
    with pytest.raises(NotRetryable):
        services.retry_automation(admin, item)
    assert AuditEvent.objects.count() == Attempt.objects.count() == 1
    assert DBTaskResult.objects.count() == tasks_before + 1


def test_the_history_keeps_the_values_the_retry_locked(items, admin):
    item = items.failed("automation")
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )
    try:
        # Another transaction changes the failed row (it stays failed) and holds its lock.
        other.execute(
            "UPDATE executions_automationexecution SET error_message = 'changed meanwhile' "
            "WHERE execution_id = %s",
            (item,),
        )
        results: list = []

        def retry() -> None:
            try:
                results.append(services.retry_automation(admin, item))
            finally:
                connection.close()

        thread = threading.Thread(target=retry)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()  # waiting for the row lock
        other.commit()
        thread.join(30)
    finally:
        other.close()

    assert len(results) == 1 and results[0].obj.status == "pending"
    assert AutomationExecution.objects.get(pk=item).status == "pending"
    history = Attempt.objects.get(kind="automation", object_id=item)
    assert history.error_message == "changed meanwhile"
    assert AuditEvent.objects.filter(target_id=item).count() == 1


def test_the_prepared_retry_statement_is_planned_once_per_connection(items, admin):
    """psycopg prepares a statement the fifth time a connection runs it; PostgreSQL then plans
    it once and reuses the plan only when its generic plan looks no dearer than a custom one.
    With the key in an array it never did (0.35 ms of planning per API retry)."""
    assert connection.settings_dict["OPTIONS"]["prepare_threshold"] == 5  # the default
    # The first runs unprepared, then PostgreSQL plans five executions as custom plans before
    # it weighs the generic one; from then on it reuses that (with the array: never).
    for _ in range(14):
        services.retry_automation(admin, items.failed("automation"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE 'WITH old AS%%'"
        )
        [(generic, custom)] = cursor.fetchall()
    assert generic >= 3 and custom == 5, (generic, custom)
