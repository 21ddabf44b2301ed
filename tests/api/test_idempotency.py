"""Idempotency-Key, as the IETF httpapi draft and Stripe define it (issue 16.4): a key belongs to
one caller in one tenant and names one request (method, path, body); the same key with another
request is a 422 naming the key; concurrent requests with one key run it once, the others get 409
while it is in flight or its response replayed (`Idempotent-Replayed: true`) once it is stored."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from executions import idempotency, tokens
from executions.models import (
    ApiKey,
    AuditEvent,
    BulkRetry,
    FunctionExecution,
    IdempotencyRecord,
    Job,
    Membership,
    Run,
    Tenant,
)
from executions.tenancy import Actor

from .conftest import fn_base, wf_base

pytestmark = pytest.mark.django_db


def in_flight(key: str) -> str:
    return (
        f'A request with Idempotency-Key "{key}" is still in progress; repeat it once it has '
        "finished"
    )


def reused(key: str) -> str:
    return f'Idempotency-Key "{key}" was already used for a different request'


# --- scope: tenant and caller ---------------------------------------------------------------


def test_a_user_in_two_tenants_does_not_replay_one_tenants_response_in_the_other(manifest):
    alice = get_user_model().objects.get(username="alice")
    acme, globex = Tenant.objects.get(slug="acme"), Tenant.objects.get(slug="globex")
    Membership.objects.create(user=alice, tenant=globex, role="admin")
    as_acme = {"Authorization": f"Bearer {tokens.issue(alice, acme)}"}
    as_globex = {"Authorization": f"Bearer {tokens.issue(alice, globex)}"}
    key = {"Idempotency-Key": "nightly-1"}
    path = f"/v1/runs/{manifest['acme']['runs']['failure']}/retry"

    def post(path: str, headers: dict):
        return Client().generic("POST", path, content_type="application/json", headers=headers)

    assert post(path, {**as_acme, **key}).status_code == 200

    keyed = post(path, {**as_globex, **key})
    plain = post(path, as_globex)

    # acme's run is not globex's: the keyed request is the same 404 as the one without a key.
    assert keyed.status_code == plain.status_code == 404
    assert keyed.json() == {
        "code": 404,
        "message": "Run not found",
        "requestId": keyed["X-Request-ID"],
    }
    assert not keyed.has_header("Idempotent-Replayed")
    # And the key is globex's own to use: a retry there, not a replay nor a 422.
    globex_path = f"/v1/runs/{manifest['globex']['runs']['failure']}/retry"
    own = post(globex_path, {**as_globex, **key})
    assert own.status_code == 200 and not own.has_header("Idempotent-Replayed")
    assert own.json()["data"]["sourceRunId"] == manifest["globex"]["runs"]["failure"]
    assert IdempotencyRecord.objects.filter(key="nightly-1").count() == 2


# --- the same key with another request: 422 in each seed's shape --------------------------------


def keyed_requests(manifest: dict) -> dict[str, tuple[str, dict | None, str, dict | None]]:
    """Per seed: (path, body) of a keyed request and of a different one (path or body)."""
    a, g = manifest["acme"], manifest["globex"]
    f, wf = a["functions"], a["workflows"]
    return {
        "000": (f"{fn_base(a)}/retry/{f['failed_index']}", None, f"{fn_base(a)}/retry/5", None),
        "001": (
            f"/api/v1/automation/executions/{a['automations']['failed']}/retry",
            None,
            f"/api/v1/automation/executions/{a['automations']['completed']}/retry",
            None,
        ),
        "002": (
            f"/job/{a['jobs']['failed']}/retry",
            {"target_hostname": "web-01"},
            f"/job/{a['jobs']['failed']}/retry",
            {"target_hostname": "web-02"},
        ),
        "003": (
            f"{wf_base(a)}/workflows/executions/{wf['failed']}/retry",
            {"authentication": {"nonce": "nonce-1"}},
            f"{wf_base(a)}/workflows/executions/{wf['failed']}/retry",
            {"authentication": {"nonce": "nonce-2"}},
        ),
        "004": (
            f"/v1/runs/{a['runs']['failure']}/retry",
            None,
            f"/v1/runs/{a['runs']['success']}/retry",
            None,
        ),
        "redrive": (
            "/api/failures/retry",
            {"ids": {"job": [a["jobs"]["failed"]]}},
            "/api/failures/retry",
            {"ids": {"job": [a["jobs"]["failed"], g["jobs"]["failed"]]}},
        ),
    }


def seed_error(seed: str, response, status: int, code: str, message: str) -> dict:
    rid = response["X-Request-ID"]
    return {
        "000": {"success": False, "error": message},
        "001": {"error": {"code": code, "message": message}},
        "002": {"error": message, "details": message, "code": status},
        "003": {"error": {"code": status, "message": message}},
        "004": {"code": status, "message": message, "requestId": rid},
        "redrive": {"error": {"code": code, "message": message, "requestId": rid}},
    }[seed]


def changes(manifest: dict) -> list:
    return [
        FunctionExecution.objects.count(),
        Job.objects.count(),
        Run.objects.count(),
        BulkRetry.objects.count(),
        AuditEvent.objects.count(),
        list(IdempotencyRecord.objects.values_list("key", "state", "status_code", "body")),
    ]


@pytest.mark.parametrize("seed", ["001", "002", "003", "004", "redrive"])
def test_the_same_key_with_another_request_is_a_422_naming_the_key(api, manifest, seed):
    same_key_with_another_request(api, manifest, seed)


def test_the_same_key_with_another_function_retry_is_a_422_naming_the_key(
    api, manifest, sync_worker
):
    # Seed 000's first request answers once a worker has run the function.
    same_key_with_another_request(api, manifest, "000")


def same_key_with_another_request(api, manifest: dict, seed: str) -> None:
    path, body, other_path, other_body = keyed_requests(manifest)[seed]
    headers = {"Idempotency-Key": f"key-{seed}"}
    if seed == "003":
        # The first request really retries: its nonce is a real session's.
        session = {"items": [{"tokenExchange": True}]}
        nonce = api.post(f"{wf_base(manifest['acme'])}/sessions", session).json()
        body = {"authentication": {"nonce": nonce["items"][0]["nonce"]}}
    first = api.post(path, body, headers=headers)
    assert first.status_code in (200, 201, 202), first.content
    before = changes(manifest)

    r = api.post(other_path, other_body, headers=headers)

    assert r.status_code == 422, r.content
    expected = seed_error(seed, r, 422, "IDEMPOTENCY_KEY_REUSED", reused(f"key-{seed}"))
    assert r.json() == expected
    assert not r.has_header("Idempotent-Replayed")
    assert changes(manifest) == before
    # The first request itself still replays.
    again = api.post(path, body, headers=headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again["Idempotent-Replayed"] == "true"


def test_the_same_body_spaced_or_compressed_otherwise_is_the_same_request(api, manifest):
    path = f"/job/{manifest['acme']['jobs']['failed']}/retry"
    headers = {"Idempotency-Key": "spacing"}
    first = api.post(path, raw=b'{"target_hostname":"web-01"}', headers=headers)
    spaced = api.post(path, raw=b'{ "target_hostname" : "web-01" }\n', headers=headers)
    zipped = api.post(path, {"target_hostname": "web-01"}, headers=headers, gzipped=True)
    assert first.status_code == 201
    for r in (spaced, zipped):
        assert (r.status_code, r.json(), r["Idempotent-Replayed"]) == (201, first.json(), "true")
    assert Job.objects.filter(retry_of=manifest["acme"]["jobs"]["failed"]).count() == 1


def test_a_refused_request_keeps_nothing_so_its_key_can_be_used_again(api, manifest):
    pk = manifest["acme"]["jobs"]["processing"]
    headers = {"Idempotency-Key": "too-early"}
    r = api.post(f"/job/{pk}/retry", headers=headers)
    assert r.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="too-early").exists()
    retry = api.post(f"/job/{manifest['acme']['jobs']['failed']}/retry", headers=headers)
    assert retry.status_code == 201


# --- in flight ------------------------------------------------------------------------------


def hold(manifest: dict, key: str, path: str, body: dict | None = None) -> idempotency.Claim:
    """What a request of alice's API key with `key` holds while it runs (begun, not finished)."""
    prefix = manifest["api_keys"]["alice"].split(".")[0]
    actor = Actor.for_api_key(ApiKey.objects.get(prefix=prefix))
    scope = f"POST {path}"
    return idempotency.begin(actor, key, scope, idempotency.fingerprint(scope, body))


@pytest.mark.parametrize("seed", ["000", "001", "002", "003", "004", "redrive"])
def test_the_same_request_while_the_first_is_in_flight_is_a_409(api, manifest, seed):
    path, body, _, _ = keyed_requests(manifest)[seed]
    hold(manifest, f"busy-{seed}", path, body)
    before = changes(manifest)

    r = api.post(path, body, headers={"Idempotency-Key": f"busy-{seed}"})

    assert r.status_code == 409, r.content
    code = "IDEMPOTENCY_KEY_IN_USE"
    assert r.json() == seed_error(seed, r, 409, code, in_flight(f"busy-{seed}"))
    assert changes(manifest) == before


def test_a_key_whose_request_died_before_doing_anything_is_taken_over(api, manifest):
    path, body, _, _ = keyed_requests(manifest)["004"]
    claim = hold(manifest, "orphan", path, body)
    expired = timezone.now() - timedelta(seconds=1)
    IdempotencyRecord.objects.filter(pk=claim.record_id).update(locked_until=expired)
    r = api.post(path, body, headers={"Idempotency-Key": "orphan"})
    assert r.status_code == 200 and not r.has_header("Idempotent-Replayed")
    assert Run.objects.filter(source_run=manifest["acme"]["runs"]["failure"]).count() == 1
    assert IdempotencyRecord.objects.get(key="orphan").state == "done"


# --- 20 concurrent requests with one key, over real HTTP --------------------------------------

N = 20


def concurrently(live_server, key: str, warm: str, send: Callable) -> list[requests.Response]:
    """N keep-alive connections, each warmed up on `warm`, then released together on
    `send(session)` each."""
    barrier = threading.Barrier(N)
    results: list = [None] * N

    def client(i: int) -> None:
        with requests.Session() as session:
            session.headers["X-API-Key"] = key
            try:
                assert session.get(live_server.url + warm, timeout=30).status_code == 200
                barrier.wait(timeout=120)
                results[i] = send(session)
            except BaseException as exc:  # reported below
                barrier.abort()
                results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    failures = [r for r in results if not isinstance(r, requests.Response)]
    assert not failures, failures[:3]
    return results


def one_ran(results: list[requests.Response], status: int) -> requests.Response:
    """Exactly one response ran the request; every other one is its replay or a 409."""
    ran = [r for r in results if r.status_code == status and "Idempotent-Replayed" not in r.headers]
    seen = Counter((r.status_code, r.headers.get("Idempotent-Replayed")) for r in results)
    assert len(ran) == 1, seen
    for r in results:
        if r is ran[0]:
            continue
        if r.status_code == status:
            assert r.headers["Idempotent-Replayed"] == "true" and r.json() == ran[0].json()
        else:
            assert r.status_code == 409, r.text
    print(f"{N} requests with one key: {seen}")
    return ran[0]


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_20_concurrent_keyed_retries_of_one_execution_retry_it_once(
    live_server, manifest, sync_worker
):
    items = manifest["acme"]
    failed = FunctionExecution.objects.filter(
        function_id=items["functions"]["function_id"], status="failed"
    ).first()
    path = f"{fn_base(items)}/executions/{failed.pk}/retry"
    headers = {"Idempotency-Key": "twenty"}

    results = concurrently(
        live_server,
        manifest["api_keys"]["alice"],
        f"{fn_base(items)}/executions/{failed.pk}",
        lambda s: s.post(live_server.url + path, headers=headers, timeout=60),
    )

    ran = one_ran(results, 200)
    for r in results:
        if r.status_code == 409:
            assert r.json() == {"success": False, "error": in_flight("twenty")}
    new = FunctionExecution.objects.get(retry_of=failed)
    assert ran.json()["data"]["executionId"] == new.pk
    assert AuditEvent.objects.filter(target_id=failed.pk, action="retry").count() == 1


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_20_concurrent_keyed_bulk_retries_make_one_bulk_retry(live_server, manifest):
    before = BulkRetry.objects.count()
    body = json.dumps({"ids": {"job": [manifest["acme"]["jobs"]["failed"]]}})
    headers = {"Idempotency-Key": "bulk-twenty", "Content-Type": "application/json"}

    results = concurrently(
        live_server,
        manifest["api_keys"]["alice"],
        "/api/failures?limit=1",
        lambda s: s.post(
            live_server.url + "/api/failures/retry", data=body, headers=headers, timeout=60
        ),
    )

    ran = one_ran(results, 202)
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"]["message"] == in_flight("bulk-twenty")
        else:
            assert r.headers["Location"] == ran.json()["url"]
    assert BulkRetry.objects.count() == before + 1
    assert str(BulkRetry.objects.latest("created_at").pk) == ran.json()["id"]
