"""Seed 000's rule: pick by position in the log (newest first) or stable id; refuse successful and
running executions; re-invoke with the original payload and the current definition."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import services
from executions.errors import NotFound, NotRetryable
from executions.kinds.functions import run as functions_run
from executions.models import Function, FunctionExecution


@pytest.fixture
def function(tenant) -> Function:
    return Function.objects.create(tenant=tenant, name="charge-card", handler="flaky")


def run_at(function: Function, minutes_ago: int, handler: str | None = None) -> FunctionExecution:
    if handler:
        Function.objects.filter(pk=function.pk).update(handler=handler)
        function.refresh_from_db()
    execution = functions_run.invoke_function(function, {"n": minutes_ago}, queued=False)
    FunctionExecution.objects.filter(pk=execution.pk).update(
        executed_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return FunctionExecution.objects.get(pk=execution.pk)


def log_ids(function: Function) -> list[str]:
    return list(function.executions.order_by("-executed_at", "-id").values_list("pk", flat=True))


def retry_index(actor, function, index):
    return services.retry_function(
        actor, project_id=actor.tenant.functions_project_id, function_id=function.pk, index=index
    )


@pytest.mark.django_db(transaction=True)
def test_index_zero_is_the_newest_execution_and_positions_shift_after_a_retry(
    admin, function, sync_worker
):
    oldest = run_at(function, 30)  # flaky: fails
    ok = run_at(function, 20, handler="noop")
    newest = run_at(function, 10, handler="fail")
    assert log_ids(function) == [newest.pk, ok.pk, oldest.pk]
    # A retry runs the function as it is now: back to the handler the oldest ran.
    Function.objects.filter(pk=function.pk).update(handler="flaky")

    outcome = retry_index(admin, function, 2)

    assert outcome.target_id == oldest.pk
    assert outcome.obj.success and outcome.obj.result == {"ok": True, "attempt": 2}
    assert outcome.obj.retry_count == 1 and outcome.obj.payload == oldest.payload
    assert log_ids(function) == [outcome.new_id, newest.pk, ok.pk, oldest.pk]


@pytest.mark.django_db
def test_it_refuses_a_successful_execution(admin, function):
    run_at(function, 5, handler="noop")
    with pytest.raises(NotRetryable, match="^Cannot retry successful execution$"):
        retry_index(admin, function, 0)
    assert function.executions.count() == 1


@pytest.mark.django_db
def test_it_refuses_an_execution_that_is_still_running(admin, function):
    running = FunctionExecution.objects.create(
        tenant=admin.tenant, function=function, handler="flaky", payload={}
    )
    with pytest.raises(NotRetryable, match="still running"):
        services.retry_function(
            admin,
            project_id=admin.tenant.functions_project_id,
            function_id=function.pk,
            execution_id=running.pk,
        )


@pytest.mark.django_db(transaction=True)
def test_a_retry_runs_the_functions_current_definition_and_the_original_keeps_what_ran(
    admin, function, sync_worker
):
    failed = run_at(function, 5)  # ran with `flaky`, version 1
    Function.objects.filter(pk=function.pk).update(handler="noop", version=2)

    outcome = services.retry_function(
        admin,
        project_id=admin.tenant.functions_project_id,
        function_id=function.pk,
        execution_id=failed.pk,
    )
    assert (outcome.obj.handler, outcome.obj.function_version, outcome.obj.status) == (
        "noop",
        2,
        "success",
    )
    failed.refresh_from_db()
    assert (failed.handler, failed.function_version) == ("flaky", 1)


@pytest.mark.django_db
def test_a_bad_index_a_foreign_function_and_a_wrong_project_are_not_found(
    admin, function, other_tenant
):
    run_at(function, 5)
    with pytest.raises(NotFound, match="Execution not found"):
        retry_index(admin, function, 7)
    foreign = Function.objects.create(tenant=other_tenant, name="theirs", handler="flaky")
    functions_run.invoke_function(foreign, {}, queued=False)
    with pytest.raises(NotFound, match="Function not found"):
        services.retry_function(
            admin, project_id=other_tenant.functions_project_id, function_id=foreign.pk, index=0
        )
    with pytest.raises(NotFound, match="Function not found"):
        services.retry_function(admin, project_id="0" * 24, function_id=function.pk, index=0)
