"""Reliability of the REST API: 50 clients retrying the same item at once over real HTTP, the API
with its database unreachable, and hostile request bodies.

- Races run against pytest-django's live server (a real threaded HTTP server, one database
  connection per request thread, real commits): exactly one retry wins, every other client gets
  the seed's state error, and exactly one new attempt is recorded.
- The unreachable database is a separate gunicorn process whose DATABASE_URL points at a closed
  port: every API answer is a 503 in its seed's shape (never a traceback), /health says the
  database is unavailable, /health/live still answers.
- Bodies of 10 MB, invalid UTF-8, JSON nested 100,000 deep and `null` where an object belongs get
  a 4xx in the seed's shape, and nothing in the database changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from django.core.cache import cache
from django.test import Client

from executions.models import (
    Attempt,
    AuditEvent,
    AutomationExecution,
    BulkRetry,
    FunctionExecution,
    IdempotencyRecord,
    Job,
    OutboxEvent,
    Run,
    WorkflowExecution,
    WorkflowSession,
)
from tests.conftest import ROOT

CLIENTS = 50


# --- 50 concurrent HTTP retries of one item -----------------------------------------------------


def race(base: str, warm_path: str, retry_path: str, key: str) -> list[requests.Response]:
    """CLIENTS keep-alive connections, each warmed up (so every server thread already holds its
    database connection), then released together on one retry each."""
    sessions = [requests.Session() for _ in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS)
    results: list[requests.Response | BaseException | None] = [None] * CLIENTS
    spans: list[tuple[float, float]] = [(0.0, 0.0)] * CLIENTS

    def client(i: int) -> None:
        session = sessions[i]
        session.headers["X-API-Key"] = key
        try:
            assert session.get(base + warm_path, timeout=30).status_code == 200
            barrier.wait(timeout=120)  # warm-ups are slow on a loaded machine
            started = time.monotonic()
            results[i] = session.post(base + retry_path, timeout=60)
            spans[i] = (started, time.monotonic())
        except BaseException as exc:  # reported below, with the client that failed
            barrier.abort()
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
    finally:
        # Closing the connections ends the server's request threads (and their DB connections).
        for session in sessions:
            session.close()
    failures = [r for r in results if not isinstance(r, requests.Response)]
    assert not failures, failures[:3]
    # They really were concurrent: most retries were in flight at the same moment.
    in_flight = max(sum(a <= start < b for a, b in spans) for start, _ in spans)
    print(f"retries in flight at once: {in_flight} of {CLIENTS}")
    assert in_flight >= CLIENTS // 2, in_flight
    return results  # type: ignore[return-value]


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_50_concurrent_http_retries_of_one_automation_execution_retry_it_once(
    live_server, manifest
):
    key, pk = manifest["api_keys"]["alice"], manifest["acme"]["automations"]["failed"]
    before = AutomationExecution.objects.get(pk=pk)
    attempts = Attempt.objects.filter(kind="automation", object_id=pk).count()

    results = race(
        live_server.url,
        f"/api/v1/automation/executions/{pk}",
        f"/api/v1/automation/executions/{pk}/retry",
        key,
    )

    assert Counter(r.status_code for r in results) == {200: 1, 400: CLIENTS - 1}
    winner = next(r for r in results if r.status_code == 200).json()
    assert winner["data"]["execution_id"] == pk
    assert winner["data"]["status"] == "pending"
    for loser in (r for r in results if r.status_code == 400):
        assert loser.json() == {
            "error": {
                "code": "NOT_RETRYABLE",
                "message": "Only failed executions can be retried (status is pending)",
            }
        }
    after = AutomationExecution.objects.get(pk=pk)
    assert (after.status, after.attempt) == ("pending", before.attempt + 1)
    assert Attempt.objects.filter(kind="automation", object_id=pk).count() == attempts + 1
    assert AuditEvent.objects.filter(kind="automation", target_id=pk, action="retry").count() == 1


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_50_concurrent_http_retries_of_one_run_make_one_new_run(live_server, manifest):
    key, pk = manifest["api_keys"]["alice"], manifest["acme"]["runs"]["failure"]

    results = race(live_server.url, f"/v1/runs/{pk}", f"/v1/runs/{pk}/retry", key)

    assert Counter(r.status_code for r in results) == {200: 1, 409: CLIENTS - 1}
    new_run = next(r for r in results if r.status_code == 200).json()["data"]
    assert (new_run["sourceRunId"], new_run["status"]) == (pk, "running")
    for loser in (r for r in results if r.status_code == 409):
        assert loser.json() == {
            "code": 409,
            "message": f"Run {pk} was already retried by run {new_run['id']}",
            "requestId": loser.headers["X-Request-ID"],
        }
    assert list(Run.objects.filter(source_run=pk).values_list("pk", flat=True)) == [new_run["id"]]
    assert AuditEvent.objects.filter(kind="run", target_id=pk, action="retry").count() == 1


# --- the database unreachable -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_without_database() -> Iterator[tuple[str, str]]:
    """gunicorn with the production settings and a DATABASE_URL nothing listens on. Yields
    (base URL, its SECRET_KEY)."""
    port, secret = free_port(), secrets.token_urlsafe(50)
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/redrive",
        "DEBUG": "0",
        "SECRET_KEY": secret,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
        "LOG_LEVEL": "WARNING",
    }
    log = tempfile.NamedTemporaryFile(prefix="redrive-nodb-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi:application"]
        + ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, Path(log.name).read_text(errors="replace")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/health/live", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, Path(log.name).read_text(errors="replace")
            time.sleep(0.2)
        yield base, secret
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()
        Path(log.name).unlink(missing_ok=True)


def unavailable(rid: str) -> str:
    return f"Service unavailable: the database cannot be reached (request id {rid})"


# (seed, method, path, body, the seed's error shape for message m and request id r)
UNREACHABLE_CASES: list[tuple[str, str, str, dict | None, Callable[[str, str], dict]]] = [
    (
        "000",
        "POST",
        "/api/functions/projects/p1/functions/f1/retry/0",
        None,
        lambda m, r: {"success": False, "error": m},
    ),
    (
        "001",
        "POST",
        f"/api/v1/automation/executions/{uuid.uuid4()}/retry",
        None,
        lambda m, r: {"error": {"code": "SERVICE_UNAVAILABLE", "message": m}},
    ),
    (
        "002",
        "POST",
        f"/job/{uuid.uuid4()}/retry",
        {"target_hostname": "worker-1"},
        lambda m, r: {"error": m, "details": f"request id {r}", "code": 503},
    ),
    (
        "003",
        "POST",
        f"/api/v1/projects/acme-prod/workflows/executions/{uuid.uuid4()}/retry",
        {"authentication": {"nonce": "n0nce"}},
        lambda m, r: {"error": {"code": 503, "message": m}},
    ),
    (
        "004",
        "POST",
        "/v1/runs/run_0a1b2c3d4e5f60718293a4b5c6d7e8f9/retry",
        None,
        lambda m, r: {"code": 503, "message": m, "requestId": r},
    ),
    (
        "redrive",
        "GET",
        "/api/failures",
        None,
        lambda m, r: {"error": {"code": "SERVICE_UNAVAILABLE", "message": m, "requestId": r}},
    ),
]


@pytest.mark.parametrize("credentials", ["key", "jwt"])
def test_without_its_database_the_api_answers_503_in_each_seeds_shape(
    server_without_database, credentials
):
    base, secret = server_without_database
    if credentials == "key":
        # A well-formed key: checking it needs the database, so the 503 comes from the lookup.
        headers = {"X-API-Key": f"AbCd1234.{secrets.token_urlsafe(24)}"}
    else:
        import jwt

        now = int(time.time())
        claims = {"sub": "1", "tenant": str(uuid.uuid4()), "iat": now, "exp": now + 600}
        token = jwt.encode({**claims, "iss": "redrive"}, secret, algorithm="HS256")
        headers = {"Authorization": f"Bearer {token}"}
    for seed, method, path, body, shape in UNREACHABLE_CASES:
        response = requests.request(method, base + path, json=body, headers=headers, timeout=30)
        rid = response.headers["X-Request-ID"]
        assert response.status_code == 503, (seed, response.text)
        assert response.headers["Content-Type"] == "application/json", seed
        assert response.json() == shape(unavailable(rid), rid), seed
        assert "Traceback" not in response.text


def test_without_its_database_health_says_so_and_liveness_still_answers(
    server_without_database,
):
    base, _ = server_without_database
    health = requests.get(f"{base}/health", timeout=30)
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "database": "unavailable"}
    live = requests.get(f"{base}/health/live", timeout=30)
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    # Signing in needs the database too: the same 503 in Redrive's own shape.
    token = requests.post(
        f"{base}/api/auth/token", json={"username": "alice", "password": "x" * 12}, timeout=30
    )
    rid = token.headers["X-Request-ID"]
    assert token.status_code == 503
    assert token.json() == {
        "error": {"code": "SERVICE_UNAVAILABLE", "message": unavailable(rid), "requestId": rid}
    }


# --- hostile bodies -----------------------------------------------------------------------------


@pytest.fixture
def fresh_throttles() -> Iterator[None]:
    # POST /api/failures/retry is rate-limited per caller, with counters in the cache.
    cache.clear()
    yield
    cache.clear()


def endpoints(manifest: dict) -> dict[str, str]:
    """Every POST that retries (or prepares a retry), one per seed, on acme's failed items."""
    items = manifest["acme"]
    f, wf = items["functions"], items["workflows"]
    return {
        "000": f"/api/functions/projects/{f['project_id']}/functions/{f['function_id']}/retry/0",
        "001": f"/api/v1/automation/executions/{items['automations']['failed']}/retry",
        "002": f"/job/{items['jobs']['failed']}/retry",
        "003": f"/api/v1/projects/{wf['project']}/workflows/executions/{wf['failed']}/retry",
        "003-sessions": f"/api/v1/projects/{wf['project']}/sessions",
        "004": f"/v1/runs/{items['runs']['failure']}/retry",
        "redrive": "/api/failures/retry",
    }


def seed_shape(endpoint: str, status: int, code: str, message: str, field: str = ""):
    """The error body each seed answers with (README: "Errors, in each seed's own shape").
    Returns a function of the response, since 004 and Redrive's own carry its request id."""
    seed = endpoint.split("-")[0]

    def expected(response) -> dict:
        rid = response.headers["X-Request-ID"]
        if seed == "000":
            return {"success": False, "error": message}
        if seed == "001":
            return {"error": {"code": code, "message": message}}
        if seed == "002":
            details = f"invalid field: {field}" if field else message
            return {"error": message, "details": details, "code": status}
        if seed == "003":
            return {"error": {"code": status, "message": message}}
        if seed == "004":
            return {"code": status, "message": message, "requestId": rid}
        body = {"code": code, "message": message, "requestId": rid}
        return {"error": {**body, "field": field} if field else body}

    return expected


def snapshot(manifest: dict) -> dict:
    """Everything a retry (or a session) would add or change."""
    items = manifest["acme"]
    return {
        "rows": [
            model.objects.count()
            for model in (
                Attempt,
                AuditEvent,
                BulkRetry,
                FunctionExecution,
                IdempotencyRecord,
                Job,
                OutboxEvent,
                Run,
                WorkflowSession,
            )
        ],
        "automation": AutomationExecution.objects.filter(
            pk=items["automations"]["failed"]
        ).values_list("status", "attempt")[0],
        "workflow": WorkflowExecution.objects.filter(pk=items["workflows"]["failed"]).values_list(
            "status", flat=True
        )[0],
        "run": Run.objects.filter(pk=items["runs"]["failure"]).values_list("status", flat=True)[0],
        "job": Job.objects.filter(pk=items["jobs"]["failed"]).values_list("status", flat=True)[0],
    }


def post(manifest: dict, path: str, body: bytes):
    return Client().generic(
        "POST",
        path,
        body,
        content_type="application/json",
        headers={"X-API-Key": manifest["api_keys"]["alice"]},
    )


DEPTH = 100_000
HOSTILE = {
    "10MB": (b'{"target_hostname": "' + b"a" * (10 * 1024 * 1024) + b'"}', 413),
    "invalid-utf8": (b'{"target_hostname": "\xff\xfe\xc3\x28"}', 400),
    "deep-array": (b"[" * DEPTH + b"]" * DEPTH, 400),
    "deep-unclosed": (b"[" * DEPTH, 400),
    "deep-object": (b'{"a":' * DEPTH + b"1" + b"}" * DEPTH, 400),
}
MESSAGES = {
    "10MB": "Request body is too large.",
    "invalid-utf8": "Request body is not valid JSON (JSON parse error - 'utf-8' codec can't "
    "decode byte 0xff in position 21: invalid start byte).",
    "deep-array": "Request body is not valid JSON (nested too deeply).",
    "deep-unclosed": "Request body is not valid JSON (nested too deeply).",
    "deep-object": "Request body is not valid JSON (nested too deeply).",
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_get_a_4xx_in_each_seeds_shape_and_change_nothing(
    manifest, fresh_throttles, name
):
    body, status = HOSTILE[name]
    code = "PAYLOAD_TOO_LARGE" if status == 413 else "VALIDATION_ERROR"
    before = snapshot(manifest)
    for endpoint, path in endpoints(manifest).items():
        response = post(manifest, path, body)
        assert response.status_code == status, (endpoint, response.content[:300])
        expected = seed_shape(endpoint, status, code, MESSAGES[name])
        assert response.json() == expected(response), endpoint
    assert snapshot(manifest) == before


NULLS = [
    ("002", b"null", "Request body must be a JSON object", "body"),
    (
        "002",
        b'{"target_hostname": null}',
        "target_hostname must be a valid hostname",
        "target_hostname",
    ),
    ("003", b"null", "Request body must be a JSON object", "body"),
    (
        "003",
        b'{"authentication": null}',
        "authentication.nonce is required",
        "authentication.nonce",
    ),
    (
        "003",
        b'{"authentication": {"nonce": null}}',
        "authentication.nonce is required",
        "authentication.nonce",
    ),
    ("003", b'{"authentication": []}', "authentication.nonce is required", "authentication.nonce"),
    ("003-sessions", b"null", "Request body must be a JSON object", "body"),
    ("003-sessions", b'{"items": null}', "items must hold exactly one session request", "items"),
    ("003-sessions", b'{"items": [null]}', "items must hold exactly one session request", "items"),
    ("redrive", b"null", "Request body must be a JSON object", "body"),
    ("redrive", b"[]", "Request body must be a JSON object", "body"),
    ("redrive", b'{"filter": null}', "give exactly one of ids or filter", "ids"),
    ("redrive", b'{"ids": null, "filter": null}', "give exactly one of ids or filter", "ids"),
    ("redrive", b'{"ids": {"job": null}}', "ids.job must be a list of ids", "ids.job"),
    ("redrive", b'{"ids": {"job": [null]}}', "ids.job must be a list of ids", "ids.job"),
    ("redrive", b'{"filter": []}', "filter must be an object", "filter"),
]


@pytest.mark.django_db
def test_null_where_an_object_belongs_is_a_400_in_the_seeds_shape_and_changes_nothing(
    manifest, fresh_throttles
):
    paths = endpoints(manifest)
    before = snapshot(manifest)
    for endpoint, body, message, field in NULLS:
        response = post(manifest, paths[endpoint], body)
        assert response.status_code == 400, (endpoint, body, response.content)
        expected = seed_shape(endpoint, 400, "VALIDATION_ERROR", message, field)
        assert response.json() == expected(response), (endpoint, body)
    assert snapshot(manifest) == before


def test_the_hostile_bodies_are_what_they_claim():
    with pytest.raises(UnicodeDecodeError):
        HOSTILE["invalid-utf8"][0].decode()
    assert len(HOSTILE["10MB"][0]) > 10 * 1024 * 1024
    with pytest.raises(RecursionError):
        json.loads(HOSTILE["deep-array"][0])
