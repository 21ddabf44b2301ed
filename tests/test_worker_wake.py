"""An enqueue wakes the idle workers (PostgreSQL NOTIFY, executions/queueing.py): once per
transaction that enqueues, whatever it enqueues, and only if it commits. The worker's side (a real
worker with a long --interval takes a queued retry at once) is in tests/test_function_sync.py."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from executions.kinds.functions.run import run_function_execution

pytestmark = [pytest.mark.pg_only, pytest.mark.django_db(transaction=True)]


def notifies(queries: CaptureQueriesContext) -> int:
    return sum("pg_notify" in q["sql"] for q in queries.captured_queries)


def test_a_transaction_that_enqueues_many_tasks_notifies_once():
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        for n in range(3):
            run_function_execution.enqueue(f"e{n}")
    assert notifies(queries) == 1


def test_each_transaction_notifies_even_after_one_rolled_back():
    with CaptureQueriesContext(connection) as queries:
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            run_function_execution.enqueue("gone")
            1 / 0  # noqa: B018 - the enqueue and its NOTIFY roll back together
        with transaction.atomic():
            run_function_execution.enqueue("a")
        with transaction.atomic():
            # A savepoint rolled back takes its NOTIFY with it: the next enqueue notifies again.
            with pytest.raises(ZeroDivisionError), transaction.atomic():
                run_function_execution.enqueue("b")
                1 / 0  # noqa: B018
            run_function_execution.enqueue("c")
            run_function_execution.enqueue("d")
        run_function_execution.enqueue("autocommitted")
    assert notifies(queries) == 5
