"""With REDIS_URL set, the throttle counters live in Redis: two web processes count together, so a
client cannot get twice the rate by landing on both. (Without it each process counts on its own,
README "Configuration".)"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
RATE = 30  # TokenThrottle's default: 30 a minute per client address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web_process(process_env) -> Iterator[Callable[[dict], str]]:
    """`web_process(env)` starts gunicorn (one worker) on the test database with the production
    settings and `env`, and returns its base URL; every one is killed when the test ends."""
    started: list[tuple[subprocess.Popen, Any]] = []

    def start(env: dict[str, str]) -> str:
        port = free_port()
        environ = process_env(
            env={
                "DEBUG": "0",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "127.0.0.1",
                "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
                "LOG_LEVEL": "WARNING",
                **env,
            }
        )
        log = tempfile.NamedTemporaryFile(prefix="redrive-web-", suffix=".log", delete=False)  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "project.wsgi:application"]
            + ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((process, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, Path(log.name).read_text(errors="replace")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/health/live", timeout=5).status_code == 200:
                    return base
            assert time.monotonic() < deadline, Path(log.name).read_text(errors="replace")
            time.sleep(0.2)

    yield start
    for process, log in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()
        Path(log.name).unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_web_processes_share_the_token_throttle_through_redis(web_process, redis_url):
    bases = [web_process({"REDIS_URL": redis_url}) for _ in range(2)]
    with requests.Session() as session:
        for i in range(RATE):
            # An empty body: a 400 from the view, after the throttle has counted the request
            # (and nothing for the sign-in lockout to count).
            r = session.post(f"{bases[i % 2]}/api/auth/token", json={}, timeout=30)
            assert r.status_code == 400, (i, r.text)
        for base in bases:
            r = session.post(f"{base}/api/auth/token", json={}, timeout=30)
            assert r.status_code == 429, r.text
            assert r.json()["error"]["message"].startswith("Rate limit exceeded; retry in ")
