"""A real receiver on 127.0.0.1 (http.server in a thread) that records every request, answers
what the test tells it to, and dedupes by webhook-id as a receiver following the spec would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model

from executions.models import Membership, Tenant
from executions.tenancy import Actor


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    # What to answer: a status, or "hang" (answer nothing until `release` is set).
    answer: Callable[[Received], int | str] = lambda r: 200
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unique(self) -> list[Received]:
        seen, out = set(), []
        for r in list(self.received):
            if r.headers["webhook-id"] not in seen:
                seen.add(r.headers["webhook-id"])
                out.append(r)
        return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("content-length") or 0)
            got = Received(
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
                time.time(),
            )
            with state.lock:
                state.received.append(got)
            answer = state.answer(got)
            if answer == "hang":
                state.release.wait(30)
                answer = 200
            self.send_response(int(answer))
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


# Workers reach the receiver (http:// to a host the allow-list names), and retry quickly.
WORKER_ENV = {
    "REDRIVE_HTTP_ALLOW": "127.0.0.1",
    "REDRIVE_WEBHOOK_FIRST_RETRY_MS": "300",
    "REDRIVE_WEBHOOK_TIMEOUT_S": "1",
}


@pytest.fixture
def allow_local(settings):
    settings.REDRIVE_HTTP_ALLOW = "127.0.0.1"
    settings.REDRIVE_WEBHOOK_FIRST_RETRY_MS = 300
    settings.REDRIVE_WEBHOOK_TIMEOUT_S = 1


def _member(tenant: Tenant, username: str, role: str) -> Actor:
    user = get_user_model().objects.create_user(username, password=f"{username}-pass-2026")
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return Actor.for_user(user, tenant, source="api")


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme")


@pytest.fixture
def admin(tenant) -> Actor:
    return _member(tenant, "alma", "admin")


@pytest.fixture
def operator(tenant) -> Actor:
    return _member(tenant, "otto", "operator")


@pytest.fixture
def other_admin() -> Actor:
    return _member(
        Tenant.objects.create(slug="globex", name="Globex", workflows_project="globex"),
        "gina",
        "admin",
    )


def wait_for(predicate: Callable[[], object], timeout: float = 30, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")
