"""Seed 004 (runs): retry makes a new run from the failure point, once; every answer is the
seed's envelope; errors as {"code", "message", "requestId"}."""

from __future__ import annotations

import pytest

from executions.models import Run

pytestmark = pytest.mark.django_db

RUN_FIELDS = {
    "executionState",
    "finishedAt",
    "id",
    "isDustTest",
    "isSimulation",
    "organizationId",
    "propValues",
    "simulationForks",
    "simulationMode",
    "sourceRunId",
    "startedAt",
    "status",
    "summary",
    "totalCu",
    "triggerNodeId",
    "triggerSource",
    "triggeredBy",
    "workflowDefinition",
    "workflowId",
    "workflowOwnerUserId",
    "workflowVersion",
}


def test_it_starts_a_new_run_from_the_failure_point(api, manifest):
    pk = manifest["acme"]["runs"]["failure"]
    r = api.post(
        f"/v1/runs/{pk}/retry", headers={"Authorization": f"Bearer {manifest['jwt']['alice']}"}
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"code", "data", "message", "requestId"}
    assert body["code"] == 200 and body["message"] == "success"
    assert body["requestId"] == r["X-Request-ID"]
    data = body["data"]
    assert set(data) == RUN_FIELDS
    original = Run.objects.get(pk=pk)
    assert data["sourceRunId"] == pk and data["id"] != pk
    assert data["status"] == "running"
    assert data["organizationId"] == str(original.tenant_id)
    assert data["workflowDefinition"] == original.workflow_definition
    assert data["workflowId"] == original.workflow_id
    # Nodes that succeeded are carried over, not executed again.
    succeeded = [n for n, s in original.node_states.items() if s.get("status") == "success"]
    assert succeeded and all(n in data["executionState"] for n in succeeded)


def test_a_second_retry_is_a_409_naming_the_run_that_retried_it(api, manifest):
    pk = manifest["acme"]["runs"]["failure"]
    new = api.post(f"/v1/runs/{pk}/retry").json()["data"]["id"]
    r = api.post(f"/v1/runs/{pk}/retry")
    assert r.status_code == 409
    assert r.json() == {
        "code": 409,
        "message": f"Run {pk} was already retried by run {new}",
        "requestId": r["X-Request-ID"],
    }


def test_a_successful_run_is_a_409(api, manifest):
    r = api.post(f"/v1/runs/{manifest['acme']['runs']['success']}/retry")
    assert r.status_code == 409
    assert r.json()["message"] == (
        "Run is success; only failure, cancelled or partial runs can be retried"
    )


def test_missing_and_foreign_runs_are_the_same_404(api, manifest):
    for pk in (manifest["globex"]["runs"]["failure"], "run_doesnotexist"):
        r = api.post(f"/v1/runs/{pk}/retry")
        assert r.status_code == 404
        assert r.json() == {"code": 404, "message": "Run not found", "requestId": r["X-Request-ID"]}


def test_a_malformed_id_is_a_400(api, manifest):
    r = api.post("/v1/runs/run$bad/retry")
    assert r.status_code == 400
    assert r.json()["message"] == "id must be 1 to 64 letters, digits, '_' or '-'"


def test_detail_and_list(api, manifest):
    pk = manifest["acme"]["runs"]["failure"]
    new = api.post(f"/v1/runs/{pk}/retry").json()["data"]["id"]
    detail = api.get(f"/v1/runs/{pk}").json()
    assert detail["code"] == 200 and detail["data"]["retriedBy"] == new
    assert detail["data"]["status"] == "failure" and detail["data"]["errorMessage"]
    assert set(detail["data"]) >= RUN_FIELDS
    listed = api.get("/v1/runs", {"status": "failure", "limit": 100}).json()
    ids = [item["id"] for item in listed["data"]["items"]]
    assert pk in ids and manifest["globex"]["runs"]["failure"] not in ids
    assert all(item["status"] == "failure" for item in listed["data"]["items"])
