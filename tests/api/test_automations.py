"""Seed 001 (automation executions): retry resets the same failed execution and queues it for
real; every `_links` entry resolves; errors as {"error": {"code", "message"}}."""

from __future__ import annotations

import pytest
from django.urls import resolve

from executions.models import AutomationExecution, OutboxEvent

pytestmark = pytest.mark.django_db

FIELDS = {
    "execution_id",
    "automation_rule_id",
    "trigger_data",
    "status",
    "started_at",
    "completed_at",
    "duration_ms",
    "actions_total",
    "actions_successful",
    "actions_failed",
    "error_message",
    "error_stack",
    "failed_action_index",
    "execution_context",
    "logs",
    "tenant",
    "_links",
}


def retry_path(pk: str) -> str:
    return f"/api/v1/automation/executions/{pk}/retry"


def test_it_resets_the_failed_execution_to_pending(api, manifest):
    pk = manifest["acme"]["automations"]["failed"]
    r = api.post(retry_path(pk), headers={"x-api-key": manifest["api_keys"]["alice"]})
    assert r.status_code == 200, r.content
    data = r.json()["data"]
    assert set(data) == FIELDS
    assert data["execution_id"] == pk
    assert data["status"] == "pending"
    assert data["completed_at"] is None and data["error_message"] is None
    assert data["actions_failed"] == 0 and data["actions_successful"] == 0
    assert data["failed_action_index"] is None
    row = AutomationExecution.objects.get(pk=pk)
    assert data["tenant"] == str(row.tenant_id)
    assert data["automation_rule_id"] == str(row.automation_rule_id)
    assert data["actions_total"] == row.actions_total
    assert r.json() == {"data": data}


def test_every_link_resolves_to_a_real_route(api, manifest):
    pk = manifest["acme"]["automations"]["failed"]
    links = api.post(retry_path(pk)).json()["data"]["_links"]
    assert set(links) == {"self", "retry", "rule", "collection"}
    for name, link in links.items():
        match = resolve(link["href"].split("?")[0])
        view = match.func.view_class
        assert link["method"].lower() in view.http_method_names and hasattr(
            view, link["method"].lower()
        ), name
        if link["method"] == "GET":
            assert api.get(link["href"]).status_code == 200, name
    assert links["self"]["href"] == f"/api/v1/automation/executions/{pk}"
    assert links["retry"] == {"href": retry_path(pk), "method": "POST"}


def test_it_publishes_the_retried_event_after_commit(api, manifest):
    pk = manifest["acme"]["automations"]["failed"]
    api.post(retry_path(pk))
    event = OutboxEvent.objects.filter(name="automation.execution.retried").latest("pk")
    assert event.payload["executionId"] == pk


def test_a_completed_execution_is_a_400(api, manifest):
    pk = manifest["acme"]["automations"]["completed"]
    r = api.post(retry_path(pk))
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "code": "NOT_RETRYABLE",
            "message": "Only failed executions can be retried (status is completed)",
        }
    }


def test_a_malformed_uuid_is_a_400_naming_the_field(api, manifest):
    r = api.post(retry_path("not-a-uuid"))
    assert r.status_code == 400
    assert r.json() == {"error": {"code": "VALIDATION_ERROR", "message": "id must be a valid UUID"}}


def test_missing_and_foreign_executions_are_the_same_404(api, manifest):
    foreign = api.post(retry_path(manifest["globex"]["automations"]["failed"]))
    missing = api.post(retry_path("00000000-0000-4000-8000-000000000000"))
    for r in (foreign, missing):
        assert r.status_code == 404
        assert r.json() == {
            "error": {"code": "NOT_FOUND", "message": "Automation execution not found"}
        }


def test_detail_keeps_the_failed_attempt_after_a_retry(api, manifest):
    pk = manifest["acme"]["automations"]["failed"]
    before = api.get(f"/api/v1/automation/executions/{pk}").json()["data"]
    assert before["status"] == "failed" and before["error_stack"]
    assert before["logs"] and {"timestamp", "level", "message"} <= set(before["logs"][0])
    api.post(retry_path(pk))
    after = api.get(f"/api/v1/automation/executions/{pk}").json()["data"]
    assert after["status"] == "pending"
    assert after["attempts"][-1]["error_message"] == before["error_message"]
    assert after["attempts"][-1]["error_stack"] == before["error_stack"]


def test_list_filters_and_pages_without_repeats(api, manifest):
    seen: list[str] = []
    cursor = None
    while True:
        params = {"status": "failed", "limit": 3, **({"cursor": cursor} if cursor else {})}
        r = api.get("/api/v1/automation/executions", params)
        assert r.status_code == 200
        body = r.json()
        assert all(item["status"] == "failed" for item in body["data"])
        seen += [item["execution_id"] for item in body["data"]]
        cursor = body["pagination"]["next_cursor"]
        assert body["pagination"]["has_next"] is bool(cursor)
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    expected = AutomationExecution.objects.filter(tenant__slug="acme", status="failed").count()
    assert len(seen) == expected
    assert manifest["acme"]["automations"]["failed"] in seen
    assert manifest["globex"]["automations"]["failed"] not in seen


def test_a_tampered_cursor_is_a_400(api, manifest):
    r = api.get("/api/v1/automation/executions", {"cursor": "bm9wZQ"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "cursor is not a cursor this server gave out"


def test_rule_route_is_tenant_scoped(api, manifest):
    execution = AutomationExecution.objects.get(pk=manifest["globex"]["automations"]["failed"])
    r = api.get(f"/api/v1/automation/rules/{execution.automation_rule_id}")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "NOT_FOUND", "message": "Automation rule not found"}}
