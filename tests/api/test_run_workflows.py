"""Seed 004 (runs): saving a workflow (POST /v1/workflows, PUT and GET /v1/workflows/{id}) and
starting a run of it (POST /v1/workflows/{id}/runs), through the API with the cast's real keys:
the seed's envelope, 400s naming the field (and saving nothing), runs:write, tenants, keys."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from executions.models import Run, SavedWorkflow

pytestmark = pytest.mark.django_db

SECRET = "Bearer sk_live_0123456789abcdef"
DEFINITION = {
    "nodes": {
        "root": {"type": "trigger"},
        "quote": {
            "type": "code",
            "code": "return {orderId: payload.orderId, total: payload.qty * 250};",
            "params": {"orderId": "{{root.orderId}}", "qty": "{{root.qty}}"},
            "dependsOn": ["root"],
        },
        "charge": {
            "type": "http",
            "url": "https://billing.example.com/charges/{{quote.orderId}}",
            "method": "POST",
            "headers": {"Authorization": {"value": SECRET, "secret": True}},
            "json": {"amount": "{{quote.total}}"},
            "dependsOn": ["quote"],
        },
        "notify": {
            "type": "handler",
            "handler": "echo",
            "params": {"order": "{{quote.orderId}}", "status": "{{charge.status}}"},
            "dependsOn": ["charge"],
        },
    },
    "triggerNodeIds": ["root"],
    "inputSchema": [
        {"key": "orderId", "type": "string", "required": True, "description": "the order"},
        {"key": "qty", "type": "number", "required": True},
        {"key": "note", "type": "string"},
    ],
}
BODY = {"name": "charge an order", "description": "quote, charge, notify", "definition": DEFINITION}
WORKFLOW_FIELDS = {
    "id",
    "name",
    "description",
    "definition",
    "version",
    "organizationId",
    "ownerUserId",
    "createdAt",
    "updatedAt",
}


def created(api, body=BODY) -> dict:
    r = api.post("/v1/workflows", body)
    assert r.status_code == 201, r.content
    return r.json()["data"]


def with_change(path: tuple, value) -> dict:
    """BODY with the value at `path` (keys into it) replaced; None deletes it."""
    body = copy.deepcopy(BODY)
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


def test_it_saves_a_workflow_in_the_seed_envelope_and_reads_it_back(api, manifest):
    r = api.post("/v1/workflows", BODY)
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {"code", "data", "message", "requestId"}
    assert (body["code"], body["message"], body["requestId"]) == (201, "success", r["X-Request-ID"])
    data = body["data"]
    assert set(data) == WORKFLOW_FIELDS
    assert data["id"].startswith("wf_") and data["version"] == 1
    assert data["name"] == "charge an order" and data["ownerUserId"].startswith("key:")
    assert data["definition"]["nodes"]["quote"]["params"] == {
        "orderId": "{{root.orderId}}",
        "qty": "{{root.qty}}",
    }
    # The secret header is stored as sent, and never shown.
    shown = data["definition"]["nodes"]["charge"]["headers"]["Authorization"]
    assert shown == {"secret": True, "value": "********cdef"}
    stored = SavedWorkflow.objects.get(pk=data["id"]).definition
    assert stored["nodes"]["charge"]["headers"]["Authorization"]["value"] == SECRET

    again = api.get(f"/v1/workflows/{data['id']}")
    assert again.status_code == 200
    assert again.json()["code"] == 200 and again.json()["data"] == data


BAD = [
    (("definition", "nodes", "quote", "params", "total"), "{{charge.json.amount}}",
     "definition.nodes.quote.params.total: {{charge.json.amount}} references node 'charge', "
     "which is not upstream of 'quote' (add it to dependsOn, directly or through another node)"),
    (("definition", "nodes", "notify", "params", "x"), "sent {{ship.id}}",
     "definition.nodes.notify.params.x: {{ship.id}} references unknown node 'ship'"),
    (("definition", "nodes", "charge", "json", "currency"), "{{root.currency}}",
     "definition.nodes.charge.json.currency: {{root.currency}} names input 'currency', which "
     "inputSchema does not declare"),
    (("definition", "nodes", "quote", "type"), "python",
     "definition.nodes.quote.type must be one of code, http, handler (or trigger)"),
    (("definition", "nodes", "quote", "type"), ["code"],
     "definition.nodes.quote.type must be one of code, http, handler (or trigger)"),
    (("definition", "nodes", "root\n"), {"type": "trigger"},
     "definition.nodes: node id 'root\\n' must be 1 to 64 letters, digits, '_' or '-'"),
    (("definition", "inputSchema", 0, "type"), ["string"],
     "definition.inputSchema[0].type must be one of string, number, boolean, object, array"),
    (("definition", "nodes", "quote", "code"), "",
     "definition.nodes.quote.code must be a non-empty string"),
    (("definition", "nodes", "notify", "handler"), "no_such_handler",
     "definition.nodes.notify.handler: unknown handler 'no_such_handler'"),
    (("definition", "nodes", "charge", "url"), "ftp://billing.example.com/x",
     "definition.nodes.charge.url must be an http:// or https:// URL with a host"),
    (("definition", "nodes", "charge", "url"), "http://127.0.0.1/charges",
     "definition.nodes.charge.url: host not allowed: 127.0.0.1"),
    (("definition", "nodes", "charge", "url"), "https://{{quote.orderId}}/x",
     "definition.nodes.charge.url: a reference may fill a url's path or query only: write its "
     "scheme and host out"),
    (("definition", "nodes", "charge", "method"), "BREW",
     "definition.nodes.charge.method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    (("definition", "nodes", "quote", "dependsOn"), ["root", "nowhere"],
     "definition.nodes.quote.dependsOn[1]: 'nowhere' is not a node of this definition"),
    (("definition", "nodes", "quote", "dependsOn"), ["notify"],
     "definition.nodes.quote.dependsOn: the nodes depend on each other in a cycle "
     "(quote -> notify -> charge -> quote)"),
    (("definition", "nodes", "cmd"), {"type": "handler", "command": "ls", "dependsOn": ["root"]},
     "definition.nodes.cmd.command is not allowed here (allowed: handler)"),
    (("definition", "triggerNodeIds"), ["start"],
     "definition.triggerNodeIds[0]: 'start' is not a node of this definition"),
    (("definition", "triggerNodeIds"), None,
     'definition.triggerNodeIds must be a non-empty list of node ids (e.g. ["root"])'),
    (("definition", "nodes"), {},
     "definition.nodes must be an object of nodes by id, with at least one"),
    (("definition", "inputSchema", 1, "type"), "integer",
     "definition.inputSchema[1].type must be one of string, number, boolean, object, array"),
    (("definition", "trigerNodeIds"), ["root"],
     "definition.trigerNodeIds is not a field of a definition (nodes, triggerNodeIds, "
     "inputSchema, variableDefs, blockExpansions)"),
    (("definition",), None, "definition is required"),
    (("name",), None, "name is required"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[m[:40] for *_, m in BAD])
def test_a_bad_definition_is_a_400_naming_the_field_and_saves_nothing(
    api, manifest, path, value, message
):
    before = SavedWorkflow.objects.count()
    r = api.post("/v1/workflows", with_change(path, value))
    assert r.status_code == 400, r.content
    assert r.json() == {"code": 400, "message": message, "requestId": r["X-Request-ID"]}
    assert SavedWorkflow.objects.count() == before


def test_a_bad_put_is_a_400_and_changes_nothing(api, manifest):
    workflow = created(api)
    bad = with_change(("definition", "nodes", "notify", "params", "x"), "{{ship.id}}")
    r = api.put(f"/v1/workflows/{workflow['id']}", bad)
    assert r.status_code == 400
    assert r.json()["message"].startswith("definition.nodes.notify.params.x: {{ship.id}}")
    assert api.get(f"/v1/workflows/{workflow['id']}").json()["data"] == workflow


def test_put_replaces_it_as_a_new_version_that_new_runs_take_and_old_runs_keep(api, manifest):
    workflow = created(api)
    first = api.post(
        f"/v1/workflows/{workflow['id']}/runs", {"inputs": {"orderId": "o1", "qty": 1}}
    )
    assert first.status_code == 201

    # Sent back as GET shows it, the masked secret keeps its stored value.
    changed = copy.deepcopy({**BODY, "definition": workflow["definition"]})
    changed["definition"]["nodes"]["charge"]["url"] = "https://billing.example.com/v2/charges"
    changed["name"] = "charge an order (v2)"
    r = api.put(f"/v1/workflows/{workflow['id']}", changed)
    assert r.status_code == 200, r.content
    data = r.json()["data"]
    assert (r.json()["code"], data["version"], data["name"]) == (200, 2, "charge an order (v2)")
    stored = SavedWorkflow.objects.get(pk=workflow["id"]).definition["nodes"]["charge"]
    assert stored["headers"]["Authorization"] == {"value": SECRET, "secret": True}
    assert stored["url"] == "https://billing.example.com/v2/charges"

    second = api.post(
        f"/v1/workflows/{workflow['id']}/runs", {"inputs": {"orderId": "o2", "qty": 2}}
    )
    assert second.json()["data"]["workflowVersion"] == 2
    assert second.json()["data"]["workflowDefinition"]["nodes"]["charge"]["url"].endswith(
        "/v2/charges"
    )
    old = Run.objects.get(pk=first.json()["data"]["id"])
    assert old.workflow_version == 1
    assert old.workflow_definition["nodes"]["charge"]["url"].endswith("/charges/{{quote.orderId}}")

    # The same definition again is no new version.
    same = api.put(f"/v1/workflows/{workflow['id']}", changed)
    assert same.json()["data"]["version"] == 2


def test_it_starts_a_run_of_the_current_definition_with_its_inputs(api, manifest):
    workflow = created(api)
    r = api.post(
        f"/v1/workflows/{workflow['id']}/runs", {"inputs": {"orderId": "ord_42", "qty": 2}}
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["code"], body["message"], body["requestId"]) == (201, "success", r["X-Request-ID"])
    data = body["data"]
    assert data["status"] == "running" and data["sourceRunId"] is None
    assert data["workflowId"] == workflow["id"] and data["workflowVersion"] == 1
    assert data["propValues"] == {"orderId": "ord_42", "qty": 2}
    assert (data["triggerNodeId"], data["triggerSource"]) == ("root", "api")
    assert data["triggeredBy"] == workflow["ownerUserId"]
    # The snapshot is shown like the workflow: secrets masked.
    assert data["workflowDefinition"]["nodes"]["charge"]["headers"]["Authorization"] == {
        "secret": True,
        "value": "********cdef",
    }
    assert api.get(f"/v1/runs/{data['id']}").json()["data"]["status"] == "running"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": {"qty": 2}}, "inputs.orderId is required"),
        ({"inputs": {"orderId": "o", "qty": "two"}}, "inputs.qty must be a number"),
        ({"inputs": {"orderId": "o", "qty": True}}, "inputs.qty must be a number"),
        ({"inputs": {"orderId": 7, "qty": 1}}, "inputs.orderId must be a string"),
        (
            {"inputs": {"orderId": "o", "qty": 1, "coupon": "x"}},
            "inputs.coupon is not an input of this workflow (see its inputSchema)",
        ),
        ({"inputs": ["o", 1]}, 'inputs: Expected a dictionary of items but got type "list".'),
        (
            {"inputs": {"orderId": "o", "qty": 1}, "triggerNodeId": "cron"},
            "triggerNodeId must be one of the workflow's triggerNodeIds (root)",
        ),
        ({}, "inputs.orderId is required"),
    ],
)
def test_inputs_are_checked_against_the_input_schema_and_start_nothing(
    api, manifest, body, message
):
    workflow = created(api)
    before = Run.objects.count()
    r = api.post(f"/v1/workflows/{workflow['id']}/runs", body)
    assert r.status_code == 400, r.content
    assert r.json() == {"code": 400, "message": message, "requestId": r["X-Request-ID"]}
    assert Run.objects.count() == before


def test_another_tenants_workflow_is_the_same_404_as_a_missing_one(api, manifest):
    theirs = created(api.as_("carol"))["id"]
    for pk in (theirs, "wf_doesnotexist"):
        for r in (
            api.get(f"/v1/workflows/{pk}"),
            api.put(f"/v1/workflows/{pk}", BODY),
            api.post(f"/v1/workflows/{pk}/runs", {"inputs": {"orderId": "o", "qty": 1}}),
        ):
            assert r.status_code == 404, r.content
            assert r.json() == {
                "code": 404,
                "message": "Workflow not found",
                "requestId": r["X-Request-ID"],
            }
    assert SavedWorkflow.objects.get(pk=theirs).version == 1
    assert not Run.objects.filter(workflow_id=theirs).exists()


def test_without_runs_write_saving_and_starting_are_a_403(api, manifest):
    workflow = created(api)
    bob = api.as_("bob")  # a viewer: runs:read, not runs:write
    for r in (
        bob.post("/v1/workflows", BODY),
        bob.put(f"/v1/workflows/{workflow['id']}", BODY),
        bob.post(f"/v1/workflows/{workflow['id']}/runs", {"inputs": {"orderId": "o", "qty": 1}}),
    ):
        assert r.status_code == 403, r.content
        assert r.json()["message"] == "Missing permission runs:write"
    assert bob.get(f"/v1/workflows/{workflow['id']}").status_code == 200
    assert SavedWorkflow.objects.filter(tenant__slug="acme").count() == 1
    assert not Run.objects.filter(workflow_id=workflow["id"]).exists()
    assert api.as_(None).post("/v1/workflows", BODY).status_code == 401


def test_a_malformed_workflow_id_is_a_400(api, manifest):
    r = api.post("/v1/workflows/wf$bad/runs", {"inputs": {}})
    assert r.status_code == 400
    assert r.json()["message"] == "id must be 1 to 64 letters, digits, '_' or '-'"


def test_a_create_with_an_idempotency_key_replays_the_first_answer(api, manifest):
    key = {"Idempotency-Key": "create-order-workflow"}
    first = api.post("/v1/workflows", BODY, headers=key)
    again = api.post("/v1/workflows", BODY, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert SavedWorkflow.objects.filter(name=BODY["name"]).count() == 1
    # The key names that request: another body with it is refused, and saves nothing.
    other = api.post("/v1/workflows", {**BODY, "name": "other"}, headers=key)
    assert other.status_code == 422
    assert not SavedWorkflow.objects.filter(name="other").exists()


def test_a_start_with_an_idempotency_key_starts_one_run(api, manifest):
    workflow = created(api)
    path, body = f"/v1/workflows/{workflow['id']}/runs", {"inputs": {"orderId": "o", "qty": 1}}
    key = {"Idempotency-Key": "start-o"}
    first = api.post(path, body, headers=key)
    again = api.post(path, body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Run.objects.filter(workflow_id=workflow["id"]).count() == 1
    # A refused start keeps no key: the same key may start the corrected request.
    bad = api.post(path, {"inputs": {}}, headers={"Idempotency-Key": "start-p"})
    assert bad.status_code == 400
    good = api.post(
        path, {"inputs": {"orderId": "p", "qty": 1}}, headers={"Idempotency-Key": "start-p"}
    )
    assert good.status_code == 201 and good.json()["data"]["propValues"]["orderId"] == "p"


def test_the_admin_shows_a_workflow_and_its_runs_with_secrets_masked(api, manifest):
    workflow = created(api)
    run = api.post(
        f"/v1/workflows/{workflow['id']}/runs", {"inputs": {"orderId": "o", "qty": 1}}
    ).json()["data"]["id"]
    browser = Client()
    browser.force_login(get_user_model().objects.get(username="alice"))  # a tenant admin
    for url in (
        reverse("admin:executions_savedworkflow_change", args=[workflow["id"]]),
        reverse("admin:executions_run_change", args=[run]),
    ):
        r = browser.get(url)
        assert r.status_code == 200, url
        page = r.content.decode()
        assert "********cdef" in page and "{{quote.orderId}}" in page
        assert SECRET not in page
