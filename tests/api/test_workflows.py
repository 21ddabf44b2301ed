"""Seed 003 (workflow executions): sessions, retry with a nonce (resumes the same execution),
detail with tasks, list in Cognite's shape; errors as {"error": {"code": <int>, "message"}}."""

from __future__ import annotations

import pytest

from executions.models import WorkflowExecution, WorkflowSession

from .conftest import wf_base

pytestmark = pytest.mark.django_db

EXECUTION_FIELDS = {
    "id",
    "workflowExternalId",
    "status",
    "engineExecutionId",
    "createdTime",
    "metadata",
    "version",
    "startTime",
    "endTime",
    "reasonForIncompletion",
}


def nonce(api, items: dict) -> str:
    r = api.post(f"{wf_base(items)}/sessions", {"items": [{"tokenExchange": True}]})
    assert r.status_code == 200, r.content
    return r.json()["items"][0]["nonce"]


def test_a_session_is_created_for_the_caller(api, manifest):
    r = api.as_("alice", via="jwt").post(
        f"{wf_base(manifest['acme'])}/sessions", {"items": [{"tokenExchange": True}]}, gzipped=True
    )
    assert r.status_code == 200
    [item] = r.json()["items"]
    assert set(item) == {"id", "type", "status", "nonce"}
    assert isinstance(item["id"], int) and item["type"] == "TOKEN_EXCHANGE"
    assert item["status"] == "READY" and len(item["nonce"]) >= 16
    session = WorkflowSession.objects.get(pk=item["id"])
    assert session.user.username == "alice" and session.used_at is None


def test_client_credentials_are_an_api_key_of_the_tenant(api, manifest):
    key = manifest["api_keys"]["dave"]
    prefix = key.split(".")[0]
    body = {"items": [{"clientId": prefix, "clientSecret": key}]}
    r = api.post(f"{wf_base(manifest['acme'])}/sessions", body)
    assert r.status_code == 200
    item = r.json()["items"][0]
    assert item["type"] == "CLIENT_CREDENTIALS" and item["clientId"] == prefix
    assert WorkflowSession.objects.get(pk=item["id"]).api_key.prefix == prefix
    foreign = {"items": [{"clientId": "x", "clientSecret": manifest["api_keys"]["carol"]}]}
    r = api.post(f"{wf_base(manifest['acme'])}/sessions", foreign)
    assert r.status_code == 400
    assert r.json() == {"error": {"code": 400, "message": "Invalid client credentials"}}


def test_it_resumes_the_same_execution(api, manifest):
    items = manifest["acme"]
    pk = items["workflows"]["failed"]
    r = api.post(
        f"{wf_base(items)}/workflows/executions/{pk}/retry",
        {"authentication": {"nonce": nonce(api, items)}},
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == EXECUTION_FIELDS
    assert body["id"] == pk and body["status"] == "RUNNING"
    execution = WorkflowExecution.objects.select_related("workflow").get(pk=pk)
    assert body["workflowExternalId"] == execution.workflow.external_id
    assert body["version"] == execution.workflow.version
    assert body["createdTime"] == int(execution.created_time.timestamp() * 1000)
    assert isinstance(body["startTime"], int)


def test_the_nonce_is_single_use(api, manifest):
    items = manifest["acme"]
    once = nonce(api, items)
    path = f"{wf_base(items)}/workflows/executions/{items['workflows']['failed']}/retry"
    assert api.post(path, {"authentication": {"nonce": once}}).status_code == 200
    # Used once: refused even for another retry (the execution is RUNNING by now, but the nonce
    # is checked first).
    r = api.post(path, {"authentication": {"nonce": once}})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "code": 400,
            "message": "authentication.nonce is not a valid, unused session nonce",
        }
    }


def test_another_tenants_nonce_is_refused(api, manifest):
    items = manifest["acme"]
    foreign = nonce(api.as_("carol"), manifest["globex"])
    path = f"{wf_base(items)}/workflows/executions/{items['workflows']['failed']}/retry"
    r = api.post(path, {"authentication": {"nonce": foreign}})
    assert r.status_code == 400
    assert "authentication.nonce" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [None, {}, {"authentication": {}}, {"authentication": "x"}, {"authentication": {"nonce": ""}}],
)
def test_a_missing_nonce_is_a_400_naming_it(api, manifest, body):
    items = manifest["acme"]
    r = api.post(
        f"{wf_base(items)}/workflows/executions/{items['workflows']['failed']}/retry", body
    )
    assert r.status_code == 400
    assert r.json() == {"error": {"code": 400, "message": "authentication.nonce is required"}}


def test_a_completed_execution_is_a_409(api, manifest):
    items = manifest["acme"]
    pk = items["workflows"]["completed"]
    r = api.post(
        f"{wf_base(items)}/workflows/executions/{pk}/retry",
        {"authentication": {"nonce": nonce(api, items)}},
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == 409
    assert r.json()["error"]["message"].startswith("Workflow execution is COMPLETED")


def test_foreign_execution_and_foreign_project_are_404(api, manifest):
    acme, globex = manifest["acme"], manifest["globex"]
    body = {"authentication": {"nonce": nonce(api, acme)}}
    foreign_exec = api.post(
        f"{wf_base(acme)}/workflows/executions/{globex['workflows']['failed']}/retry", body
    )
    foreign_project = api.post(
        f"{wf_base(globex)}/workflows/executions/{acme['workflows']['failed']}/retry", body
    )
    for r in (foreign_exec, foreign_project):
        assert r.status_code == 404
        assert r.json() == {"error": {"code": 404, "message": "Workflow execution not found"}}


def test_a_malformed_execution_id_is_a_400(api, manifest):
    r = api.post(
        f"{wf_base(manifest['acme'])}/workflows/executions/abc/retry",
        {"authentication": {"nonce": "x"}},
    )
    assert r.status_code == 400
    assert r.json() == {"error": {"code": 400, "message": "executionId must be a valid UUID"}}


def test_detail_has_tasks_and_definition(api, manifest):
    items = manifest["acme"]
    pk = items["workflows"]["failed"]
    r = api.get(f"{wf_base(items)}/workflows/executions/{pk}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= EXECUTION_FIELDS
    assert body["status"] == "FAILED" and body["reasonForIncompletion"]
    assert body["workflowDefinition"]["hash"] and body["workflowDefinition"]["tasks"]
    tasks = body["executedTasks"]
    assert tasks and {"id", "externalId", "status", "taskType", "input", "output"} <= set(tasks[0])
    assert any(t["status"] == "FAILED" for t in tasks)
    assert any(t["status"] == "COMPLETED" and t["output"]["response"] is not None for t in tasks)


def test_list_by_get_and_by_cognite_post(api, manifest):
    items = manifest["acme"]
    got = api.get(f"{wf_base(items)}/workflows/executions", {"status": "FAILED", "limit": 1000})
    assert got.status_code == 200
    ids = [e["id"] for e in got.json()["items"]]
    assert (
        items["workflows"]["failed"] in ids and manifest["globex"]["workflows"]["failed"] not in ids
    )
    assert got.json()["nextCursor"] is None
    posted = api.post(
        f"{wf_base(items)}/workflows/executions/list",
        {"filter": {"status": ["FAILED"]}, "limit": 2},
        gzipped=True,
    )
    assert posted.status_code == 200
    page = posted.json()
    assert len(page["items"]) == 2 and page["nextCursor"]
    following = api.post(
        f"{wf_base(items)}/workflows/executions/list",
        {"filter": {"status": ["FAILED"]}, "limit": 1000, "cursor": page["nextCursor"]},
    ).json()
    all_ids = [e["id"] for e in page["items"]] + [e["id"] for e in following["items"]]
    assert sorted(all_ids) == sorted(ids)


def test_a_foreign_project_list_is_404(api, manifest):
    r = api.get(f"{wf_base(manifest['globex'])}/workflows/executions")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": 404, "message": "Project not found"}}
