"""Starts of one function while another start of it is still in its transaction (every API client
starting the same function at once): without a rate limit they do not wait for each other; with
one, the later start waits for the earlier to commit, so that it counts it against the limit.
Real commits (transaction=True), the earlier start held open in a thread of its own."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction

from executions.kinds.functions import starting
from executions.models import Function, FunctionExecution, Tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pg_only]


def _function(**limits) -> Function:
    tenant = Tenant.objects.create(slug="starts", name="Starts", workflows_project="starts")
    return Function.objects.create(
        tenant=tenant, name="charge", code="return {ok: true};", **limits
    )


def _start_while_another_is_open(function: Function) -> Exception | None:
    """Start `function` while a thread holds another start of it uncommitted; what the second
    start raised (None: it started without waiting more than PostgreSQL's lock_timeout)."""
    opened, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                starting.start(function, {"first": True}, invoked_by="api_key")
                opened.set()
                release.wait(timeout=30)
        except BaseException as exc:  # surfaced below: the test must not pass on a dead thread
            failed.append(exc)
            opened.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert opened.wait(timeout=30) and not failed, failed
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '3s'")
                starting.start(function, {"second": True}, invoked_by="api_key")
        except OperationalError as exc:
            return exc
        return None
    finally:
        release.set()
        thread.join(timeout=30)
        assert not failed, failed


def test_starts_of_a_function_without_a_limit_do_not_wait_for_each_other():
    function = _function()
    assert _start_while_another_is_open(function) is None
    assert FunctionExecution.objects.filter(function=function).count() == 2


def test_with_a_limit_a_start_waits_for_the_open_one_to_count_it():
    function = _function(max_executions_per_minute=5)
    refused = _start_while_another_is_open(function)
    assert refused is not None and "lock timeout" in str(refused)
    assert FunctionExecution.objects.filter(function=function).count() == 1
