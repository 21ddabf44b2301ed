"""Seed 000, defining and starting functions over HTTP (issue 19): validation (400 naming the
field, nothing changed), tenants (404), permissions (403), idempotent create, versions and
rollback, deactivation, the rate limit (429), the asynchronous execute and the webhook trigger.
Runs with a worker: tests/test_function_triggers.py and tests/sdk/test_mudbase_functions_api.py."""

from __future__ import annotations

import json

import pytest

from executions import services
from executions.kinds.functions import starting
from executions.models import Function, FunctionExecution, Tenant

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "charge-card",
    "code": "return {ok: true};",
    "trigger": {"type": "http"},
    "environment": {"REGION": "eu", "TOKEN": {"value": "s3cr3t-value", "secret": True}},
}


def functions_path(api) -> str:
    return f"/api/functions/projects/{api.manifest['acme']['functions']['project_id']}/functions"


def send(api, verb: str, path: str, body=None, headers=None):
    headers = {**api.auth_headers(), **(headers or {})}
    data = b"" if body is None else json.dumps(body).encode()
    return api.client.generic(verb, path, data, content_type="application/json", headers=headers)


def create(api, **changes) -> dict:
    response = api.post(functions_path(api), {**GOOD, **changes})
    assert response.status_code == 201, response.content
    return response.json()["data"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"code": "return {;"}, "code does not compile"),
        ({"code": ""}, "code"),
        ({"trigger": {"type": "event"}}, "'event'"),
        ({"trigger": {"type": "messaging"}}, "'messaging'"),
        ({"trigger": {"type": "cron"}}, "trigger.schedule"),
        ({"trigger": {"type": "cron", "schedule": "every tuesday"}}, "trigger.schedule"),
        ({"trigger": {"type": "http", "method": "PATCH"}}, "trigger.method"),
        ({"trigger": "http"}, "trigger"),
        ({"environment": {"1BAD": "x"}}, "environment: '1BAD'"),
        ({"environment": {"OK": 5}}, "environment.OK"),
        ({"environment": ["A"]}, "environment"),
    ],
)
def test_a_bad_create_is_a_400_naming_the_field_and_creates_nothing(api, body, field):
    before = Function.objects.count()
    response = api.post(functions_path(api), {**GOOD, **body})
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["success"] is False and field in error["error"]
    assert Function.objects.count() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limits": {"timeout": 0}}, "limits.timeout"),
        ({"limits": {"timeout": 10**9}}, "limits.timeout"),
        ({"limits": {"maxPayloadSize": -1}}, "limits.maxPayloadSize"),
        ({"limits": {"maxExecutionsPerMinute": 0}}, "limits.maxExecutionsPerMinute"),
        ({"limits": {"maxExecutionsPerHour": "many"}}, "limits.maxExecutionsPerHour"),
        ({"retryPolicy": {"maxRetries": 99}}, "retryPolicy.maxRetries"),
        ({"retryPolicy": {"backoffMs": -5}}, "retryPolicy.backoffMs"),
        ({"retryPolicy": {"enabled": "sometimes"}}, "retryPolicy.enabled"),
        ({"isActive": "maybe"}, "isActive"),
        ({"code": "}"}, "code"),
        ({}, "body"),
    ],
)
def test_a_bad_update_is_a_400_naming_the_field_and_changes_nothing(api, body, field):
    created = create(api)
    path = f"{functions_path(api)}/{created['_id']}"
    response = send(api, "PUT", path, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]
    assert api.get(path).json()["data"] | {"stats": None} == created | {"stats": None}


def test_create_get_list_update_and_delete(api):
    created = create(api, description="charges")
    assert created["version"] == 1 and created["isActive"] is True
    assert created["environment"]["TOKEN"]["value"] != "s3cr3t-value"  # masked
    path = f"{functions_path(api)}/{created['_id']}"

    updated = send(
        api,
        "PUT",
        path,
        {
            "name": "charge-card-v2",
            "limits": {"timeout": 5000, "maxExecutionsPerMinute": 10},
            "retryPolicy": {"enabled": True, "maxRetries": 2, "backoffMs": 0},
        },
    ).json()["data"]
    assert updated["name"] == "charge-card-v2" and updated["version"] == 1  # no code change
    assert updated["limits"]["timeout"] == 5000 and updated["limits"]["maxPayloadSize"] > 0
    assert updated["retryPolicy"] == {"enabled": True, "maxRetries": 2, "backoffMs": 0}
    stored = Function.objects.get(pk=created["_id"])
    assert stored.environment["TOKEN"]["value"] == "s3cr3t-value"  # the update kept it

    listed = api.get(functions_path(api), {"search": "v2", "isActive": "true"}).json()["data"]
    assert [f["_id"] for f in listed["functions"]] == [created["_id"]]
    assert listed["pagination"] == {"page": 1, "limit": 20, "total": 1, "totalPages": 1}

    assert send(api, "DELETE", path).json() == {"success": True, "message": "Function deleted"}
    assert api.get(path).status_code == 404


def test_every_code_change_is_a_version_rollback_is_one_more_and_executions_record_theirs(api):
    created = create(api, code="return 1;")
    path = f"{functions_path(api)}/{created['_id']}"
    send(api, "PUT", path, {"code": "return 2;", "versionComment": "two"})
    send(api, "PUT", path, {"code": "return 2;"})  # the same code: no new version
    rolled = api.post(f"{path}/rollback", {"version": 1}).json()["data"]
    assert (rolled["version"], rolled["code"]) == (3, "return 1;")

    versions = api.get(f"{path}/versions").json()["data"]["versions"]
    assert [(v["version"], v["code"]) for v in versions] == [
        (3, "return 1;"),
        (2, "return 2;"),
        (1, "return 1;"),
    ]
    assert versions[1]["comment"] == "two"
    assert api.post(f"{path}/rollback", {"version": 9}).status_code == 404
    assert api.post(f"{path}/rollback", {"version": 0}).status_code == 400

    started = api.post(f"{path}/execute", {"payload": {"a": 1}})
    assert started.status_code == 202
    execution = FunctionExecution.objects.get(pk=started.json()["data"]["executionId"])
    assert (execution.function_version, execution.code) == (3, "return 1;")


def test_execute_is_asynchronous_and_the_execution_reads_queued_until_a_worker_takes_it(api):
    created = create(api)
    path = f"{functions_path(api)}/{created['_id']}"
    response = api.post(f"{path}/execute", {"payload": {"orderId": 7}})
    assert response.status_code == 202
    body = response.json()
    assert body["success"] is True and body["data"]["status"] == "queued"
    detail = api.get(f"{path}/executions/{body['data']['executionId']}").json()["data"]
    assert detail["status"] == "queued" and detail["payload"] == {"orderId": 7}
    assert detail["functionVersion"] == 1


def test_a_deactivated_function_refuses_execution_with_a_400_saying_so(api):
    created = create(api)
    path = f"{functions_path(api)}/{created['_id']}"
    assert api.post(f"{path}/deactivate").json()["data"]["isActive"] is False
    refused = api.post(f"{path}/execute", {"payload": {}})
    assert refused.status_code == 400 and "deactivated" in refused.json()["error"]
    assert FunctionExecution.objects.filter(function_id=created["_id"]).count() == 0
    api.post(f"{path}/activate")
    assert api.post(f"{path}/execute", {"payload": {}}).status_code == 202


def test_past_the_functions_rate_limit_execute_is_a_429(api):
    created = create(api)
    path = f"{functions_path(api)}/{created['_id']}"
    send(api, "PUT", path, {"limits": {"maxExecutionsPerMinute": 2}})
    codes = [api.post(f"{path}/execute", {"payload": {}}).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    limited = api.post(f"{path}/execute", {"payload": {}}).json()
    assert limited["success"] is False and "maxExecutionsPerMinute" in limited["error"]
    assert FunctionExecution.objects.filter(function_id=created["_id"]).count() == 2

    send(api, "PUT", path, {"limits": {"maxExecutionsPerMinute": None, "maxExecutionsPerHour": 3}})
    assert api.post(f"{path}/execute", {"payload": {}}).status_code == 202
    assert api.post(f"{path}/execute", {"payload": {}}).status_code == 429


def test_a_payload_over_max_payload_size_is_a_400(api):
    created = create(api)
    path = f"{functions_path(api)}/{created['_id']}"
    send(api, "PUT", path, {"limits": {"maxPayloadSize": 20}})
    refused = api.post(f"{path}/execute", {"payload": {"text": "x" * 50}})
    assert refused.status_code == 400 and "maxPayloadSize" in refused.json()["error"]


def test_another_tenants_function_and_project_are_not_found(api):
    created = create(api)
    path = f"{functions_path(api)}/{created['_id']}"
    carol = api.as_("carol")  # globex's admin
    for verb, suffix, body in [
        ("GET", "", None),
        ("PUT", "", {"name": "mine"}),
        ("DELETE", "", None),
        ("POST", "/execute", {"payload": {}}),
        ("POST", "/activate", None),
        ("POST", "/deactivate", None),
        ("GET", "/versions", None),
        ("POST", "/rollback", {"version": 1}),
    ]:
        response = send(carol, verb, path + suffix, body)
        assert response.status_code == 404, (verb, suffix, response.content)
        assert response.json()["success"] is False
    assert carol.get(functions_path(api)).status_code == 404
    assert carol.post(functions_path(api), GOOD).status_code == 404
    assert Function.objects.get(pk=created["_id"]).name == "charge-card"
    assert not FunctionExecution.objects.filter(function_id=created["_id"]).exists()


def test_writing_needs_functions_write_and_executing_functions_execute(api):
    created = create(api)
    path = f"{functions_path(api)}/{created['_id']}"
    bob = api.as_("bob")  # a viewer: reads only
    assert bob.get(path).status_code == 200
    assert bob.post(functions_path(api), GOOD).status_code == 403
    assert send(bob, "PUT", path, {"name": "x"}).status_code == 403
    assert bob.post(f"{path}/execute", {"payload": {}}).status_code == 403
    assert bob.post(f"{path}/rollback", {"version": 1}).status_code == 403

    tenant = Tenant.objects.get(slug="acme")
    _, writer = services.create_api_key(
        tenant, name="deployer", permissions=["functions:read", "functions:write"]
    )
    _, runner = services.create_api_key(tenant, name="runner", permissions=["functions:execute"])
    assert api.post(f"{path}/execute", {}, headers={"X-API-Key": writer}).status_code == 403
    assert api.post(f"{path}/execute", {}, headers={"X-API-Key": runner}).status_code == 202
    assert send(api, "PUT", path, {"name": "y"}, headers={"X-API-Key": runner}).status_code == 403
    assert Function.objects.get(pk=created["_id"]).name == "charge-card"


def test_an_idempotent_replay_of_a_create_answers_201_like_the_first(api):
    headers = {"Idempotency-Key": "create-charge-card-1"}
    body = {**GOOD, "name": "created-once"}
    first = api.post(functions_path(api), body, headers=headers)
    again = api.post(functions_path(api), body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Function.objects.filter(name="created-once").count() == 1
    other = api.post(functions_path(api), {**GOOD, "name": "other"}, headers=headers)
    assert other.status_code == 422


def test_the_webhook_starts_the_projects_active_webhook_functions_with_the_body(api, settings):
    hook = create(api, name="on-order", trigger={"type": "webhook"})
    create(api, name="plain", trigger={"type": "http"})
    off = create(api, name="off", trigger={"type": "webhook"})
    api.post(f"{functions_path(api)}/{off['_id']}/deactivate")
    project = api.manifest["acme"]["functions"]["project_id"]

    anyone = api.as_(None)
    response = anyone.post(f"/api/functions/webhook/{project}", {"order": 42})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True and body["triggered"] == 1
    [result] = body["results"]
    assert result["functionId"] == hook["_id"] and result["status"] == "queued"
    execution = FunctionExecution.objects.get(pk=result["executionId"])
    assert execution.payload == {"order": 42} and execution.invoked_by == "trigger"

    other = api.manifest["globex"]["functions"]["project_id"]
    assert anyone.post(f"/api/functions/webhook/{other}", {}).status_code == 404

    settings.REDRIVE_FUNCTION_WEBHOOK_SECRET = "hook-secret"
    wrong = anyone.post(f"/api/functions/webhook/{project}", {}, {"X-Webhook-Secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["success"] is False
    right = anyone.post(
        f"/api/functions/webhook/{project}", {}, {"X-Webhook-Secret": "hook-secret"}
    )
    assert right.json()["triggered"] == 1


def test_a_cron_tick_fires_once_however_many_workers_saw_it_due(api):
    created = create(api, trigger={"type": "cron", "schedule": "*/5 * * * *"})
    function = Function.objects.get(pk=created["_id"])
    assert function.next_fire_at is not None and function.next_fire_at.minute % 5 == 0
    tick = function.next_fire_at
    # Two workers read the same due tick; each tries to move it on.
    assert starting.fire_tick(function.pk, tick, tick) is True
    assert starting.fire_tick(function.pk, tick, tick) is False
    runs = FunctionExecution.objects.filter(function=function)
    assert runs.count() == 1 and runs.get().invoked_by == "cron"
    function.refresh_from_db()
    assert function.next_fire_at > tick


def test_code_changed_outside_the_api_becomes_a_version_of_its_own(api):
    created = create(api, code="return 1;")
    path = f"{functions_path(api)}/{created['_id']}"
    Function.objects.filter(pk=created["_id"]).update(code="return 'admin';")  # version stays 1
    send(api, "PUT", path, {"code": "return 3;"})
    versions = api.get(f"{path}/versions").json()["data"]["versions"]
    assert [(v["version"], v["code"]) for v in versions] == [
        (3, "return 3;"),
        (2, "return 'admin';"),
        (1, "return 1;"),
    ]
