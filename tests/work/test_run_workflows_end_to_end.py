"""Seed 004 end to end: a workflow saved and started through the API with a real API key, run by
a real worker (real V8, a real HTTP server on 127.0.0.1, a real handler), its middle node failing,
the server fixed, the run retried through POST /v1/runs/{id}/retry, and `{{node.field}}` values
carried from the first run into the nodes the retry runs."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from executions import services
from executions.models import Membership, Tenant

pytestmark = pytest.mark.django_db(transaction=True)

ALLOW_LOCAL = {"REDRIVE_HTTP_ALLOW": "127.0.0.1"}


@pytest.fixture
def call(settings):
    """`call(method, path, body=None)` -> (status, JSON body), as a script with a runs:write
    key of tenant acme would."""
    settings.REDRIVE_HTTP_ALLOW = "*,127.0.0.1"  # the API checks a url's host when it is saved
    tenant = Tenant.objects.create(slug="acme", name="Acme")
    _, secret = services.create_api_key(
        tenant, name="deploy", permissions=["runs:read", "runs:write"]
    )
    client = Client()

    def request(method: str, path: str, body=None) -> tuple[int, dict]:
        r = client.generic(
            method,
            path,
            json.dumps(body) if body is not None else "",
            content_type="application/json",
            headers={"X-API-Key": secret},
        )
        return r.status_code, r.json()

    return request


@pytest.fixture
def console(call):
    """`console(name)`: a browser session of an admin of tenant acme."""

    def signed_in(name: str) -> Client:
        user = get_user_model().objects.create_user(name)
        Membership.objects.create(user=user, tenant=Tenant.objects.get(slug="acme"), role="admin")
        client = Client()
        client.force_login(user)
        return client

    return signed_in


def three_nodes(server) -> dict:
    return {
        "name": "charge an order",
        "definition": {
            "nodes": {
                "root": {"type": "trigger"},
                "quote": {
                    "type": "code",
                    "code": 'console.log("quoting", payload.orderId);\n'
                    "return {orderId: payload.orderId, total: payload.qty * 250};",
                    "params": {"orderId": "{{root.orderId}}", "qty": "{{root.qty}}"},
                    "dependsOn": ["root"],
                },
                "charge": {
                    "type": "http",
                    "url": server.url("/switch") + "?order={{quote.orderId}}",
                    "method": "POST",
                    "json": {"order": "{{quote.orderId}}", "amount": "{{quote.total}}"},
                    "expectStatus": [200],
                    "dependsOn": ["quote"],
                },
                "notify": {
                    "type": "handler",
                    "handler": "echo",
                    "params": {
                        "order": "{{quote.orderId}}",
                        "charged": "{{charge.json.switch}}",
                        "status": "{{charge.status}}",
                        "line": "order {{quote.orderId}}: {{quote.total}} cents",
                    },
                    "dependsOn": ["charge"],
                },
            },
            "triggerNodeIds": ["root"],
            "inputSchema": [
                {"key": "orderId", "type": "string", "required": True},
                {"key": "qty", "type": "number", "required": True},
            ],
        },
    }


def test_a_failed_middle_node_is_retried_after_the_fix_with_the_first_nodes_output_carried(
    call, console, http_server, run_worker
):
    server = http_server()
    status, body = call("POST", "/v1/workflows", three_nodes(server))
    assert status == 201, body
    workflow_id = body["data"]["id"]
    status, body = call(
        "POST", f"/v1/workflows/{workflow_id}/runs", {"inputs": {"orderId": "ord-7", "qty": 3}}
    )
    assert status == 201, body
    run_id = body["data"]["id"]

    run_worker(env=ALLOW_LOCAL)

    status, body = call("GET", f"/v1/runs/{run_id}")
    run = body["data"]
    assert run["status"] == "failure"
    states = run["nodeStates"]
    assert [states[n]["status"] for n in ("root", "quote", "charge", "notify")] == [
        "success",
        "success",
        "failure",
        "skipped",
    ]
    assert states["charge"]["error"].startswith("HTTP 503")
    assert run["executionState"]["quote"] == {"orderId": "ord-7", "total": 750}
    # The http node got the code node's output through its references.
    assert len(server.requests) == 1
    assert server.requests[0]["path"] == "/switch?order=ord-7"
    assert json.loads(server.requests[0]["body"]) == {"order": "ord-7", "amount": 750}

    server.switch = 200  # the fix
    status, body = call("POST", f"/v1/runs/{run_id}/retry")
    assert status == 200, body
    retry_id = body["data"]["id"]
    run_worker(env=ALLOW_LOCAL)

    status, body = call("GET", f"/v1/runs/{retry_id}")
    retry = body["data"]
    assert (retry["status"], retry["sourceRunId"]) == ("success", run_id)
    # The code node is not run again: its output is carried over and feeds the others.
    assert retry["nodeStates"]["quote"] == {"status": "success", "carriedOver": True}
    assert len(server.requests) == 2
    assert json.loads(server.requests[1]["body"]) == {"order": "ord-7", "amount": 750}
    assert retry["executionState"]["notify"]["params"] == {
        "order": "ord-7",
        "charged": True,
        "status": 200,
        "line": "order ord-7: 750 cents",
    }

    # The console's run page says what each node runs.
    page = console("alice").get(f"/executions/run/{retry_id}/").content.decode()
    assert "javascript" in page and "echo" in page
    assert f"POST {server.url('/switch')}?order={{{{quote.orderId}}}}" in page


def test_a_reference_to_a_field_the_output_lacks_fails_its_node_naming_it(call, run_worker):
    status, body = call(
        "POST",
        "/v1/workflows",
        {
            "name": "lacks a field",
            "definition": {
                "nodes": {
                    "root": {"type": "trigger"},
                    "quote": {"type": "code", "code": "return {};", "dependsOn": ["root"]},
                    "use": {
                        "type": "handler",
                        "handler": "echo",
                        "params": {"total": "{{quote.total}}"},
                        "dependsOn": ["quote"],
                    },
                },
                "triggerNodeIds": ["root"],
            },
        },
    )
    assert status == 201, body
    status, body = call("POST", f"/v1/workflows/{body['data']['id']}/runs", {})
    assert status == 201, body

    run_worker()

    status, body = call("GET", f"/v1/runs/{body['data']['id']}")
    assert body["data"]["status"] == "failure"
    assert body["data"]["nodeStates"]["use"]["error"] == (
        "{{quote.total}}: the output of 'quote' has no 'total'"
    )
    assert body["data"]["errorMessage"] == "{{quote.total}}: the output of 'quote' has no 'total'"
