"""`manage.py up`, the README's run command: migrates, seeds an empty database, serves the console
with a live worker beside it, prints the URL and the demo logins, and stops both on Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import transaction

from executions.kinds.functions import run as functions_run
from executions.models import Function, FunctionExecution, Tenant

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def start_up(tmp_path: Path, env: dict, wait_until) -> tuple[subprocess.Popen, int, Path, Path]:
    """`manage.py up` on a free port, once it says it is ready: (the process, its port, the
    manifest it wrote, its log)."""
    port = free_port()
    manifest_path = tmp_path / "demo-manifest.json"
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--port", str(port), "--manifest", manifest_path],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: "Press Ctrl-C to stop both" in log.read_text() or up.poll() is not None,
            timeout=120,
            message="manage.py up to start",
        )
    except BaseException:
        up.kill()
        up.wait()
        raise
    return up, port, manifest_path, log


def test_up_seeds_serves_works_and_stops_cleanly(tmp_path, process_env, wait_until):
    up, port, manifest_path, log = start_up(tmp_path, process_env(), wait_until)
    try:
        output = log.read_text()
        assert up.poll() is None, output
        assert f"Redrive is running at http://127.0.0.1:{port}" in output

        # It seeded the empty database and printed the logins from the manifest it wrote.
        manifest = json.loads(manifest_path.read_text())
        assert set(Tenant.objects.values_list("slug", flat=True)) == {"acme", "globex"}
        for username, user in manifest["users"].items():
            assert f"{username:<6} / {user['password']:<20} {user['role']} in {user['tenant']}" in (
                output
            )
        assert f"API key of alice: {manifest['api_keys']['alice']}" in output

        # The web server answers ...
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=10) as r:
            assert r.status == 200
        # ... and the worker beside it runs queued work.
        function = Function.objects.create(
            tenant=Tenant.objects.get(slug="acme"), name="up-check", handler="noop"
        )
        with transaction.atomic():
            execution = functions_run.invoke_function(function, {}, queued=True)
        wait_until(
            lambda: FunctionExecution.objects.filter(pk=execution.pk, status="success").exists(),
            timeout=30,
            message="the worker started by up to run the function",
        )

        children = children_of(up.pid)
        assert len(children) == 2

        up.send_signal(signal.SIGINT)  # what Ctrl-C does
        assert up.wait(timeout=30) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    output = log.read_text()
    assert output.rstrip().endswith("Stopped.")
    time.sleep(0.2)
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
