"""Fixtures for the REST API tests.

The demo data (executions.demo.seed) is the cast: alice (admin, acme), dave (operator, acme),
bob (viewer, acme), carol (admin, globex), with API keys and JWTs, and one item of each kind in
each state per tenant (the manifest). Its base (tenants, users, a week of history) is seeded
once for this package and committed; each test then gets fresh manifest items inside its own
rolled-back transaction, so tests stay independent and fast.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client


@pytest.fixture(scope="package")
def demo_base(django_db_setup, django_db_blocker):
    from executions.demo import seed

    with django_db_blocker.unblock():
        seed()
    yield
    with django_db_blocker.unblock():
        # Leave the test database as pytest-django's other tests expect it: empty.
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def manifest(demo_base, db) -> dict:
    from executions.demo import seed

    return seed()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # Throttle counters live in the cache; one test's requests must not limit the next.
    cache.clear()
    yield
    cache.clear()


class Api:
    """A test client that speaks for one of the cast: `api.as_("alice").post(path, body)`."""

    def __init__(self, manifest: dict, who: str | None = None, via: str = "key") -> None:
        self.manifest = manifest
        self.who = who
        self.via = via
        self.client = Client()

    def as_(self, who: str | None, via: str = "key") -> Api:
        return Api(self.manifest, who, via)

    def auth_headers(self) -> dict[str, str]:
        if self.who is None:
            return {}
        if self.via == "key":
            return {"X-API-Key": self.manifest["api_keys"][self.who]}
        if self.via == "jwt":
            return {"Authorization": f"Bearer {self.manifest['jwt'][self.who]}"}
        raise ValueError(self.via)

    def get(self, path: str, params: dict | None = None, headers: dict | None = None):
        return self.client.get(
            path, params or {}, headers={**self.auth_headers(), **(headers or {})}
        )

    def post(
        self,
        path: str,
        body: Any = None,
        headers: dict | None = None,
        *,
        gzipped: bool = False,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ):
        headers = {**self.auth_headers(), **(headers or {})}
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        if gzipped:
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        return self.client.generic("POST", path, data, content_type=content_type, headers=headers)

    def put(self, path: str, body: Any = None, headers: dict | None = None):
        data = b"" if body is None else json.dumps(body).encode()
        return self.client.generic(
            "PUT",
            path,
            data,
            content_type="application/json",
            headers={**self.auth_headers(), **(headers or {})},
        )

    def method(self, verb: str, path: str, headers: dict | None = None):
        return self.client.generic(verb, path, headers={**self.auth_headers(), **(headers or {})})


@pytest.fixture
def api(manifest) -> Api:
    return Api(manifest, "alice")


# --- paths of each seed's endpoints for one tenant's manifest items -----------------------------


def fn_base(items: dict) -> str:
    f = items["functions"]
    return f"/api/functions/projects/{f['project_id']}/functions/{f['function_id']}"


def wf_base(items: dict) -> str:
    return f"/api/v1/projects/{items['workflows']['project']}"


ROOT_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent.parent
