"""Seed 003, defining and starting workflows: POST /workflows, /workflows/versions,
/workflows/{externalId}/versions/{version}/run and /workflows/executions/{id}/cancel. Bad input is
a 400 whose message names the field (Cognite's {"error": {"code", "message"}}) and changes
nothing; Idempotency-Key on the creates and the start."""

from __future__ import annotations

import pytest

from executions.models import (
    Function,
    Tenant,
    Workflow,
    WorkflowExecution,
    WorkflowHeader,
    WorkflowSession,
)

from .conftest import wf_base

pytestmark = pytest.mark.django_db


@pytest.fixture
def base(manifest) -> str:
    return wf_base(manifest["acme"])


@pytest.fixture
def function(manifest) -> Function:
    tenant = Tenant.objects.get(workflows_project=manifest["acme"]["workflows"]["project"])
    return Function.objects.create(tenant=tenant, name="api-fn", code="return payload;")


def task(external_id: str = "a", **extra) -> dict:
    return {
        "externalId": external_id,
        "type": "function",
        "parameters": {"function": {"externalId": "api-fn", "data": {"x": 1}}},
        **extra,
    }


def version_body(*tasks: dict, workflow: str = "api-wf") -> dict:
    return {
        "items": [
            {
                "workflowExternalId": workflow,
                "version": "1",
                "workflowDefinition": {"tasks": list(tasks or [task()])},
            }
        ]
    }


def nonce(api, base: str) -> str:
    r = api.post(f"{base}/sessions", {"items": [{"tokenExchange": True}]})
    return r.json()["items"][0]["nonce"]


def test_upsert_workflow_answers_cognites_shape_and_replaces(api, base):
    r = api.post(f"{base}/workflows", {"items": [{"externalId": "api-wf", "description": "d"}]})
    assert r.status_code == 201
    [item] = r.json()["items"]
    assert item["externalId"] == "api-wf" and item["description"] == "d"
    assert isinstance(item["createdTime"], int) and isinstance(item["lastUpdatedTime"], int)

    r = api.post(f"{base}/workflows", {"items": [{"externalId": "api-wf"}]})
    assert r.json()["items"][0]["description"] is None  # replace mode
    assert WorkflowHeader.objects.filter(external_id="api-wf").count() == 1


def test_a_version_keeps_cognites_defaults_and_dependencies(api, base, function):
    body = version_body(task("a"), task("b", dependsOn=[{"externalId": "a"}], retries=0))
    r = api.post(f"{base}/workflows/versions", body)
    assert r.status_code == 201, r.content
    [item] = r.json()["items"]
    a, b = item["workflowDefinition"]["tasks"]
    assert (a["retries"], a["timeout"], a["onFailure"]) == (3, 3600, "abortWorkflow")
    assert b["retries"] == 0 and b["dependsOn"] == [{"externalId": "a"}]
    # The workflow itself was made with its first version.
    assert WorkflowHeader.objects.filter(external_id="api-wf").exists()


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (
            [task(type="transformation")],
            "items[0].workflowDefinition.tasks[0].type: must be one of",
        ),
        (
            [task(retries=11)],
            "items[0].workflowDefinition.tasks[0].retries: must be an integer from 0 to 10",
        ),
        (
            [task(onFailure="ignore")],
            "items[0].workflowDefinition.tasks[0].onFailure: must be one of abortWorkflow",
        ),
        (
            [task("a", dependsOn=[{"externalId": "ghost"}])],
            "items[0].workflowDefinition.tasks[0].dependsOn[0].externalId: no task 'ghost'",
        ),
        (
            [
                task("a", dependsOn=[{"externalId": "b"}]),
                task("b", dependsOn=[{"externalId": "a"}]),
            ],
            "items[0].workflowDefinition.tasks: dependsOn makes a cycle (a -> b -> a)",
        ),
        ([task("a"), task("a")], "items[0].workflowDefinition.tasks[1].externalId: 'a' is used"),
        (
            [{"externalId": "h", "type": "handler", "parameters": {"handler": {"name": "nope"}}}],
            "items[0].workflowDefinition.tasks[0].parameters.handler.name",
        ),
        (
            [{"externalId": "h", "type": "http", "parameters": {"http": {"url": "ftp://x"}}}],
            "items[0].workflowDefinition.tasks[0].parameters.http.url",
        ),
        (
            [
                {
                    "externalId": "c",
                    "type": "cdf",
                    "parameters": {"cdfRequest": {"resourcePath": "/x", "method": "PATCH"}},
                }
            ],
            "items[0].workflowDefinition.tasks[0].parameters.cdfRequest.method: must be one of",
        ),
    ],
)
def test_a_bad_task_is_a_400_naming_its_field_and_saves_nothing(
    api, base, function, tasks, message
):
    r = api.post(f"{base}/workflows/versions", version_body(*tasks))

    assert r.status_code == 400
    assert r.json()["error"]["code"] == 400
    assert r.json()["error"]["message"].startswith(message), r.json()
    assert not Workflow.objects.filter(external_id="api-wf").exists()
    assert not WorkflowHeader.objects.filter(external_id="api-wf").exists()


def test_bad_envelopes_name_their_field(api, base):
    r = api.post(f"{base}/workflows", {"items": [{"externalId": " padded"}]})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "items[0].externalId: must not start or end with spaces"
    )
    r = api.post(f"{base}/workflows/versions", {"items": [{"workflowExternalId": "x"}]})
    assert r.json()["error"]["message"] == "items[0].version is required"


def test_run_needs_a_nonce_and_spends_it_once(api, base, function):
    api = api.as_("alice", via="jwt")  # a user's session: the tasks run as that user
    api.post(f"{base}/workflows/versions", version_body())
    run = f"{base}/workflows/api-wf/versions/1/run"

    r = api.post(run, {"input": {"n": 1}})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "authentication.nonce is required"
    r = api.post(run, {"authentication": {"nonce": "x"}, "metadata": {"k" * 33: "v"}})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("metadata.")
    assert not WorkflowExecution.objects.filter(workflow__external_id="api-wf").exists()

    spent = nonce(api, base)
    r = api.post(run, {"authentication": {"nonce": spent}, "input": {"n": 1}})
    assert r.status_code == 201, r.content
    execution = WorkflowExecution.objects.get(pk=r.json()["id"])
    assert execution.status == "RUNNING" and execution.input == {"n": 1}
    assert set(execution.task_executions.values_list("run_as", flat=True)) == {"user:alice"}
    r = api.post(run, {"authentication": {"nonce": spent}})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "authentication.nonce is not a valid, unused session nonce"
    )


def test_a_run_refuses_an_expired_nonce_and_another_tenants(api, base, manifest, function):
    from datetime import timedelta

    from django.utils import timezone

    api.post(f"{base}/workflows/versions", version_body())
    run = f"{base}/workflows/api-wf/versions/1/run"
    expired = nonce(api, base)
    WorkflowSession.objects.filter(nonce=expired).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    carol = api.as_("carol")
    foreign = nonce(carol, wf_base(manifest["globex"]))
    for refused in (expired, foreign):
        r = api.post(run, {"authentication": {"nonce": refused}})
        assert r.status_code == 400
        assert r.json()["error"]["message"] == (
            "authentication.nonce is not a valid, unused session nonce"
        )
    assert not WorkflowExecution.objects.filter(workflow__external_id="api-wf").exists()
    assert not WorkflowSession.objects.filter(used_at__isnull=False).exists()


def test_run_and_upserts_are_idempotent_with_a_key(api, base, function):
    key = {"Idempotency-Key": "wf-create-1"}
    first = api.post(f"{base}/workflows/versions", version_body(), headers=key)
    again = api.post(f"{base}/workflows/versions", version_body(), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()

    body = {"authentication": {"nonce": nonce(api, base)}, "input": {"n": 2}}
    run = f"{base}/workflows/api-wf/versions/1/run"
    first = api.post(run, body, headers={"Idempotency-Key": "wf-run-1"})
    again = api.post(run, body, headers={"Idempotency-Key": "wf-run-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert WorkflowExecution.objects.filter(workflow__external_id="api-wf").count() == 1
    assert WorkflowSession.objects.filter(used_at__isnull=False).count() == 1


def test_a_viewer_may_not_cancel_and_an_api_key_may_run(api, base, manifest, function):
    api.post(f"{base}/workflows/versions", version_body())
    dave = api.as_("dave")
    r = dave.post(
        f"{base}/workflows/api-wf/versions/1/run", {"authentication": {"nonce": nonce(dave, base)}}
    )
    assert r.status_code == 201, r.content
    r = api.as_("bob").post(f"{base}/workflows/executions/{r.json()['id']}/cancel", {})
    assert r.status_code == 403
    assert r.json() == {
        "error": {"code": 403, "message": "Missing permission workflowOrchestrationACL:WRITE"}
    }


def test_a_version_made_through_the_api_passes_the_admins_check_and_a_bad_edit_does_not(
    api, base, function
):
    # The admin saves a version through Workflow.clean(): what the API saved is valid there, and
    # an edit naming a function the tenant does not have is refused naming the field.
    from django.core.exceptions import ValidationError

    body = version_body(task("a"), task("b", dependsOn=[{"externalId": "a"}]))
    assert api.post(f"{base}/workflows/versions", body).status_code == 201
    version = Workflow.objects.get(external_id="api-wf", version="1")
    version.full_clean()

    version.tasks[1]["parameters"]["function"]["externalId"] = "no-such-function"
    with pytest.raises(ValidationError) as refused:
        version.full_clean()
    assert "tasks[1].parameters.function.externalId" in str(refused.value)
