"""HTTP retries through the REST API under load: gunicorn on 127.0.0.1 with the production settings
(DEBUG off, a random SECRET_KEY from the environment, no TLS on loopback so no HTTPS redirect), and
a bounded load client on loopback (a fixed request count and a time limit) that retries N distinct
failed automation executions through `POST /api/v1/automation/executions/{id}/retry` with an API
key. In the same run, the same client against the no-database `GET /health/live`: the reference
(what the server and the client manage with no database work at all).

- retries_per_s:  N / wall time of the retries (every one must answer 200);
- p50_ms, p99_ms: client-side latency of one retry (a sync worker closes the connection after
                  each answer, as behind a proxy; `--worker-class gthread` keeps it alive);
- health_rps:     requests/s of /health/live, same client, same concurrency.

Afterwards exactly N executions must be pending and N retry audit rows exist.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres uv run python bench/api.py --n 10000
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from common import ROOT, bench_database, insert_failed_automations, setup_django, tenant_and_admin

CORES = os.cpu_count() or 2
RETRY_PATH = "/api/v1/automation/executions/{}/retry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn in its own process group, so stop() reaches the master and its workers."""

    def __init__(
        self, port: int, workers: int, worker_class: str, threads: int, settings: str = ""
    ) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="redrive-bench-gunicorn-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            # Plain HTTP on loopback: the redirect to HTTPS would answer every request with 301.
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "WARNING",
            **({"DJANGO_SETTINGS_MODULE": settings} if settings else {}),
        }
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "project.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--log-level",
            "warning",
        ]
        if worker_class == "gthread":  # keeps client connections alive; sync closes each one
            command += ["--threads", str(threads), "--keep-alive", "30"]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.base}/health", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        sys.exit(f"gunicorn not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def load(
    base: str,
    method: str,
    paths: list[str] | list[tuple[str, bytes]],
    headers: dict[str, str],
    concurrency: int,
    time_limit: float,
) -> tuple[float, list[float], dict[int, int]]:
    """Send every path (or (path, body)) once from `concurrency` threads (one keep-alive
    connection each), stopping at `time_limit`. Returns (wall seconds, latencies in ms, count
    per status code).

    The standard library's http.client, not `requests`: the client shares the 2 cores with
    gunicorn and PostgreSQL, and `requests` took ~1.2 ms of CPU per request here."""
    host, port = base.removeprefix("http://").split(":")
    lock = threading.Lock()
    todo = iter(paths)
    deadline = time.monotonic() + time_limit

    def run() -> tuple[list[float], dict[int, int]]:
        latencies: list[float] = []
        codes: dict[int, int] = {}
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    item = next(todo, None)
                if item is None:
                    break
                path, body = item if isinstance(item, tuple) else (item, None)
                started = time.perf_counter()
                try:
                    connection.request(method, path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    connection.close()  # the next request reconnects
                    status = 0
                latencies.append((time.perf_counter() - started) * 1000)
                codes[status] = codes.get(status, 0) + 1
        finally:
            connection.close()
        return latencies, codes

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        parts = [f.result() for f in [pool.submit(run) for _ in range(concurrency)]]
    wall = time.perf_counter() - started
    latencies = sorted(ms for part, _ in parts for ms in part)
    codes: dict[int, int] = {}
    for _, part in parts:
        for status, count in part.items():
            codes[status] = codes.get(status, 0) + count
    return wall, latencies, codes


def tree_cpu_seconds(parent: psutil.Process) -> float:
    """User + system CPU used so far by a server's processes: its live children plus those that
    have exited (a parent that reaps its children accumulates their times), in seconds. Counted
    this way, connections that are closed and reopened during the run (CONN_MAX_AGE) lose
    nothing."""
    times = parent.cpu_times()
    total = times.children_user + times.children_system
    for child in parent.children():
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # exited between the two calls: its times are in the parent's next reading
        total += child_times.user + child_times.system
    return total


def postgres_server(url: str) -> psutil.Process:
    """PostgreSQL's postmaster (on this machine): the parent of the backend serving `url`."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
    return psutil.Process(pid).parent()


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="distinct executions to retry")
    # The request path is CPU-bound Python: one process per core, doubled to cover the time each
    # spends waiting on PostgreSQL. gunicorn's default sync workers, as deployed behind a proxy
    # (README): in alternating runs 428 and 435 retries/s against 409 and 404 for 4 gthread
    # workers x 2 threads with kept-alive connections (same CPU per retry, less queueing).
    # Tried on 2 cores with gthread: 2x4/8, 3x2/6, 3x1/3, 4x1/4, 6x1/6.
    parser.add_argument("--workers", type=int, default=2 * CORES, help="gunicorn processes")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument("--concurrency", type=int, default=4, help="client connections")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds per load phase")
    args = parser.parse_args()

    # Production settings, with a secret that exists only in this run's environment.
    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    database_url = bench_database("redrive_bench_api")
    setup_django()
    from django.db import connections

    from executions.models import ApiKey, AuditEvent, AutomationExecution

    tenant, actor = tenant_and_admin()
    insert_failed_automations(tenant, args.n)
    _, key = ApiKey.objects.create_key(
        name="bench", tenant=tenant, user=actor.user, permissions=["automation:execute"]
    )
    ids = [str(pk) for pk in AutomationExecution.objects.values_list("pk", flat=True)]
    connections.close_all()

    server = Server(free_port(), args.workers, args.worker_class, args.threads)
    try:
        server.wait_ready()
        headers = {"X-API-Key": key}
        # Warm every worker (imports, database connection, key lookup) without using up an item:
        # retries of ids that do not exist answer 404 through the same path.
        missing = [RETRY_PATH.format(f"00000000-0000-4000-8000-{i:012d}") for i in range(400)]
        _, _, warm = load(server.base, "POST", missing, headers, args.concurrency, 60)
        assert warm == {404: len(missing)}, warm
        # Where the CPU goes during the retries (all on this machine): the client, gunicorn's
        # workers, PostgreSQL's processes (its backends and the WAL writer, checkpointer and
        # autovacuum they cause work for), and the machine as a whole.
        gunicorn, postgres = psutil.Process(server.process.pid), postgres_server(database_url)
        cpu = time.process_time()
        server_cpu, db_cpu = tree_cpu_seconds(gunicorn), tree_cpu_seconds(postgres)
        psutil.cpu_percent()  # starts the machine-wide measurement
        wall, latencies, codes = load(
            server.base,
            "POST",
            [RETRY_PATH.format(pk) for pk in ids],
            headers,
            args.concurrency,
            args.time_limit,
        )
        client_cpu = time.process_time() - cpu
        server_cpu = tree_cpu_seconds(gunicorn) - server_cpu
        db_cpu = tree_cpu_seconds(postgres) - db_cpu
        machine_load = psutil.cpu_percent() / 100  # all cores, since the call above
        health_n = max(args.n, 2000)
        health_wall, _, health_codes = load(
            server.base,
            "GET",
            ["/health/live"] * health_n,
            {},
            args.concurrency,
            args.time_limit,
        )
    finally:
        server_log = server.output()
        server.stop()

    # The time limit may stop a phase early: then the figures are over the requests sent, and the
    # summary says so. Every request sent must have succeeded either way.
    done, health_done = sum(codes.values()), sum(health_codes.values())
    assert codes == {200: done}, f"retries answered {codes} (expected only 200s)\n{server_log}"
    assert health_codes == {200: health_done}, health_codes
    pending = AutomationExecution.objects.filter(status="pending").count()
    audits = AuditEvent.objects.filter(action="retry", kind="automation").count()
    assert pending == done, f"{pending} executions pending after {done} retries"
    assert audits == done, f"{audits} audit rows after {done} retries"

    retries_per_s = done / wall
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    health_rps = health_done / health_wall
    print(f"n: {args.n}")
    print(f"retried: {done}")
    shape = f"{args.threads} threads (gthread)" if args.worker_class == "gthread" else "1 (sync)"
    print(f"gunicorn: {args.workers} workers x {shape}, {CORES} cores")
    print(f"concurrency: {args.concurrency}")
    print(f"retries_per_s: {retries_per_s:.0f}")
    print(f"p50_ms: {p50:.1f}")
    print(f"p99_ms: {p99:.1f}")
    print(f"health_rps: {health_rps:.0f}")
    print(f"ratio_to_health: {retries_per_s / health_rps:.2f}")
    # The load client shares the 2 cores with the server and PostgreSQL: what it costs.
    print(f"client_cpu_ms_per_retry: {client_cpu / max(done, 1) * 1000:.2f}")
    print(f"server_cpu_ms_per_retry: {server_cpu / max(done, 1) * 1000:.2f}")
    print(f"postgres_cpu_ms_per_retry: {db_cpu / max(done, 1) * 1000:.2f}")
    print(f"machine_busy_during_retries: {machine_load:.0%}")
    print(f"pending_after: {pending}")
    print(f"audit_rows_after: {audits}")
    met = done == args.n and retries_per_s >= 500 and p99 <= 50
    cut = "" if done == args.n else f" (time limit hit after {done} of {args.n})"
    print(
        f"summary: {done} API retries{cut} at {retries_per_s:.0f}/s (target >= 500), "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target <= 50); /health/live {health_rps:.0f} rps "
        f"in the same run ({retries_per_s / health_rps:.2f}x); targets "
        + ("met" if met else "MISSED")
    )


if __name__ == "__main__":
    main()
