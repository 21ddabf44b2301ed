"""Listing definitions: `GET /api/v1/automation/rules` (AlgaPSA's `{data, pagination, _links}`)
and `GET /v1/workflows` (B3OS's envelope), tenant-scoped, newest first, keyset-paginated, filtered,
with bad parameters a 400 naming them; both in the OpenAPI schema with an example."""

from __future__ import annotations

import pytest
from django.test import Client

from executions.models import AutomationRule, SavedWorkflow

pytestmark = pytest.mark.django_db

RULE = {
    "name": "escalate urgent",
    "trigger": {"type": "event", "event": "ticket.created"},
    "conditions": [{"field": "ticket.priority", "operator": "equals", "value": "urgent"}],
    "actions": [
        {
            "url": "https://hooks.example.com/x",
            "headers": {
                "Authorization": {"value": "Bearer sk_live_0123456789abcdef", "secret": True}
            },
        }
    ],
}
WORKFLOW = {
    "name": "quote",
    "definition": {
        "nodes": {
            "root": {"type": "trigger"},
            "quote": {"type": "code", "code": "return {total: 1};", "dependsOn": ["root"]},
        },
        "triggerNodeIds": ["root"],
    },
}


def _rules(api, **params) -> dict:
    r = api.get("/api/v1/automation/rules", params)
    assert r.status_code == 200, r.content
    return r.json()


def test_rules_are_listed_newest_first_paginated_and_tenant_scoped(api):
    dave = api  # alice, an admin: she may write rules and workflows
    made = []
    for n in range(3):
        r = dave.post("/api/v1/automation/rules", {**RULE, "name": f"mine-{n}"})
        assert r.status_code == 201, r.content
        made.append(r.json()["data"]["rule_id"])
    other = api.as_("carol").post("/api/v1/automation/rules", {**RULE, "name": "mine-globex"})
    assert other.status_code == 201
    gone = dave.post("/api/v1/automation/rules", {**RULE, "name": "mine-deleted"}).json()
    assert (
        api.method("DELETE", f"/api/v1/automation/rules/{gone['data']['rule_id']}").status_code
        == 204
    )

    first = _rules(api.as_("dave"), q="mine-", limit=2)
    assert [r["rule_id"] for r in first["data"]] == made[::-1][:2]
    assert first["pagination"] == {
        "limit": 2,
        "next_cursor": first["pagination"]["next_cursor"],
        "has_next": True,
    }
    assert first["_links"]["self"] == {"href": "/api/v1/automation/rules", "method": "GET"}
    rest = _rules(dave, q="mine-", limit=2, cursor=first["pagination"]["next_cursor"])
    assert [r["rule_id"] for r in rest["data"]] == [made[0]]
    assert rest["pagination"]["has_next"] is False
    # Another tenant's rule and a deleted one are not listed; secrets are masked.
    every = _rules(dave, limit=100)["data"]
    assert other.json()["data"]["rule_id"] not in [r["rule_id"] for r in every]
    assert gone["data"]["rule_id"] not in [r["rule_id"] for r in every]
    assert (
        len(every)
        == AutomationRule.objects.filter(tenant__slug="acme", deleted_at__isnull=True).count()
    )
    header = first["data"][0]["actions"][0]["headers"]["Authorization"]
    assert header["secret"] is True and "sk_live" not in header["value"]
    # A viewer reads them.
    assert _rules(api.as_("bob"), q="mine-")["data"]


def test_rules_filter_by_enabled_and_event(api):
    dave = api  # alice, an admin: she may write rules and workflows
    off = dave.post(
        "/api/v1/automation/rules",
        {**RULE, "name": "f-off", "enabled": False, "trigger": {"type": "event", "event": "x.y"}},
    ).json()["data"]["rule_id"]
    on = dave.post("/api/v1/automation/rules", {**RULE, "name": "f-on"}).json()["data"]["rule_id"]
    assert [r["rule_id"] for r in _rules(dave, q="f-", enabled="false")["data"]] == [off]
    assert [r["rule_id"] for r in _rules(dave, q="f-", enabled="true")["data"]] == [on]
    assert [r["rule_id"] for r in _rules(dave, q="f-", event="x.y")["data"]] == [off]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"enabled": "yes"}, "enabled"),
        ({"cursor": "nonsense"}, "cursor"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_a_bad_rule_list_parameter_is_a_400_naming_it(api, params, field):
    r = api.as_("dave").get("/api/v1/automation/rules", params)
    assert r.status_code == 400, r.content
    assert field in r.json()["error"]["message"]


def test_an_execution_lists_cursor_is_not_a_rule_lists(api, manifest):
    page = api.as_("dave").get("/api/v1/automation/executions", {"limit": 1}).json()
    cursor = page["pagination"]["next_cursor"]
    assert cursor
    assert api.as_("dave").get("/api/v1/automation/rules", {"cursor": cursor}).status_code == 400


def test_listing_rules_needs_a_key(api):
    assert api.as_(None).get("/api/v1/automation/rules").status_code == 401


def _workflows(api, **params) -> dict:
    r = api.get("/v1/workflows", params)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["code"] == 200 and body["message"] == "success" and body["requestId"]
    return body["data"]


def test_saved_workflows_are_listed_newest_first_paginated_and_tenant_scoped(api):
    dave = api  # alice, an admin: she may write rules and workflows
    made = []
    for n in range(3):
        r = dave.post("/v1/workflows", {**WORKFLOW, "name": f"wf-{n}"})
        assert r.status_code == 201, r.content
        made.append(r.json()["data"]["id"])
    other = api.as_("carol").post("/v1/workflows", {**WORKFLOW, "name": "wf-globex"})
    assert other.status_code == 201

    first = _workflows(dave, q="wf-", limit=2)
    assert [w["id"] for w in first["items"]] == made[::-1][:2]
    assert first["items"][0]["definition"]["nodes"]["quote"]["type"] == "code"
    rest = _workflows(dave, q="wf-", limit=2, cursor=first["nextCursor"])
    assert [w["id"] for w in rest["items"]] == [made[0]] and rest["nextCursor"] is None
    every = _workflows(dave, limit=100)["items"]
    assert other.json()["data"]["id"] not in [w["id"] for w in every]
    assert len(every) == SavedWorkflow.objects.filter(tenant__slug="acme").count()
    assert _workflows(api.as_("bob"), q="wf-")["items"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": "101"}, "limit"), ({"cursor": "nonsense"}, "cursor"), ({"q": "\x00"}, "q")],
)
def test_a_bad_workflow_list_parameter_is_a_400_naming_it(api, params, field):
    r = api.as_("dave").get("/v1/workflows", params)
    assert r.status_code == 400, r.content
    assert r.json()["code"] == 400 and field in r.json()["message"]


def test_both_lists_are_in_the_schema_with_an_example():
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    rules = schema["paths"]["/api/v1/automation/rules"]["get"]
    workflows = schema["paths"]["/v1/workflows"]["get"]
    assert rules["operationId"] == "listAutomationRules"
    assert workflows["operationId"] == "listWorkflows"
    for op in (rules, workflows):
        assert op["responses"]["200"]["content"]["application/json"]["examples"]
        assert {p["name"] for p in op["parameters"]} >= {"q", "limit", "cursor"}
