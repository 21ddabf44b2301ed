"""Seed 003's task types as a real worker runs them: Redrive's `http` and `handler` tasks with
`${...}` references to the workflow's input and earlier outputs, `cdf` requests to Redrive's own
API made as the user of the session whose nonce started the execution, and Cognite's
`onFailure` and `timeout` rules."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from executions import services
from executions.kinds.workflows.sessions import create_session
from executions.models import Membership, Tenant, WorkflowExecution
from executions.tenancy import Actor

pytestmark = pytest.mark.django_db(transaction=True)

ALLOW_LOCAL = {"REDRIVE_HTTP_ALLOW": "127.0.0.1"}


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme")


def member(tenant: Tenant, username: str, role: str) -> Actor:
    user = get_user_model().objects.create_user(username)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return Actor.for_user(user, tenant, source="api")


@pytest.fixture
def alice(tenant) -> Actor:
    return member(tenant, "alice", "admin")


def start(actor: Actor, tasks: list[dict], input_data: dict | None = None, nonce_of=None):
    """Save version 1 of "wf" and run it with a nonce of `nonce_of`'s session (the caller's)."""
    services.upsert_workflow_versions(
        actor,
        "acme",
        [{"workflowExternalId": "wf", "version": "1", "workflowDefinition": {"tasks": tasks}}],
    )
    with transaction.atomic():
        nonce = create_session(nonce_of or actor).nonce
        return services.run_workflow(actor, "acme", "wf", "1", nonce=nonce, input_data=input_data)


def tasks_of(execution) -> dict:
    execution.refresh_from_db()
    return {t.task_external_id: t for t in execution.task_executions.all()}


def test_http_and_handler_tasks_run_with_references_resolved(
    alice, http_server, run_worker, settings
):
    server = http_server()
    settings.REDRIVE_HTTP_ALLOW = ALLOW_LOCAL["REDRIVE_HTTP_ALLOW"]  # checked when saved too
    execution = start(
        alice,
        [
            {
                "externalId": "call",
                "type": "http",
                "parameters": {
                    "http": {
                        "url": server.url("/echo"),
                        "method": "POST",
                        "headers": {"X-Order": "${workflow.input.order}"},
                        "body": {"order": "${workflow.input.order}"},
                        "timeout": 10,
                    }
                },
            },
            {
                "externalId": "note",
                "type": "handler",
                "parameters": {
                    "handler": {
                        "name": "echo",
                        "params": {"status": "${call.output.response.status}"},
                    }
                },
                "dependsOn": [{"externalId": "call"}],
            },
        ],
        {"order": "ord_7"},
    )

    run_worker(env=ALLOW_LOCAL)

    assert WorkflowExecution.objects.get(pk=execution.pk).status == "COMPLETED"
    [sent] = server.requests
    assert sent["body"] == '{"order": "ord_7"}' and sent["headers"]["X-Order"] == "ord_7"
    tasks = tasks_of(execution)
    assert tasks["call"].output["response"]["status"] == 200
    assert tasks["note"].output["response"]["params"] == {"status": 200}


def test_a_cdf_task_calls_redrives_api_as_the_sessions_user(tenant, alice, run_worker):
    bob = member(tenant, "bob", "viewer")
    cdf = {
        "externalId": "list",
        "type": "cdf",
        "parameters": {
            "cdfRequest": {
                "resourcePath": "/workflows/executions/list",
                "method": "POST",
                "body": {"limit": 5},
            }
        },
    }
    write = {
        "externalId": "write",
        "type": "cdf",
        "parameters": {
            "cdfRequest": {
                "resourcePath": "/workflows",
                "method": "POST",
                "body": {"items": [{"externalId": "made-by-a-task"}]},
            }
        },
        "retries": 0,
        "dependsOn": [{"externalId": "list"}],
    }
    # Alice starts it with a nonce of bob's session (a viewer): the tasks act as bob.
    execution = start(alice, [cdf, write], nonce_of=bob)

    run_worker()

    tasks = tasks_of(execution)
    listed = tasks["list"].output
    assert tasks["list"].status == "COMPLETED" and listed["statusCode"] == 200
    assert [e["id"] for e in listed["response"]["items"]] == [str(execution.pk)]
    assert tasks["write"].status == "FAILED"
    assert tasks["write"].output["statusCode"] == 403
    assert tasks["write"].error_message == (
        "POST /workflows answered 403: Missing permission workflowOrchestrationACL:WRITE"
    )
    assert tasks["write"].run_as == "user:bob"

    # The same definition started with alice's own nonce may write.
    again = start(alice, [cdf, write])
    run_worker()
    assert WorkflowExecution.objects.get(pk=again.pk).status == "COMPLETED"
    assert tasks_of(again)["write"].output["statusCode"] == 201


def test_skip_task_lets_the_workflow_go_on_and_a_timeout_aborts_without_retries(alice, run_worker):
    skipped = start(
        alice,
        [
            {
                "externalId": "flaky",
                "type": "handler",
                "parameters": {"handler": {"name": "fail", "params": {}}},
                "retries": 1,
                "onFailure": "skipTask",
            },
            {
                "externalId": "after",
                "type": "handler",
                "parameters": {"handler": {"name": "noop"}},
                "dependsOn": [{"externalId": "flaky"}],
            },
        ],
    )
    run_worker()
    assert WorkflowExecution.objects.get(pk=skipped.pk).status == "COMPLETED"
    tasks = tasks_of(skipped)
    assert (tasks["flaky"].status, tasks["flaky"].attempts) == ("FAILED", 2)  # retried once
    assert tasks["after"].status == "COMPLETED"

    slow = start(
        alice,
        [
            {
                "externalId": "slow",
                "type": "handler",
                "parameters": {"handler": {"name": "sleep", "params": {"seconds": 5}}},
                "timeout": 1,
            }
        ],
    )
    run_worker()
    slow.refresh_from_db()
    assert slow.status in ("FAILED", "TIMED_OUT") and slow.status != "RUNNING"
    task = tasks_of(slow)["slow"]
    # retries=3 by default, but a timed-out abortWorkflow task is not retried.
    assert (task.status, task.attempts) == ("TIMED_OUT", 1)
