"""What every endpoint shares: the tenant matrix (foreign ids are 404), the viewer's 403 on every
retry, 401 for missing or bad credentials, each seed's error shape for 405/415/413/400/500,
gzip bodies, request ids and the Idempotency-Key replay."""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from executions import services, tokens
from executions.api.errors import error_body
from executions.models import ApiKey, FunctionExecution, IdempotencyRecord, Job, Run

from .conftest import fn_base, wf_base

pytestmark = pytest.mark.django_db


@dataclass
class Endpoint:
    name: str
    seed: str
    method: str
    retry: bool = False

    def path(self, m: dict, tenant: str) -> str:
        items = m[tenant]
        fn = fn_base(items)
        wf = wf_base(items)
        execution = (
            FunctionExecution.objects.filter(function_id=items["functions"]["function_id"])
            .order_by("-executed_at", "-id")
            .values_list("pk", flat=True)
            .first()
        )
        return {
            "function-retry": f"{fn}/retry/0",
            "function-retry-by-id": f"{fn}/executions/{execution}/retry",
            "function-logs": f"{fn}/logs",
            "function-execution": f"{fn}/executions/{execution}",
            "automation-retry": (
                f"/api/v1/automation/executions/{items['automations']['failed']}/retry"
            ),
            "automation-execution": (
                f"/api/v1/automation/executions/{items['automations']['failed']}"
            ),
            "automation-rule": f"/api/v1/automation/rules/{rule_of(items)}",
            "job-retry": f"/job/{items['jobs']['failed']}/retry",
            "job": f"/job/{items['jobs']['failed']}",
            "workflow-retry": f"{wf}/workflows/executions/{items['workflows']['failed']}/retry",
            "workflow-execution": f"{wf}/workflows/executions/{items['workflows']['failed']}",
            "workflow-executions": f"{wf}/workflows/executions",
            "workflow-executions-list": f"{wf}/workflows/executions/list",
            "sessions": f"{wf}/sessions",
            "run-retry": f"/v1/runs/{items['runs']['failure']}/retry",
            "run": f"/v1/runs/{items['runs']['failure']}",
            "automation-executions": "/api/v1/automation/executions",
            "jobs": "/job",
            "runs": "/v1/runs",
            "failures": "/api/failures",
            "failures-retry": "/api/failures/retry",
            "bulk-retry": f"/api/bulk-retries/{bulk_of(m, tenant)}",
            "bulk-retry-cancel": f"/api/bulk-retries/{bulk_of(m, tenant)}/cancel",
        }[self.name]

    def body(self, m: dict, tenant: str, api=None) -> dict | None:
        if self.name == "workflow-retry":
            return {"authentication": {"nonce": "not-checked-before-the-lookup"}}
        if self.name == "sessions":
            return {"items": [{"tokenExchange": True}]}
        if self.name == "failures-retry":
            return {"ids": {"job": [m[tenant]["jobs"]["failed"]]}}
        return None


def rule_of(items: dict) -> str:
    from executions.models import AutomationExecution

    return str(
        AutomationExecution.objects.get(pk=items["automations"]["failed"]).automation_rule_id
    )


_BULKS: dict = {}


def bulk_of(m: dict, tenant: str) -> str:
    from executions.models import BulkRetry, Tenant

    key = (id(m), tenant)
    if key not in _BULKS:
        t = Tenant.objects.get(slug=tenant)
        _BULKS[key] = str(BulkRetry.objects.create(tenant=t, actor="test", source="api").pk)
    return _BULKS[key]


ENDPOINTS = [
    Endpoint("function-retry", "000", "POST", retry=True),
    Endpoint("function-retry-by-id", "000", "POST", retry=True),
    Endpoint("function-logs", "000", "GET"),
    Endpoint("function-execution", "000", "GET"),
    Endpoint("automation-retry", "001", "POST", retry=True),
    Endpoint("automation-execution", "001", "GET"),
    Endpoint("automation-rule", "001", "GET"),
    Endpoint("automation-executions", "001", "GET"),
    Endpoint("job-retry", "002", "POST", retry=True),
    Endpoint("job", "002", "GET"),
    Endpoint("jobs", "002", "GET"),
    Endpoint("workflow-retry", "003", "POST", retry=True),
    Endpoint("workflow-execution", "003", "GET"),
    Endpoint("workflow-executions", "003", "GET"),
    Endpoint("workflow-executions-list", "003", "POST"),
    Endpoint("sessions", "003", "POST"),
    Endpoint("run-retry", "004", "POST", retry=True),
    Endpoint("run", "004", "GET"),
    Endpoint("runs", "004", "GET"),
    Endpoint("failures", "redrive", "GET"),
    Endpoint("failures-retry", "redrive", "POST", retry=True),
    Endpoint("bulk-retry", "redrive", "GET"),
    Endpoint("bulk-retry-cancel", "redrive", "POST"),
]
# Endpoints that name one object of a tenant (the others list the caller's own tenant).
WITH_IDS = [
    e
    for e in ENDPOINTS
    if e.name not in ("automation-executions", "jobs", "runs", "failures", "failures-retry")
]


def call(api, endpoint: Endpoint, manifest: dict, tenant: str = "acme", headers=None):
    path = endpoint.path(manifest, tenant)
    if endpoint.method == "GET":
        return api.get(path, headers=headers)
    return api.post(path, endpoint.body(manifest, tenant), headers=headers)


def assert_shape(seed: str, r, status: int, message: str | None = None) -> None:
    assert r.status_code == status, (r.status_code, r.content)
    body = r.json()
    if seed == "000":
        assert set(body) == {"success", "error"} and body["success"] is False
        text = body["error"]
    elif seed == "001":
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        text = body["error"]["message"]
    elif seed == "002":
        assert set(body) == {"error", "details", "code"} and body["code"] == status
        text = body["error"]
    elif seed == "003":
        assert body == {"error": {"code": status, "message": body["error"]["message"]}}
        text = body["error"]["message"]
    elif seed == "004":
        assert body == {"code": status, "message": body["message"], "requestId": r["X-Request-ID"]}
        text = body["message"]
    else:
        assert set(body) == {"error"} and body["error"]["requestId"] == r["X-Request-ID"]
        assert {"code", "message", "requestId"} <= set(body["error"])
        text = body["error"]["message"]
    if message is not None:
        assert text == message


@pytest.mark.parametrize("endpoint", WITH_IDS, ids=lambda e: e.name)
def test_another_tenants_ids_are_404(api, manifest, endpoint):
    # alice (acme, admin) addresses globex's objects: 404, in the seed's shape.
    r = call(api, endpoint, manifest, tenant="globex")
    assert_shape(endpoint.seed, r, 404)


def test_foreign_ids_in_a_bulk_selection_match_nothing(api, manifest):
    g = manifest["globex"]
    r = api.post(
        "/api/failures/retry",
        {"ids": {"job": [g["jobs"]["failed"]], "run": [g["runs"]["failure"]]}, "dry_run": True},
    )
    assert r.status_code == 200
    assert r.json()["total"] == 0 and r.json()["will_retry"] == 0


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.retry], ids=lambda e: e.name)
def test_the_viewer_gets_403_on_every_retry(api, manifest, endpoint):
    r = call(api.as_("bob"), endpoint, manifest)
    assert_shape(endpoint.seed, r, 403)
    assert "Missing permission" in r.content.decode()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_no_credentials_is_401_with_www_authenticate(api, manifest, endpoint):
    r = call(api.as_(None), endpoint, manifest)
    assert_shape(endpoint.seed, r, 401, None)
    assert r["WWW-Authenticate"]


def _expired_key(manifest):
    key = ApiKey.objects.get(prefix=manifest["api_keys"]["alice"].split(".")[0])
    ApiKey.objects.filter(pk=key.pk).update(expiry_date=timezone.now() - timedelta(seconds=1))
    return manifest["api_keys"]["alice"]


def _revoked_key(manifest):
    ApiKey.objects.filter(prefix=manifest["api_keys"]["alice"].split(".")[0]).update(revoked=True)
    return manifest["api_keys"]["alice"]


def _jwt(**overrides) -> str:
    user = get_user_model().objects.get(username="alice")
    claims = jwt.decode(
        tokens.issue(user, user.memberships.get().tenant), options={"verify_signature": False}
    )
    claims.update(overrides)
    return jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")


BAD_CREDENTIALS = {
    "unknown key": lambda m: {"X-API-Key": "AbCdEfGh.not-a-real-secret"},
    "garbage key": lambda m: {"X-API-Key": "nonsense"},
    "wrong secret": lambda m: {"X-API-Key": m["api_keys"]["alice"].split(".")[0] + ".wrong"},
    "revoked key": lambda m: {"X-API-Key": _revoked_key(m)},
    "expired key": lambda m: {"X-API-Key": _expired_key(m)},
    "bad jwt": lambda m: {"Authorization": "Bearer not.a.jwt"},
    "expired jwt": lambda m: {
        "Authorization": "Bearer " + _jwt(exp=int(timezone.now().timestamp()) - 10)
    },
    "wrongly signed jwt": lambda m: {
        "Authorization": "Bearer "
        + jwt.encode(
            jwt.decode(m["jwt"]["alice"], options={"verify_signature": False}),
            "another-secret-entirely-0123456789",
            algorithm="HS256",
        )
    },
    "alg none jwt": lambda m: {
        "Authorization": "Bearer "
        + jwt.encode(
            jwt.decode(m["jwt"]["alice"], options={"verify_signature": False}),
            None,
            algorithm="none",
        )
    },
    "jwt for a tenant the user left": lambda m: {
        "Authorization": "Bearer " + _jwt(tenant="00000000-0000-4000-8000-000000000000")
    },
}


@pytest.mark.parametrize("case", list(BAD_CREDENTIALS))
@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.retry], ids=lambda e: e.name)
def test_bad_credentials_are_401(api, manifest, endpoint, case):
    headers = BAD_CREDENTIALS[case](manifest)
    r = call(api.as_(None), endpoint, manifest, headers=headers)
    assert_shape(endpoint.seed, r, 401)


def test_both_key_headers_work_and_header_names_are_case_insensitive(api, manifest):
    key = manifest["api_keys"]["alice"]
    anonymous = api.as_(None)
    for headers in ({"X-API-Key": key}, {"x-api-key": key}, {"Authorization": f"Api-Key {key}"}):
        assert anonymous.get("/v1/runs", headers=headers).status_code == 200, headers


def test_the_key_lookup_gives_what_the_orm_gives_in_one_query(manifest, django_assert_num_queries):
    """The per-request key lookup (one statement written from the models) against the queryset
    it stands for: same key, tenant and user, every field converted alike."""
    prefix = manifest["api_keys"]["alice"].split(".")[0]
    ApiKey.objects.filter(prefix=prefix).update(
        last_used_at=timezone.now(), expiry_date=timezone.now() + timedelta(days=1)
    )
    expected = ApiKey.objects.select_related("tenant", "user").get(prefix=prefix)
    with django_assert_num_queries(1):
        key = ApiKey.objects.usable_with_owner(prefix)
        seen = [(key.tenant.slug, key.tenant.created_at), (key.user.username, key.user.is_active)]
    assert seen == [
        (expected.tenant.slug, expected.tenant.created_at),
        (expected.user.username, expected.user.is_active),
    ]
    for got, want in ((key, expected), (key.tenant, expected.tenant), (key.user, expected.user)):
        fields = [f.attname for f in type(want)._meta.concrete_fields]
        assert [getattr(got, f) for f in fields] == [getattr(want, f) for f in fields]
    assert isinstance(key.permissions, list) and key.is_valid(manifest["api_keys"]["alice"])


def test_the_key_lookup_skips_revoked_keys_and_keeps_keys_without_a_user(manifest):
    prefix = manifest["api_keys"]["alice"].split(".")[0]
    ApiKey.objects.filter(prefix=prefix).update(user=None)
    key = ApiKey.objects.usable_with_owner(prefix)
    assert key is not None and key.user is None and key.tenant.slug == "acme"
    ApiKey.objects.filter(prefix=prefix).update(revoked=True)
    assert ApiKey.objects.usable_with_owner(prefix) is None
    assert ApiKey.objects.usable_with_owner("nosuchkey") is None


def test_last_used_is_written_at_most_once_a_minute(api, manifest):
    prefix = manifest["api_keys"]["alice"].split(".")[0]
    recent = timezone.now() - timedelta(seconds=30)
    ApiKey.objects.filter(prefix=prefix).update(last_used_at=recent)
    api.get("/v1/runs")
    assert ApiKey.objects.get(prefix=prefix).last_used_at == recent
    ApiKey.objects.filter(prefix=prefix).update(last_used_at=recent - timedelta(minutes=1))
    api.get("/v1/runs")
    assert ApiKey.objects.get(prefix=prefix).last_used_at > recent


def test_a_jwt_user_gets_the_permissions_of_their_role(api, manifest):
    viewer = api.as_("bob", via="jwt")
    assert viewer.get("/v1/runs").status_code == 200
    r = viewer.post(f"/v1/runs/{manifest['acme']['runs']['failure']}/retry")
    assert_shape("004", r, 403, "Missing permission runs:write")


def test_the_console_session_works_and_csrf_is_enforced(manifest):
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="alice"))
    assert client.get("/v1/runs").status_code == 200
    r = client.post(f"/v1/runs/{manifest['acme']['runs']['failure']}/retry")
    assert r.status_code == 403
    assert "CSRF" in r.json()["message"]


# --- transport errors in each seed's shape ---------------------------------------------------


RETRIES = {e.seed: e for e in ENDPOINTS if e.retry}


@pytest.mark.parametrize("seed", list(RETRIES))
def test_a_wrong_method_is_405(api, manifest, seed):
    r = api.method("DELETE", RETRIES[seed].path(manifest, "acme"))
    assert_shape(seed, r, 405, 'Method "DELETE" not allowed.')


@pytest.mark.parametrize("seed", list(RETRIES))
def test_a_wrong_content_type_is_415(api, manifest, seed):
    r = api.post(RETRIES[seed].path(manifest, "acme"), raw=b"a=b", content_type="text/plain")
    assert_shape(seed, r, 415, 'Unsupported media type "text/plain" in request.')


@pytest.mark.parametrize("seed", list(RETRIES))
def test_a_body_that_is_not_json_is_400(api, manifest, seed):
    r = api.post(RETRIES[seed].path(manifest, "acme"), raw=b"{nope")
    assert_shape(seed, r, 400)
    assert "not valid JSON" in r.content.decode()


@pytest.mark.parametrize("seed", list(RETRIES))
def test_a_corrupt_gzip_body_is_400(api, manifest, seed):
    r = api.post(
        RETRIES[seed].path(manifest, "acme"),
        raw=b"\x1f\x8b\x08\x00garbage-not-deflate",
        headers={"Content-Encoding": "gzip"},
    )
    assert_shape(seed, r, 400)
    assert "not valid gzip" in r.content.decode()


def test_a_truncated_gzip_body_is_400(api, manifest):
    data = gzip.compress(b'{"target_hostname": "host-1"}')[:-12]
    r = api.post(
        f"/job/{manifest['acme']['jobs']['failed']}/retry",
        raw=data,
        headers={"Content-Encoding": "gzip"},
    )
    assert_shape("002", r, 400, "Request body is not valid gzip data (truncated).")


def test_an_unknown_content_encoding_is_415(api, manifest):
    r = api.post(
        f"/job/{manifest['acme']['jobs']['failed']}/retry",
        raw=b"{}",
        headers={"Content-Encoding": "br"},
    )
    assert_shape("002", r, 415, "Content-Encoding 'br' is not supported; use gzip.")


def test_a_gzip_body_is_accepted_on_the_job_retry(api, manifest):
    r = api.post(
        f"/job/{manifest['acme']['jobs']['failed']}/retry",
        {"target_hostname": "gz-host"},
        gzipped=True,
    )
    assert r.status_code == 201
    assert Job.objects.get(pk=r.json()["job_id"]).target_hostname == "gz-host"


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip bomb"])
def test_an_oversize_body_is_413(api, manifest, settings, gzipped):
    settings.REDRIVE_MAX_BODY_BYTES = 2048
    body = {"target_hostname": "h", "padding": " " * 100_000}
    r = api.post(f"/job/{manifest['acme']['jobs']['failed']}/retry", body, gzipped=gzipped)
    assert_shape("002", r, 413, "Request body is larger than 2048 bytes.")


# --- 500: the seed's shape with the request id, the traceback only in the log ------------------

FAULTS = {
    "000": "retry_function",
    "001": "retry_automation",
    "002": "retry_job",
    "003": "retry_workflow",
    "004": "retry_run",
    "redrive": "preview_retry",
}


@pytest.mark.parametrize("seed", list(FAULTS))
def test_an_unexpected_fault_is_a_500_with_the_request_id(api, manifest, monkeypatch, caplog, seed):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(services, FAULTS[seed], explode)
    endpoint = RETRIES[seed]
    body = endpoint.body(manifest, "acme")
    if seed == "redrive":
        body = {**body, "dry_run": True}
    with caplog.at_level(logging.ERROR, logger="redrive.api"):
        r = api.post(
            endpoint.path(manifest, "acme"), body, headers={"X-Request-ID": "req-12345678"}
        )
    assert r["X-Request-ID"] == "req-12345678"
    expected = error_body(
        seed,
        500,
        "Internal server error (request id req-12345678)",
        details="request id req-12345678",
        request_id="req-12345678",
    )
    assert r.status_code == 500 and r.json() == expected
    assert "hunter2" not in r.content.decode() and "Traceback" not in r.content.decode()
    [record] = [rec for rec in caplog.records if rec.name == "redrive.api"]
    assert record.exc_info and "hunter2" in str(record.exc_info[1])
    assert record.request_id == "req-12345678"


def test_every_response_carries_a_request_id(api, manifest):
    for r in (api.get("/v1/runs"), api.as_(None).get("/v1/runs"), api.get("/health/live")):
        assert len(r["X-Request-ID"]) >= 8


# --- Idempotency-Key --------------------------------------------------------------------------


def test_the_same_idempotency_key_replays_the_first_response(api, manifest):
    pk = manifest["acme"]["runs"]["failure"]
    headers = {"Idempotency-Key": "nightly-retry-42"}
    first = api.post(f"/v1/runs/{pk}/retry", headers=headers)
    second = api.post(f"/v1/runs/{pk}/retry", headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Run.objects.filter(source_run=pk).count() == 1
    # Without the key, the second retry is the state error it really is.
    assert api.post(f"/v1/runs/{pk}/retry").status_code == 409


def test_idempotency_replays_201_for_jobs(api, manifest):
    pk = manifest["acme"]["jobs"]["failed"]
    headers = {"Idempotency-Key": "job-key-1"}
    first = api.post(f"/job/{pk}/retry", headers=headers)
    second = api.post(f"/job/{pk}/retry", headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Job.objects.filter(retry_of=pk).count() == 1


def test_a_key_whose_request_died_after_its_retry_replays_that_retry(api, manifest):
    # The first request committed its retry (the store has its outcome) and its process died
    # before it answered: once its hold on the key has expired, the same request answers that
    # retry instead of retrying again.
    pk = manifest["acme"]["runs"]["failure"]
    headers = {"Idempotency-Key": "k-domain"}
    first = api.post(f"/v1/runs/{pk}/retry", headers=headers).json()
    IdempotencyRecord.objects.filter(key="k-domain").update(
        state="in_flight", status_code=None, body=None, locked_until=timezone.now()
    )
    second = api.post(f"/v1/runs/{pk}/retry", headers=headers)
    assert (second.status_code, second["Idempotent-Replayed"]) == (200, "true")
    assert second.json()["data"]["id"] == first["data"]["id"]
    assert Run.objects.filter(source_run=pk).count() == 1
    assert IdempotencyRecord.objects.get(key="k-domain").state == "done"


def test_a_key_reused_for_another_request_is_422_naming_the_key(api, manifest):
    headers = {"Idempotency-Key": "reused"}
    api.post(f"/v1/runs/{manifest['acme']['runs']['failure']}/retry", headers=headers)
    r = api.post(f"/job/{manifest['acme']['jobs']['failed']}/retry", headers=headers)
    assert_shape("002", r, 422, 'Idempotency-Key "reused" was already used for a different request')
    assert not Job.objects.filter(retry_of=manifest["acme"]["jobs"]["failed"]).exists()


def test_keys_are_per_caller(api, manifest):
    headers = {"Idempotency-Key": "shared-name"}
    first = api.post(f"/job/{manifest['acme']['jobs']['failed']}/retry", headers=headers)
    other = api.as_("dave").post(
        f"/job/{manifest['acme']['jobs']['completed']}/retry", headers=headers
    )
    assert first.status_code == other.status_code == 201
    assert first.json()["job_id"] != other.json()["job_id"]


def test_an_overlong_idempotency_key_is_400(api, manifest):
    r = api.post(
        f"/v1/runs/{manifest['acme']['runs']['failure']}/retry",
        headers={"Idempotency-Key": "k" * 256},
    )
    assert_shape("004", r, 400, "Idempotency-Key must be 1 to 255 printable characters")
