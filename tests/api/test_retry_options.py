"""Issue 20 §3: POST /api/failures/{kind}/{id}/retry with a reason and an edited input, for every
kind, tenant-scoped, idempotent, with 400s naming the field and nothing changed."""

from __future__ import annotations

import pytest

from executions.models import (
    AuditEvent,
    AutomationExecution,
    FunctionExecution,
    Job,
    Run,
    WorkflowExecution,
)

pytestmark = pytest.mark.django_db


def url(kind: str, pk) -> str:
    return f"/api/failures/{kind}/{pk}/retry"


def audit_of(kind: str, pk) -> AuditEvent:
    return AuditEvent.objects.filter(kind=kind, target_id=str(pk), action="retry").latest("id")


def failed_function(manifest) -> FunctionExecution:
    f = manifest["acme"]["functions"]
    return FunctionExecution.objects.filter(
        function_id=f["function_id"], status="failed", retried_by__isnull=True
    ).latest("executed_at")


def test_retry_with_a_reason_keeps_it_in_the_audit(api, manifest):
    pk = manifest["acme"]["jobs"]["failed"]
    r = api.post(url("job", pk), {"reason": "  upstream DNS fixed  "})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["kind"] == "job" and body["id"] == pk and body["newId"] != pk
    assert body["status"] == "unprocessed"
    assert body["url"] == f"/executions/job/{body['newId']}/"
    event = audit_of("job", pk)
    assert event.details["reason"] == "upstream DNS fixed"
    assert event.new_target_id == body["newId"] and event.source == "api"
    # Without options the endpoint is a plain retry: no reason recorded.
    run_pk = manifest["acme"]["runs"]["failure"]
    assert api.post(url("run", run_pk)).status_code == 200
    assert "reason" not in audit_of("run", run_pk).details


def test_a_too_long_reason_is_a_400_and_retries_nothing(api, manifest):
    pk = manifest["acme"]["jobs"]["failed"]
    r = api.post(url("job", pk), {"reason": "x" * 501})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["field"] == "reason" and "at most 500" in error["message"]
    assert Job.objects.get(pk=pk).retried_by_id is None
    assert not AuditEvent.objects.filter(kind="job", target_id=pk, action="retry").exists()
    r = api.post(url("job", pk), {"reason": 5})
    assert r.status_code == 400 and r.json()["error"]["field"] == "reason"
    # PostgreSQL keeps no NUL in text: named here, not its DataError as a 500.
    r = api.post(url("job", pk), {"reason": "dns\x00fixed"})
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "reason" and "NUL" in r.json()["error"]["message"]
    assert Job.objects.get(pk=pk).retried_by_id is None
    r = api.post("/api/failures/retry", {"filter": {"kind": "job"}, "reason": "\x00"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "reason"


def test_a_function_retry_runs_the_edited_payload(api, manifest):
    original = failed_function(manifest)
    edited = {**(original.payload or {}), "customerId": 42}
    r = api.post(url("function", original.pk), {"input": edited, "reason": "bad id"})
    assert r.status_code == 200, r.content
    new = FunctionExecution.objects.get(pk=r.json()["newId"])
    assert new.retry_of_id == original.pk and new.payload == edited
    original.refresh_from_db()
    assert original.payload != edited  # the original keeps what ran then
    details = audit_of("function", original.pk).details
    assert details["reason"] == "bad id"
    assert {"path": "customerId", "op": "added", "after": 42} in details["input"]["diff"]


def test_a_job_retry_runs_the_edited_data_with_the_same_operation_type(api, manifest):
    pk = manifest["acme"]["jobs"]["failed"]
    original = Job.objects.get(pk=pk)
    data = {**original.operation.get("data", {}), "note": "edited"}
    r = api.post(url("job", pk), {"input": data})
    assert r.status_code == 200, r.content
    clone = Job.objects.get(pk=r.json()["newId"])
    assert clone.operation == {"type": original.operation_type, "data": data}
    assert clone.operation_type == original.operation_type
    assert Job.objects.get(pk=pk).operation == original.operation


def test_an_automation_retry_changes_the_same_records_event_data_and_audits_the_old(api, manifest):
    pk = manifest["acme"]["automations"]["failed"]
    before = AutomationExecution.objects.get(pk=pk).trigger_data
    edited = {**before, "orderId": "A-1"}
    r = api.post(url("automation", pk), {"input": edited, "reason": "typo in the order"})
    assert r.status_code == 200, r.content
    assert r.json()["newId"] == pk
    execution = AutomationExecution.objects.get(pk=pk)
    assert execution.trigger_data == edited and execution.status == "pending"
    details = audit_of("automation", pk).details
    assert details["input"]["before"] == before
    assert (
        details["input"]["diff"]
        == [{"path": "orderId", "op": "changed", "before": before.get("orderId"), "after": "A-1"}]
        or {"path": "orderId", "op": "added", "after": "A-1"} in details["input"]["diff"]
    )
    assert details["reason"] == "typo in the order"


def test_a_workflow_retry_changes_the_same_executions_input(api, manifest):
    pk = manifest["acme"]["workflows"]["failed"]
    before = WorkflowExecution.objects.get(pk=pk).input
    r = api.post(url("workflow", pk), {"input": {"region": "eu"}})
    assert r.status_code == 200, r.content
    execution = WorkflowExecution.objects.get(pk=pk)
    assert execution.status == "RUNNING" and execution.input == {"region": "eu"}
    assert audit_of("workflow", pk).details["input"]["before"] == before


def test_a_run_retry_gets_the_edited_inputs(api, manifest):
    pk = manifest["acme"]["runs"]["failure"]
    r = api.post(url("run", pk), {"input": {"limit": 3}})
    assert r.status_code == 200, r.content
    new = Run.objects.get(pk=r.json()["newId"])
    assert new.source_run_id == pk and new.prop_values == {"limit": 3}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": [1, 2]}, "input"),
        ({"input": "text"}, "input"),
        ({"input": {"x": "y" * 70_000}}, "input"),
        ({"inputs": {}}, "inputs"),
        ({"reason": "x" * 600, "input": {}}, "reason"),
    ],
)
def test_bad_options_are_400s_naming_the_field_and_change_nothing(api, manifest, body, field):
    pk = manifest["acme"]["automations"]["failed"]
    before = AutomationExecution.objects.get(pk=pk)
    r = api.post(url("automation", pk), body)
    assert r.status_code == 400, r.content
    assert r.json()["error"]["field"] == field
    after = AutomationExecution.objects.get(pk=pk)
    assert (after.status, after.trigger_data, after.attempt) == (
        before.status,
        before.trigger_data,
        before.attempt,
    )


def test_a_job_input_the_worker_could_not_run_is_a_400(api, manifest):
    pk = manifest["acme"]["jobs"]["failed_command"]
    r = api.post(url("job", pk), {"input": {"command": 5}})
    assert r.status_code == 400, r.content
    assert r.json()["error"]["field"].startswith("input")
    assert Job.objects.get(pk=pk).retried_by_id is None


def test_unknown_kind_is_a_400_and_another_tenants_id_a_404(api, manifest):
    r = api.post(url("widget", "x"), {})
    assert r.status_code == 400 and r.json()["error"]["field"] == "kind"
    globex = manifest["globex"]
    for kind, pk in (
        ("job", globex["jobs"]["failed"]),
        ("automation", globex["automations"]["failed"]),
        ("run", globex["runs"]["failure"]),
        ("workflow", globex["workflows"]["failed"]),
        ("job", "not-a-uuid"),
    ):
        r = api.post(url(kind, pk), {"reason": "mine now", "input": {}})
        assert r.status_code == 404, (kind, r.content)
    assert not AuditEvent.objects.filter(details__reason="mine now").exists()


def test_a_viewer_may_not_retry(api, manifest):
    r = api.as_("bob").post(url("job", manifest["acme"]["jobs"]["failed"]), {"reason": "x"})
    assert r.status_code == 403


def test_a_retried_item_is_a_409(api, manifest):
    pk = manifest["acme"]["runs"]["failure"]
    assert api.post(url("run", pk), {}).status_code == 200
    r = api.post(url("run", pk), {"reason": "again"})
    assert r.status_code == 409


def test_idempotency_key_retries_once(api, manifest):
    pk = manifest["acme"]["jobs"]["failed"]
    headers = {"Idempotency-Key": "edit-once-1"}
    body = {"reason": "once", "input": {"package": "nginx"}}
    first = api.post(url("job", pk), body, headers=headers)
    assert first.status_code == 200, first.content
    again = api.post(url("job", pk), body, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Job.objects.filter(retry_of_id=pk).count() == 1
    other = api.post(url("job", pk), {"reason": "twice"}, headers=headers)
    assert other.status_code == 422


def test_the_seed_retry_endpoints_take_no_new_fields(api, manifest):
    pk = manifest["acme"]["runs"]["failure"]
    r = api.post(f"/v1/runs/{pk}/retry", {"reason": "seed", "input": {"limit": 1}})
    if r.status_code == 200:
        new = Run.objects.get(source_run_id=pk)
        assert new.prop_values == Run.objects.get(pk=pk).prop_values
        assert "reason" not in audit_of("run", pk).details
    else:
        assert r.status_code == 400


def test_the_schema_documents_the_endpoint_with_examples(api):
    schema = api.get("/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/failures/{kind}/{id}/retry" in text
    assert "retryFailure" in text and "With an edited input" in text


# --- the bulk body: a reason and staging, and the preview's items ---------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"canary": {"size": 0}}, "canary.size"),
        ({"canary": {"size": 5, "minSuccessRate": 2}}, "canary.minSuccessRate"),
        ({"canary": "ten"}, "canary"),
        ({"ratePerSecond": -1}, "ratePerSecond"),
        ({"stopWhenFailedAgainRate": "half"}, "stopWhenFailedAgainRate"),
        ({"reason": "x" * 501}, "reason"),
    ],
)
def test_bad_bulk_options_are_400s_naming_the_field(api, extra, field):
    from executions.models import BulkRetry

    r = api.post("/api/failures/retry", {"filter": {"kind": "automation"}, **extra})
    assert r.status_code == 400, r.content
    assert r.json()["error"]["field"] == field
    assert not BulkRetry.objects.exists()


def test_a_staged_bulk_reports_its_stage_and_outcomes(api, manifest):
    from executions.models import BulkRetry

    body = {
        "filter": {"kind": "automation"},
        "reason": "canary first",
        "canary": {"size": 10, "minSuccessRate": 0.9},
        "ratePerSecond": 50,
        "stopWhenFailedAgainRate": 0.5,
    }
    r = api.post("/api/failures/retry", body)
    assert r.status_code == 202, r.content
    bulk = BulkRetry.objects.get()
    assert bulk.options == {
        "reason": "canary first",
        "canary": {"size": 10, "minSuccessRate": 0.9},
        "ratePerSecond": 50.0,
        "stopWhenFailedAgainRate": 0.5,
    }
    shown = api.get(r.json()["url"]).json()
    assert shown["stage"] == "canary"
    progress = shown["progress"]
    assert (progress["succeeded"], progress["failedAgain"], progress["pending"]) == (0, 0, 0)
    assert progress["options"]["canary"] == {"size": 10, "minSuccessRate": 0.9}
    # Unstaged: no stage, the bulk task as before.
    r = api.post("/api/failures/retry", {"filter": {"kind": "run"}})
    assert r.status_code == 202
    plain = api.get(r.json()["url"]).json()
    assert (plain["stage"], plain["progress"]) == ("", {})


def test_the_preview_lists_the_first_items_and_how_many_more(api, manifest):
    r = api.post("/api/failures/retry", {"filter": {}, "dry_run": True}).json()
    assert r["items"] and len(r["items"]) <= 50
    assert r["more"] == r["will_retry"] - len(r["items"])
    item = r["items"][0]
    assert set(item) == {"kind", "id", "name", "error"}
    failed_job = manifest["acme"]["jobs"]["failed"]
    one = api.post("/api/failures/retry", {"ids": {"job": [failed_job]}, "dry_run": True}).json()
    assert [(i["kind"], i["id"]) for i in one["items"]] == [("job", failed_job)]
    assert one["more"] == 0
