"""Shared test fixtures: real worker processes against the test database, the seed_demo manifest,
and the PostgreSQL-only marker.

Work runs in a real `manage.py worker` subprocess, never eagerly in the test process. The worker
can only see committed rows, so every test that uses one is transactional (the fixtures below ask
for `transactional_db`; mark such tests `@pytest.mark.django_db(transaction=True)` anyway, it says
what the test relies on).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.call_counter import ENV as CALLS_ENV
from tests.call_counter import HandlerCalls

ROOT = Path(__file__).resolve().parent.parent

# The SQLite test database is a file under var/ (see env_database in project/settings.py).
(ROOT / "var").mkdir(exist_ok=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pg_only: needs PostgreSQL (row locks, concurrency); skipped on SQLite"
    )


def pytest_report_header(config: pytest.Config) -> str:
    """Which database the run is on (CI checks its SQLite run really is one)."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return f"redrive database: {engine}"


def is_postgresql() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_postgresql():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://...")
    for item in items:
        if item.get_closest_marker("pg_only"):
            item.add_marker(skip)


@pytest.fixture
def pg_only() -> None:
    """For tests that cannot carry the marker (e.g. one case of a parametrized test)."""
    if not is_postgresql():
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


def worker_database_url() -> str:
    """The URL of the test database this session uses, for processes the tests start."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(s["NAME"])
        assert name != ":memory:" and "mode=memory" not in name, "worker needs a file database"
        return f"sqlite:///{Path(name).resolve()}"
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = quote(s.get("HOST") or "127.0.0.1", safe="")  # a socket directory is %2F-encoded
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{quote(s['NAME'], safe='')}"


def worker_env(lease_seconds: int | None = None, env: dict[str, str] | None = None) -> dict:
    environ = {**os.environ, "DATABASE_URL": worker_database_url(), "PYTHONUNBUFFERED": "1"}
    if lease_seconds is not None:
        environ["REDRIVE_LEASE_SECONDS"] = str(lease_seconds)
    environ.update(env or {})
    return environ


@pytest.fixture
def process_env(transactional_db: None) -> Callable[..., dict]:
    """`process_env(lease_seconds=None, env=None)`: the environment for any process a test starts
    (a server, a command) so that it works on the test database."""
    return worker_env


# `manage.py worker` with test code run first, after django.setup() (os, signal, sys imported).
WORKER_WITH_HOOK = """
import os, signal, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()
{hook}
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "worker", *sys.argv[1:]])
"""


def worker_command(hostname: str | None, *extra: str, hook: str = "") -> list[str]:
    start = ["-c", WORKER_WITH_HOOK.format(hook=hook)] if hook else ["manage.py", "worker"]
    command = [sys.executable, *start, *extra]
    if hostname:
        command += ["--hostname", hostname]
    return command


def _wait_until(
    condition: Callable[[], object], timeout: float = 30, interval: float = 0.1, message: str = ""
) -> object:
    """Poll `condition` (typically a database query) until it returns something truthy."""
    from django.db import close_old_connections

    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


@pytest.fixture
def wait_until() -> Callable[..., object]:
    """`wait_until(lambda: ..., timeout=30, message="...")` -> the first truthy value."""
    return _wait_until


@pytest.fixture
def run_worker(transactional_db: None) -> Callable[..., str]:
    """`run_worker(hostname=None, timeout=60, lease_seconds=None, env=None, hook="", args=())`:
    run a real `manage.py worker --batch` (with `args`, after the Python code `hook`, if given)
    on the test database until the queue is empty; asserts it exited 0 and returns its output
    (stdout + stderr)."""

    def run(
        hostname: str | None = None,
        timeout: float = 60,
        lease_seconds: int | None = None,
        env: dict[str, str] | None = None,
        hook: str = "",
        args: tuple[str, ...] = (),
    ) -> str:
        done = subprocess.run(
            worker_command(hostname, "--batch", *args, hook=hook),
            cwd=ROOT,
            env=worker_env(lease_seconds, env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"worker exited {done.returncode}:\n{done.stdout}"
        return done.stdout

    return run


class WorkerProcess:
    """A long-running `manage.py worker`; its output goes to a file (a pipe could fill up)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="redrive-worker-", suffix=".log", delete=False
        )
        # Its own session, so a Ctrl-C on pytest does not hit it and stop() can kill the group.
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> int:
        """SIGKILL the worker (it is the python process that runs the tasks) and reap it."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)

    def kill_session(self) -> int:
        """SIGKILL the worker's whole session, as a machine's death would: its own process group
        first, then the others (RQ's work-horse calls setpgrp, leaving the worker's group), so
        the worker never sees its horse die. Returns the worker's exit status."""
        sid = self.process.pid
        groups = set()
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                if os.getsid(int(entry.name)) == sid:
                    groups.add(os.getpgid(int(entry.name)))
        for group in sorted(groups, key=lambda g: g != sid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        return self.process.wait(timeout=10)

    def stop(self) -> None:
        # The whole session: the worker and anything it may have started.
        self.kill_session()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def worker_process(transactional_db: None) -> Iterator[Callable[..., WorkerProcess]]:
    """`worker_process(hostname=None, lease_seconds=None, env=None, args=(), hook="")` starts a
    real, long-running worker (running the Python code `hook` first, if given); every worker
    started is killed when the test ends."""
    started: list[WorkerProcess] = []

    def start(
        hostname: str | None = None,
        lease_seconds: int | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        hook: str = "",
    ) -> WorkerProcess:
        worker = WorkerProcess(
            worker_command(hostname, "--interval", "0.1", *args, hook=hook),
            worker_env(lease_seconds, env),
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def sync_worker(worker_process: Callable[..., WorkerProcess]) -> WorkerProcess:
    """A real worker, for the tests whose request waits for one: seed 000's synchronous retry
    (API, console, `manage.py retry`) queues its execution and answers the worker's result. It
    makes the test transactional (the worker sees committed rows only); one per test, so that
    it inherits the test's environment (handler_calls)."""
    return worker_process()


@pytest.fixture(autouse=True)
def handler_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HandlerCalls:
    """The calls of the `counter` handler (tests/handlers.py) in this test, in this process and
    in every process it starts, by key."""
    path = tmp_path / "handler-calls"
    monkeypatch.setenv(CALLS_ENV, str(path))
    return HandlerCalls(path)


@pytest.fixture
def manifest(db: None) -> dict:
    """The seed_demo manifest (see docs/seed_demo_manifest.schema.json), with its
    data freshly seeded in the test database."""
    from executions.demo import seed

    return seed()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database for the RQ backend's tests, emptied before and after each test:
    REDRIVE_TEST_REDIS_URL, by default database 14 of the local Redis (give each concurrent test
    run its own)."""
    import redis

    url = os.environ.get("REDRIVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
