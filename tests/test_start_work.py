"""Bring your own work (issue 19), end to end: jobs started with `POST /job` and automation rules
fired by `POST /api/v1/automation/events`, through the API with the demo cast's real API keys,
then run by real workers (`manage.py worker --batch`) on the test database."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from executions.models import AutomationExecution, Job

pytestmark = pytest.mark.django_db(transaction=True)


def call(manifest: dict, who: str, method: str, path: str, body=None, **headers):
    data = b"" if body is None else json.dumps(body).encode()
    return Client().generic(
        method,
        path,
        data,
        content_type="application/json",
        headers={"X-API-Key": manifest["api_keys"][who], **headers},
    )


def test_a_job_that_fails_is_seen_failed_then_retried_and_completes(manifest, run_worker):
    created = call(
        manifest,
        "dave",
        "POST",
        "/job",
        {"operation": {"type": "flaky", "data": {"failures": 1}}, "target_hostname": "web-01"},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == {"job_id", "status", "revision", "timestamp"}
    assert body["status"] == "unprocessed" and body["revision"] == 1
    job_id = body["job_id"]

    # A worker of another host does not take it.
    run_worker(hostname="web-02")
    assert Job.objects.get(pk=job_id).status == "unprocessed"

    run_worker(hostname="web-01")
    seen = call(manifest, "dave", "GET", f"/job/{job_id}").json()
    assert seen["status"] == "failed" and seen["taken_by"] == "web-01"
    assert "connection reset by peer" in seen["error"]
    assert seen["operation"] == {"type": "flaky", "data": {"failures": 1}}

    retried = call(manifest, "dave", "POST", f"/job/{job_id}/retry", {"target_hostname": "_any"})
    assert retried.status_code == 201, retried.content
    clone_id = retried.json()["job_id"]

    run_worker()
    clone = call(manifest, "dave", "GET", f"/job/{clone_id}").json()
    assert clone["status"] == "completed", clone
    assert clone["retry_of"] == job_id and clone["result"] == {"ok": True, "attempt": 2}


def rule(name: str, event: str, *, key: str, conditions=(), enabled: bool = True) -> dict:
    return {
        "name": name,
        "trigger": {"type": "event", "event": event},
        "conditions": list(conditions),
        "actions": [{"handler": "counter", "params": {"key": key}}],
        "enabled": enabled,
    }


def test_an_event_fires_each_matching_enabled_rule_as_an_execution_a_worker_runs(
    manifest, run_worker, handler_calls
):
    urgent = [{"field": "ticket.priority", "operator": "in", "value": ["urgent", "high"]}]
    low = [{"field": "ticket.priority", "operator": "equals", "value": "low"}]
    rules = {}
    for name, spec in {
        "plain": rule("plain", "ticket.created", key="plain"),
        "urgent": rule("urgent", "ticket.created", key="urgent", conditions=urgent),
        "low": rule("low", "ticket.created", key="low", conditions=low),
        "off": rule("off", "ticket.created", key="off", enabled=False),
        "other": rule("other", "ticket.closed", key="other"),
    }.items():
        r = call(manifest, "alice", "POST", "/api/v1/automation/rules", spec)
        assert r.status_code == 201, r.content
        rules[name] = r.json()["data"]["rule_id"]

    event = {"type": "ticket.created", "data": {"ticket": {"id": "T-1", "priority": "urgent"}}}
    fired = call(manifest, "dave", "POST", "/api/v1/automation/events", event)

    assert fired.status_code == 202, fired.content
    data = fired.json()["data"]
    assert len(data["execution_ids"]) == 2
    executions = AutomationExecution.objects.filter(pk__in=data["execution_ids"])
    assert {str(e.automation_rule_id) for e in executions} == {rules["plain"], rules["urgent"]}
    assert all(e.status == "pending" for e in executions)

    run_worker()

    for execution_id in data["execution_ids"]:
        got = call(manifest, "dave", "GET", f"/api/v1/automation/executions/{execution_id}")
        execution = got.json()["data"]
        assert execution["status"] == "completed", execution
        assert execution["trigger_data"] == event["data"]
        assert execution["actions_successful"] == 1
    assert handler_calls.counts() == {"plain": 1, "urgent": 1}
