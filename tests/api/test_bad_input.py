"""Bad query values and bodies on API routes (issue 16.8): a 400 in the seed's own error shape that
names the field, never a 500. Epoch milliseconds past year 9999, Unicode digits that isdigit()
accepts, ISO dates that leave the calendar when converted to UTC, NUL characters (PostgreSQL
refuses them in text) and cursors edited by hand."""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import fn_base, wf_base

pytestmark = pytest.mark.django_db

RANGE = "between 0001-01-02T00:00:00Z and 9999-12-30T00:00:00Z"
MS_RANGE = "from 0 to 253402128000000"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("999999999999999", "createdTimeStart"),  # year 33658
        ("²", "createdTimeStart"),  # isdigit() says yes, int() says no
        ("٣", "createdTimeEnd"),  # an Arabic-Indic digit: int() reads it, the seed means ASCII
        ("253402128000001", "createdTimeEnd"),
    ],
)
def test_workflow_list_refuses_epoch_ms_it_cannot_read(api, manifest, value, field):
    r = api.get(f"{wf_base(manifest['acme'])}/workflows/executions", {field: value})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "code": 400,
            "message": f"filter.{field} must be milliseconds since the epoch, {MS_RANGE}",
        }
    }


def test_workflow_list_post_refuses_the_same_in_its_body(api, manifest):
    path = f"{wf_base(manifest['acme'])}/workflows/executions/list"
    for value in (999999999999999, "²", -1, 1.5, True):
        r = api.post(path, {"filter": {"createdTimeStart": value}})
        assert r.status_code == 400, value
        assert r.json()["error"]["message"] == (
            f"filter.createdTimeStart must be milliseconds since the epoch, {MS_RANGE}"
        )
    ok = api.post(path, {"filter": {"createdTimeStart": 0, "createdTimeEnd": 253402128000000}})
    assert ok.status_code == 200, ok.content
    assert ok.json()["items"]


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:30:00Z", "0001-01-01T00:30:00Z"]
)
def test_iso_dates_outside_the_range_are_a_400_on_every_list(api, manifest, value):
    items = manifest["acme"]
    checks = [
        ("/api/failures", {"since": value}, "since"),
        ("/api/failures", {"until": value}, "until"),
        ("/api/v1/automation/executions", {"since": value}, "since"),
        ("/v1/runs", {"until": value}, "until"),
        (f"{fn_base(items)}/logs", {"since": value}, "since"),
    ]
    for path, query, field in checks:
        r = api.get(path, query)
        assert r.status_code == 400, (path, r.content)
        body = json.dumps(r.json())
        assert f"{field} must be an ISO 8601 date-time {RANGE}" in body, (path, body)


def test_the_failures_api_reads_a_comma_in_q_as_part_of_the_text(api, manifest):
    from executions.models import AutomationExecution

    failed = manifest["acme"]["automations"]["failed"]
    AutomationExecution.objects.filter(pk=failed).update(
        error_message="connection refused, retry later"
    )
    r = api.get("/api/failures", {"q": "refused, retry"})
    assert r.status_code == 200, r.content
    assert [(i["kind"], i["id"]) for i in r.json()["items"]] == [("automation", failed)]
    r = api.post("/api/failures/retry", {"filter": {"q": "refused, retry"}, "dry_run": True})
    assert r.status_code == 200, r.content
    assert (r.json()["total"], r.json()["will_retry"]) == (1, 1)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _b64("2025-01-01T00:00:00+00:00|run|started_at|run_\x00"),
        _b64("0001-01-01T00:00:00+14:00|run|started_at|run_1"),
        _b64("9999-12-31T23:59:59-14:00|job|updated_at|x"),
    ],
)
def test_a_cursor_edited_by_hand_is_a_400_on_the_failures_api(api, manifest, cursor):
    r = api.get("/api/failures", {"cursor": cursor})
    assert r.status_code == 400, r.content
    assert r.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize(
    "cursor",
    [
        _b64("2025-01-01T00:00:00+00:00|run|started_at|run_\x00"),
        _b64("0001-01-01T00:00:00+14:00|run|started_at|run_1"),
    ],
)
def test_a_cursor_edited_by_hand_is_a_400_on_a_seed_list(api, manifest, cursor):
    r = api.get("/v1/runs", {"cursor": cursor})
    assert r.status_code == 400, r.content
    assert r.json()["code"] == 400 and "cursor" in r.json()["message"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "sessions",
            {"items": [{"clientId": "a\x00", "clientSecret": "a\x00.b"}]},
            "Invalid client credentials",
        ),
        (
            "workflows/executions/{failed}/retry",
            {"authentication": {"nonce": "n\x00nce"}},
            "authentication.nonce is not a valid, unused session nonce",
        ),
        (
            "workflows/executions/list",
            {"filter": {"workflowFilters": [{"externalId": "etl\x00"}]}},
            "filter.workflowFilters must be a list of {externalId, version}",
        ),
    ],
)
def test_nul_in_a_workflow_body_is_a_400(api, manifest, path, body, message):
    items = manifest["acme"]
    url = f"{wf_base(items)}/" + path.format(failed=items["workflows"]["failed"])
    r = api.post(url, body)
    assert r.status_code == 400, r.content
    assert r.json() == {"error": {"code": 400, "message": message}}


def test_the_schema_ignores_a_version_parameter(client):
    # drf-spectacular puts ?version= into the Content-Disposition filename: a CR there was a 500.
    r = client.get("/api/schema/", {"format": "json", "version": "1\r\nX-Injected: 1"})
    assert r.status_code == 200
    assert r.json()["info"]["version"] == "1.0.0"
    assert r["Content-Disposition"] == 'inline; filename="Redrive API.json"'


def test_a_token_for_a_tenant_slug_with_nul_is_a_400(api, manifest):
    # Only reached with the right password: the slug is looked up after authentication.
    body = {"username": "alice", "password": manifest["users"]["alice"]["password"]}
    r = api.as_(None).post("/api/auth/token", {**body, "tenant": "acme\x00"})
    assert r.status_code == 400, r.content
    assert r.json()["error"]["message"] == "tenant must be a tenant slug"
    assert api.as_(None).post("/api/auth/token", {**body, "tenant": "acme"}).status_code == 200


def test_serializer_errors_become_one_message_naming_the_field_by_its_path():
    # errors.first_error: is_valid()'s errors in every seed's shape. Redrive's own messages (code
    # OWN) stand as written; DRF's get the field's path put in front.
    from rest_framework.exceptions import ErrorDetail

    from executions.api.errors import OWN, first_error

    required = {"username": [ErrorDetail("This field is required.", "required")]}
    assert first_error(required) == ("username", "username is required")
    nested = {"items": {0: {"clientSecret": [ErrorDetail("Invalid client credentials", OWN)]}}}
    assert first_error(nested) == ("items[0].clientSecret", "Invalid client credentials")
    whole = {"filter": {"non_field_errors": [ErrorDetail("filter must be an object", "invalid")]}}
    assert first_error(whole) == ("filter", "filter must be an object")
    many = {"items": [{}, {"id": [ErrorDetail("Not a valid string.", "invalid")]}]}
    assert first_error(many) == ("items[1].id", "items[1].id: Not a valid string.")
