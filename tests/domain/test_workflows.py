"""Seed 003's rule: resume the same execution; re-run exactly the non-optional failed tasks (and
what never ran because of them), one more attempt per retry call; a valid single-use nonce."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import services
from executions.errors import InvalidInput, NotFound
from executions.kinds.workflows import run as workflows_run
from executions.models import Attempt, WorkflowExecution, WorkflowSession

TASKS = [
    {"externalId": "extract", "handler": "counter", "params": {"key": "extract"}},
    {"externalId": "load", "handler": "flaky", "dependsOn": ["extract"]},
    {"externalId": "enrich", "handler": "fail", "isOptional": True, "dependsOn": ["extract"]},
    {"externalId": "publish", "handler": "noop", "dependsOn": ["load"]},
]


def tasks_of(execution_id: str) -> dict[str, tuple]:
    execution = WorkflowExecution.objects.get(pk=execution_id)
    return {
        t.task_external_id: (t.status, t.attempts)
        for t in execution.task_executions.order_by("task_external_id")
    }


FRESH = object()


def retry(actor, execution_id, nonce=FRESH):
    return services.retry_workflow(
        actor,
        project=actor.tenant.workflows_project,
        execution_id=execution_id,
        nonce=services.create_session(actor).nonce if nonce is FRESH else nonce,
    )


@pytest.mark.django_db(transaction=True)
def test_only_failed_required_tasks_and_what_waited_on_them_run_again(
    handler_calls, items, admin, run_worker
):
    execution_id = items.workflow(TASKS)
    assert tasks_of(execution_id) == {
        "enrich": ("FAILED", 1),
        "extract": ("COMPLETED", 1),
        "load": ("FAILED", 1),
        "publish": ("SCHEDULED", 0),
    }
    assert WorkflowExecution.objects.get(pk=execution_id).status == "FAILED"

    outcome = retry(admin, execution_id)
    assert (outcome.new_id, outcome.obj.status) == (execution_id, "RUNNING")
    run_worker()

    assert WorkflowExecution.objects.get(pk=execution_id).status == "COMPLETED"
    assert tasks_of(execution_id) == {
        "enrich": ("FAILED", 1),  # optional: not retried
        "extract": ("COMPLETED", 1),  # completed: kept, not run again
        "load": ("COMPLETED", 2),
        "publish": ("COMPLETED", 1),
    }
    assert handler_calls.count("extract") == 1


@pytest.mark.django_db
def test_a_task_that_used_up_its_retries_gets_exactly_one_more_attempt_per_retry(items, admin):
    execution_id = items.workflow(
        [
            {"externalId": "sync", "handler": "flaky", "params": {"failures": 5}, "retries": 1},
        ]
    )
    assert tasks_of(execution_id) == {"sync": ("FAILED", 2)}

    retry(admin, execution_id)

    workflows_run.execute(execution_id)
    assert tasks_of(execution_id) == {"sync": ("FAILED", 3)}
    retry(admin, execution_id)
    workflows_run.execute(execution_id)
    assert tasks_of(execution_id) == {"sync": ("FAILED", 4)}
    assert Attempt.objects.filter(object_id=execution_id).count() == 2


@pytest.mark.django_db
def test_the_nonce_is_recorded_and_the_tasks_run_as_its_session(items, admin, operator):
    execution_id = items.workflow(TASKS)
    session = services.create_session(operator)

    retry(admin, execution_id, nonce=session.nonce)

    attempt = Attempt.objects.get(object_id=execution_id)
    assert (attempt.details["session"], attempt.details["runAs"]) == (session.pk, "user:dave")
    load = WorkflowExecution.objects.get(pk=execution_id).task_executions.get(
        task_external_id="load"
    )
    assert load.run_as == "user:dave"
    assert WorkflowSession.objects.get(pk=session.pk).used_at is not None


@pytest.mark.django_db
def test_a_used_expired_foreign_or_unknown_nonce_is_refused(items, admin, other_tenant):
    from executions.tenancy import Actor

    used = services.create_session(admin)
    retry(admin, items.workflow(TASKS), nonce=used.nonce)
    expired = services.create_session(admin)
    WorkflowSession.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    foreign_actor = Actor(tenant=other_tenant, permissions=admin.permissions, source="api")
    foreign = services.create_session(foreign_actor)
    execution_id = items.workflow(TASKS)

    for nonce in (used.nonce, expired.nonce, foreign.nonce, "hOfy4Zop4N2SPRfl", "", None):
        with pytest.raises(InvalidInput) as bad:
            retry(admin, execution_id, nonce=nonce)
        assert bad.value.field == "authentication.nonce"
    assert WorkflowExecution.objects.get(pk=execution_id).status == "FAILED"


@pytest.mark.django_db
def test_another_project_is_not_found(items, admin):
    execution_id = items.workflow(TASKS)
    with pytest.raises(NotFound):
        services.retry_workflow(
            admin,
            project="globex-prod",
            execution_id=execution_id,
            nonce=services.create_session(admin).nonce,
        )


@pytest.mark.django_db
def test_a_terminated_execution_resumes_its_canceled_task(items, admin):

    execution_id = items.workflow(
        [
            {"externalId": "a", "handler": "noop"},
            {"externalId": "b", "handler": "noop", "dependsOn": ["a"]},
        ]
    )
    # Terminate while `b` was in progress.
    execution = WorkflowExecution.objects.get(pk=execution_id)
    WorkflowExecution.objects.filter(pk=execution_id).update(status="RUNNING")
    execution.task_executions.filter(task_external_id="b").update(status="IN_PROGRESS", attempts=1)
    assert workflows_run.terminate_workflow(execution_id)
    assert tasks_of(execution_id)["b"] == ("CANCELED", 1)

    retry(admin, execution_id)
    workflows_run.execute(execution_id)

    assert WorkflowExecution.objects.get(pk=execution_id).status == "COMPLETED"
    assert tasks_of(execution_id) == {"a": ("COMPLETED", 1), "b": ("COMPLETED", 2)}
