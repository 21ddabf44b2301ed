"""Starting and defining work through the seeds' APIs (issue 19): `POST /job` (seed 002) and
automation rules and events (seed 001), with the demo cast's real API keys. Every bad input is
a 400 naming the field in the seed's shape and changes nothing; another tenant's rule is a 404
like a missing one; permissions are each operation's own; Idempotency-Key replays answer like
the first request. (tests/test_start_work.py runs what these start in real workers.)"""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse

from executions.models import AuditEvent, AutomationExecution, AutomationRule, Job, JobEvent

pytestmark = pytest.mark.django_db

RULES = "/api/v1/automation/rules"
EVENTS = "/api/v1/automation/events"


def put(api, path: str, body):
    import json

    return api.client.generic(
        "PUT", path, json.dumps(body), content_type="application/json", headers=api.auth_headers()
    )


# --- seed 002: POST /job ------------------------------------------------------------------------


def test_a_job_is_created_for_its_host_in_the_retrys_shape(api) -> None:
    r = api.post(
        "/job",
        {"operation": {"type": "echo", "data": {"n": 1}}, "target_hostname": "web-01"},
    )

    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {"job_id", "status", "revision", "timestamp"}
    assert body["status"] == "unprocessed" and body["revision"] == 1
    assert r["Location"] == f"/job/{body['job_id']}"
    job = Job.objects.get(pk=body["job_id"])
    assert job.tenant.slug == "acme" and job.target_hostname == "web-01"
    assert job.operation == {"type": "echo", "data": {"n": 1}} and job.operation_type == "echo"
    assert list(JobEvent.objects.filter(job=job).values_list("type", flat=True)) == ["created"]
    audit = AuditEvent.objects.get(target_id=str(job.pk))
    assert (audit.action, audit.kind, audit.source) == ("start", "job", "api")


def test_target_hostname_defaults_to_any(api) -> None:
    r = api.post("/job", {"operation": {"type": "noop"}})
    assert r.status_code == 201, r.content
    assert Job.objects.get(pk=r.json()["job_id"]).target_hostname == "_any"


def test_a_job_for_a_host_without_a_live_worker_says_so_in_the_api_and_console(api, client) -> None:
    from django.contrib.auth import get_user_model

    r = api.post("/job", {"operation": {"type": "noop"}, "target_hostname": "web-01"})
    job_id = r.json()["job_id"]

    said = "no live worker for host web-01"
    assert api.get(f"/job/{job_id}").json()["waiting"] == said

    client.force_login(get_user_model().objects.get(username="alice"))
    page = client.get(reverse("detail", kwargs={"kind": "job", "object_id": job_id}))
    assert said in page.content.decode()
    inbox = client.get(reverse("inbox"), {"kind": "job", "status": "unprocessed"})
    row = re.search(rf'<tr id="row-job-{job_id}".*?</tr>', inbox.content.decode(), re.S)
    assert row and said in row.group(0)

    # `_any` always has a worker as far as the job knows: nothing to say.
    anywhere = api.post("/job", {"operation": {"type": "noop"}}).json()["job_id"]
    assert api.get(f"/job/{anywhere}").json()["waiting"] is None


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "body", "Request body is required"),
        ({"target_hostname": "web-01"}, "operation", "operation is required"),
        ({"operation": None}, "operation", "operation must be an object"),
        (
            {"operation": {"type": "no.such.handler", "data": {}}},
            "operation.type",
            "operation.type must be command.exec or a registered handler's name",
        ),
        (
            {"operation": {"data": {}}},
            "operation.type",
            "operation.type must be command.exec or a registered handler's name",
        ),
        (
            {"operation": {"type": "echo", "data": [1]}},
            "operation.data",
            "operation.data must be an object",
        ),
        (
            {"operation": {"type": "command.exec", "data": {"args": ["x"]}}},
            "operation.data.command",
            "operation.data.command must be a non-empty string",
        ),
        (
            {"operation": {"type": "command.exec", "data": {"command": "ls", "args": "-l"}}},
            "operation.data.args",
            "operation.data.args must be a list of strings",
        ),
        (
            {"operation": {"type": "echo", "data": {"handler": "fail"}}},
            "operation.data.handler",
            "operation.data.handler must be absent or equal to operation.type",
        ),
        (
            {"operation": {"type": "echo"}, "target_hostname": "bad host!"},
            "target_hostname",
            "target_hostname must be a valid hostname",
        ),
    ],
)
def test_a_bad_job_is_a_400_naming_the_field_and_creates_nothing(api, body, field, message) -> None:
    before = Job.objects.count()
    r = api.post("/job", body)

    assert r.status_code == 400, r.content
    assert r.json() == {"error": message, "details": f"invalid field: {field}", "code": 400}
    assert Job.objects.count() == before


def test_creating_a_job_needs_jobs_write_and_the_operations_own_permission(api) -> None:
    command = {"operation": {"type": "command.exec", "data": {"command": "true"}}}
    before = Job.objects.count()

    viewer = api.as_("bob").post("/job", {"operation": {"type": "noop"}})
    assert viewer.status_code == 403
    assert viewer.json()["error"] == "Missing permission jobs:write"
    operator = api.as_("dave").post("/job", command)
    assert operator.status_code == 403
    assert operator.json()["error"] == "Missing permission command:execute"
    assert api.as_(None).post("/job", command).status_code == 401
    assert Job.objects.count() == before

    assert api.as_("dave").post("/job", {"operation": {"type": "noop"}}).status_code == 201
    assert api.as_("alice").post("/job", command).status_code == 201  # admin: command:execute


def test_an_idempotent_job_create_replays_the_first_answer(api) -> None:
    body = {"operation": {"type": "noop"}, "target_hostname": "web-01"}
    key = {"Idempotency-Key": f"job-{uuid.uuid4()}"}

    first = api.post("/job", body, headers=key)
    again = api.post("/job", body, headers=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Job.objects.filter(target_hostname="web-01", operation_type="noop").count() == 1
    other = api.post("/job", {**body, "target_hostname": "web-02"}, headers=key)
    assert other.status_code == 422


# --- seed 001: rules ------------------------------------------------------------------------------


def a_rule(**overrides) -> dict:
    return {
        "name": "Escalate urgent tickets",
        "trigger": {"type": "event", "event": "ticket.created"},
        "conditions": [{"field": "ticket.priority", "operator": "equals", "value": "urgent"}],
        "actions": [
            {"handler": "echo", "params": {"team": "support"}},
            {"code": "return {ok: true};"},
        ],
        "enabled": True,
        **overrides,
    }


def test_a_rule_is_created_in_algapsa_shape_with_links_that_resolve(api) -> None:
    r = api.post(RULES, a_rule())

    assert r.status_code == 201, r.content
    data = r.json()["data"]
    rule = AutomationRule.objects.get(pk=data["rule_id"])
    assert rule.tenant.slug == "acme" and rule.enabled and rule.version == 1
    assert data["trigger"] == {"type": "event", "event": "ticket.created"}
    assert data["conditions"] == a_rule()["conditions"]
    assert data["actions"][0] == {"handler": "echo", "params": {"team": "support"}}
    assert data["enabled"] is True and data["deleted_at"] is None
    for link in data["_links"].values():
        if link["method"] == "GET":
            assert api.get(link["href"]).status_code == 200, link
    assert AuditEvent.objects.get(target_id=str(rule.pk)).action == "create rule"


def test_a_rules_secret_header_is_masked_in_the_answer(api) -> None:
    action = {
        "url": "https://hooks.example.com/x",
        "headers": {"Authorization": {"value": "Bearer s3cr3t", "secret": True}},
    }
    r = api.post(RULES, a_rule(actions=[action]))
    assert r.status_code == 201, r.content
    assert "s3cr3t" not in r.content.decode()
    data = r.json()["data"]

    # Read back and PUT again as shown (masked): the secret is kept, not replaced by its mask.
    shown = api.get(f"{RULES}/{data['rule_id']}").json()["data"]
    assert "s3cr3t" not in str(shown)
    body = {k: shown[k] for k in ("name", "trigger", "conditions", "actions", "enabled")}
    assert put(api, f"{RULES}/{data['rule_id']}", body).status_code == 200
    stored = AutomationRule.objects.get(pk=data["rule_id"]).actions[0]["headers"]
    assert stored["Authorization"] == {"value": "Bearer s3cr3t", "secret": True}
    # Nor does an execution's snapshot of the actions show it.
    fired = api.post(EVENTS, {"type": "ticket.created", "data": {"ticket": {"priority": "urgent"}}})
    (execution_id,) = fired.json()["data"]["execution_ids"]
    assert "s3cr3t" not in fired.content.decode()
    assert "s3cr3t" not in api.get(f"/api/v1/automation/executions/{execution_id}").content.decode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "name must be 1 to 200 characters"),
        (
            {"trigger": {"type": "schedule", "cron": "* * * * *"}},
            "trigger.type must be 'event' (rules fire on events)",
        ),
        (
            {"trigger": {"type": "event"}},
            "trigger.event must be an event type of 1 to 200 printable characters",
        ),
        (
            {"conditions": [{"field": "a", "operator": "like", "value": 1}]},
            "conditions[0].operator must be one of equals, not_equals, in, not_in, contains, "
            "exists, gt, gte, lt, lte",
        ),
        ({"conditions": [{"field": "a"}]}, "conditions[0].value is required"),
        ({"actions": []}, "actions must be a list of 1 to 50 units of work"),
        (
            {"actions": [{"handler": "echo"}, {"handler": "no.such"}]},
            "actions[1].handler: unknown handler 'no.such'",
        ),
        (
            {"actions": [{"handler": "echo"}, {"url": "ftp://x"}]},
            "actions[1].url must be an http:// or https:// URL with a host",
        ),
        ({"enabled": "yes"}, "enabled must be true or false"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field_and_changes_nothing(api, change, message) -> None:
    before = AutomationRule.objects.count()
    created = api.post(RULES, a_rule(**change))

    assert created.status_code == 400, created.content
    error = created.json()["error"]
    assert error == {"code": "VALIDATION_ERROR", "message": message}
    assert set(created.json()) == {"error"}
    assert AutomationRule.objects.count() == before

    rule_id = api.post(RULES, a_rule()).json()["data"]["rule_id"]
    replaced = put(api, f"{RULES}/{rule_id}", a_rule(**change))
    assert replaced.status_code == 400 and replaced.json()["error"]["message"] == message
    assert AutomationRule.objects.get(pk=rule_id).version == 1


def test_put_replaces_a_rule_as_a_new_version(api) -> None:
    rule_id = api.post(RULES, a_rule()).json()["data"]["rule_id"]

    r = put(api, f"{RULES}/{rule_id}", a_rule(name="Renamed", enabled=False, conditions=[]))

    assert r.status_code == 200, r.content
    data = r.json()["data"]
    assert data["name"] == "Renamed" and data["enabled"] is False and data["version"] == 2
    rule = AutomationRule.objects.get(pk=rule_id)
    assert (rule.name, rule.enabled, rule.conditions, rule.version) == ("Renamed", False, [], 2)


def test_a_deleted_rule_is_kept_but_no_longer_fires_or_changes(api) -> None:
    rule_id = api.post(RULES, a_rule(conditions=[])).json()["data"]["rule_id"]

    r = api.method("DELETE", f"{RULES}/{rule_id}")

    assert r.status_code == 204
    assert api.get(f"{RULES}/{rule_id}").json()["data"]["deleted_at"] is not None
    assert api.method("DELETE", f"{RULES}/{rule_id}").status_code == 404
    assert put(api, f"{RULES}/{rule_id}", a_rule()).status_code == 404
    fired = api.post(EVENTS, {"type": "ticket.created", "data": {}})
    assert fired.status_code == 202 and fired.json()["data"]["execution_ids"] == []


def test_another_tenants_rule_is_a_404_like_a_missing_one(api, manifest) -> None:
    theirs = api.as_("carol").post(RULES, a_rule()).json()["data"]["rule_id"]
    missing = str(uuid.uuid4())
    expected = {"error": {"code": "NOT_FOUND", "message": "Automation rule not found"}}

    for rule_id in (theirs, missing):
        assert api.get(f"{RULES}/{rule_id}").json() == expected
        r = put(api, f"{RULES}/{rule_id}", a_rule(name="mine now"))
        assert r.status_code == 404 and r.json() == expected
        r = api.method("DELETE", f"{RULES}/{rule_id}")
        assert r.status_code == 404 and r.json() == expected
    rule = AutomationRule.objects.get(pk=theirs)
    assert rule.name == "Escalate urgent tickets" and rule.deleted_at is None
    # Nor does an event of one tenant fire another's rules.
    fired = api.post(EVENTS, {"type": "ticket.created", "data": {"ticket": {"priority": "urgent"}}})
    assert (
        not AutomationExecution.objects.filter(pk__in=fired.json()["data"]["execution_ids"])
        .exclude(tenant__slug="acme")
        .exists()
    )


def test_a_bad_rule_id_is_a_400_naming_it(api) -> None:
    r = api.method("DELETE", f"{RULES}/not-a-uuid")
    assert r.status_code == 400
    assert r.json() == {"error": {"code": "VALIDATION_ERROR", "message": "id must be a valid UUID"}}


def test_defining_rules_needs_automation_write_and_events_automation_execute(api) -> None:
    rule_id = api.post(RULES, a_rule()).json()["data"]["rule_id"]
    before = AutomationRule.objects.count()

    for who in ("dave", "bob"):
        r = api.as_(who).post(RULES, a_rule())
        assert r.status_code == 403
        assert r.json() == {
            "error": {"code": "FORBIDDEN", "message": "Missing permission automation:write"}
        }
        assert put(api.as_(who), f"{RULES}/{rule_id}", a_rule(name="x")).status_code == 403
        assert api.as_(who).method("DELETE", f"{RULES}/{rule_id}").status_code == 403
    assert AutomationRule.objects.count() == before
    assert AutomationRule.objects.get(pk=rule_id).deleted_at is None

    event = {"type": "ticket.created", "data": {"ticket": {"priority": "urgent"}}}
    viewer = api.as_("bob").post(EVENTS, event)
    assert viewer.status_code == 403
    assert viewer.json()["error"]["message"] == "Missing permission automation:execute"
    assert api.as_("dave").post(EVENTS, event).status_code == 202  # operators start work
    assert api.as_(None).post(EVENTS, event).status_code == 401


# --- seed 001: events -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": {}}, "type is required"),
        ({"type": ""}, "type must be an event type of 1 to 200 printable characters"),
        ({"type": "ticket.created", "data": [1]}, "data must be an object"),
    ],
)
def test_a_bad_event_is_a_400_naming_the_field_and_fires_nothing(api, body, message) -> None:
    api.post(RULES, a_rule(conditions=[]))
    before = AutomationExecution.objects.count()

    r = api.post(EVENTS, body)

    assert r.status_code == 400
    assert r.json() == {"error": {"code": "VALIDATION_ERROR", "message": message}}
    assert AutomationExecution.objects.count() == before


def test_an_event_answers_202_with_one_pending_execution_per_matching_rule(api) -> None:
    matching = api.post(RULES, a_rule()).json()["data"]["rule_id"]
    api.post(RULES, a_rule(conditions=[{"field": "ticket.priority", "value": "low"}]))
    api.post(RULES, a_rule(enabled=False))

    r = api.post(EVENTS, {"type": "ticket.created", "data": {"ticket": {"priority": "urgent"}}})

    assert r.status_code == 202, r.content
    data = r.json()["data"]
    assert data["event_type"] == "ticket.created" and len(data["execution_ids"]) == 1
    (execution,) = data["executions"]
    assert execution["execution_id"] == data["execution_ids"][0]
    assert execution["automation_rule_id"] == matching and execution["status"] == "pending"
    assert execution["actions_total"] == 2
    assert api.get(execution["_links"]["self"]["href"]).status_code == 200
    assert api.get(data["_links"]["executions"]["href"]).status_code == 200


def test_idempotent_rule_creates_and_events_replay_the_first_answer(api) -> None:
    key = {"Idempotency-Key": f"rule-{uuid.uuid4()}"}
    first = api.post(RULES, a_rule(name="once"), headers=key)
    again = api.post(RULES, a_rule(name="once"), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert AutomationRule.objects.filter(name="once").count() == 1

    event = {"type": "ticket.created", "data": {"ticket": {"priority": "urgent"}}}
    key = {"Idempotency-Key": f"event-{uuid.uuid4()}"}
    first = api.post(EVENTS, event, headers=key)
    count = AutomationExecution.objects.count()
    again = api.post(EVENTS, event, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and len(first.json()["data"]["execution_ids"]) == 1
    assert AutomationExecution.objects.count() == count
