"""Fixtures for the SDK tests: the seeds' own client packages (cognite-sdk, mudbase) and plain
`requests`, talking HTTP to a live Redrive (pytest-django's `live_server`, a real threaded
server on the test database). Nothing is mocked: every call goes over a socket, through the
SDK's own request building, compression, auth headers and response parsing.

live_server makes every test here transactional (the server's threads see only committed rows),
so each test seeds the demo data afresh with the `manifest` fixture of tests/conftest.py.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    # The live server runs in this process and shares its cache: one test's token requests must
    # not throttle the next test's.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _server_threads_done(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test, wait until the live server's request threads have closed their database
    connections. Each thread closes its connection when the client closes the socket (the client
    fixtures below close their pools), but it does so a moment later, in its own thread; a
    connection still open then would make dropping the test database fail at the end."""
    yield
    if "live_server" not in request.fixturenames:
        return
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0 or time.monotonic() > deadline:
                return
            time.sleep(0.05)


@pytest.fixture(scope="session", autouse=True)
def _cognite_offline() -> None:
    from cognite.client import global_config

    # The SDK checks PyPI for a newer version when a client is made; the tests talk to Redrive
    # only. Retries of 429/5xx stay on but bounded, so a server fault fails fast.
    global_config.disable_pypi_version_check = True
    global_config.max_retries = 2
    global_config.max_retry_backoff = 1


@pytest.fixture
def base(live_server) -> str:
    """Redrive's base URL, e.g. http://localhost:39871 (what a user passes to an SDK)."""
    return live_server.url


@pytest.fixture
def login(base: str, manifest: dict) -> Callable[[str], str]:
    """`login("alice")` -> a JWT from a real POST /api/auth/token with the demo password."""

    def token_for(username: str) -> str:
        r = requests.post(
            f"{base}/api/auth/token",
            json={"username": username, "password": manifest["users"][username]["password"]},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()["token"]

    return token_for


@pytest.fixture
def cognite(base: str) -> Iterator[Callable[..., object]]:
    """`cognite(token, project)` -> a cognite.client.CogniteClient pointed at Redrive."""
    from cognite.client import ClientConfig, CogniteClient
    from cognite.client.credentials import Token

    def client(token: str, project: str) -> CogniteClient:
        return CogniteClient(
            ClientConfig(
                client_name="redrive-sdk-tests",
                project=project,
                base_url=base,
                credentials=Token(token),
                timeout=30,
            )
        )

    yield client
    _close_cognite_connections()


def _close_cognite_connections() -> None:
    """Close the SDK's pooled keep-alive connections. The live server serves each connection in a
    thread that holds a database connection until the socket closes; left open, they would keep
    the test database busy when pytest-django drops it."""
    from cognite.client._http_client import _global_async_httpx_clients
    from cognite.client.utils._async_helpers import run_sync

    async def close_all() -> None:
        while _global_async_httpx_clients:
            _, http = _global_async_httpx_clients.popitem()
            await http.aclose()

    run_sync(close_all())


@pytest.fixture
def mudbase_functions(base: str) -> Iterator[Callable[..., object]]:
    """`mudbase_functions(api_key=...)` or `mudbase_functions(token=...)` -> a
    mudbase.FunctionsApi pointed at Redrive."""
    import mudbase

    clients: list[mudbase.ApiClient] = []

    def functions_api(*, api_key: str | None = None, token: str | None = None):
        configuration = mudbase.Configuration(
            host=base,
            api_key={"ApiKeyAuth": api_key} if api_key else None,
            access_token=token,
        )
        api_client = mudbase.ApiClient(configuration)
        clients.append(api_client)
        return mudbase.FunctionsApi(api_client)

    yield functions_api
    # An ApiException a test caught keeps its response, and through it the socket, alive in a
    # reference cycle (exception -> traceback -> frame); collect those first so that closing
    # the pools really closes every socket.
    gc.collect()
    for api_client in clients:
        api_client.rest_client.pool_manager.clear()
