"""HTTP retries through the REST API under load: gunicorn on 127.0.0.1 with the production settings
(DEBUG off, a random SECRET_KEY from the environment, no TLS on loopback so no HTTPS redirect), and
a bounded load client on loopback (a fixed request count and a time limit) that retries N distinct
failed automation executions through `POST /api/v1/automation/executions/{id}/retry` with an API
key. In the same run, the same client against the no-database `GET /health/live`: the reference
(what the server and the client manage with no database work at all).

- retries_per_s:  N / wall time of the retries (every one must answer 200);
- p50_ms, p99_ms: client-side latency of one retry (connection kept alive);
- health_rps:     requests/s of /health/live, same client, same concurrency.

Afterwards exactly N executions must be pending and N retry audit rows exist.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres uv run python bench/api.py --n 10000
"""

from __future__ import annotations

import argparse
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

from common import ROOT, bench_database, insert_failed_automations, setup_django, tenant_and_admin

CORES = os.cpu_count() or 2
RETRY_PATH = "/api/v1/automation/executions/{}/retry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn in its own process group, so stop() reaches the master and its workers."""

    def __init__(self, port: int, workers: int, threads: int) -> None:
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
            # gthread keeps client connections alive (sync workers close every one).
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ]
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


class Connection:
    """One keep-alive HTTP/1.1 connection over a plain socket. The load client shares the 2 cores
    with gunicorn and PostgreSQL, so it must cost as little as possible per request: `requests`
    took ~1.2 ms of CPU per request here (about a quarter of a retry's whole budget at 500/s);
    this takes a few tens of microseconds. It reads exactly what HTTP/1.1 says a response is:
    headers, then Content-Length bytes or chunks."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buffer = sock, b""
        return sock

    def _fill(self, sock: socket.socket) -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection mid-response")
        self.buffer += chunk

    def request(self, raw: bytes) -> int:
        """Send one request (bytes as they go on the wire); return the response's status code."""
        sock = self.sock or self._connect()
        sock.sendall(raw)
        while b"\r\n\r\n" not in self.buffer:
            self._fill(sock)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        if "content-length" in fields:
            self._body(sock, int(fields["content-length"]))
        elif fields.get("transfer-encoding") == "chunked":
            while True:
                while b"\r\n" not in self.buffer:
                    self._fill(sock)
                size_line, _, self.buffer = self.buffer.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                self._body(sock, size + 2)  # the chunk and its CRLF
                if size == 0:
                    break
        if fields.get("connection") == "close":
            self.close()
        return status

    def _body(self, sock: socket.socket, length: int) -> None:
        while len(self.buffer) < length:
            self._fill(sock)
        self.buffer = self.buffer[length:]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""


def load(
    base: str,
    method: str,
    paths: list[str],
    headers: dict[str, str],
    concurrency: int,
    time_limit: float,
) -> tuple[float, list[float], dict[int, int]]:
    """Send every path once from `concurrency` threads (one keep-alive connection each), stopping
    at `time_limit`. Returns (wall seconds, latencies in ms, count per status code)."""
    host, port = base.removeprefix("http://").split(":")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += f"Host: {host}:{port}\r\nContent-Length: 0\r\n\r\n"
    requests_ = [f"{method} {path} HTTP/1.1\r\n{head}".encode() for path in paths]
    lock = threading.Lock()
    todo = iter(requests_)
    deadline = time.monotonic() + time_limit

    def run() -> tuple[list[float], dict[int, int]]:
        latencies: list[float] = []
        codes: dict[int, int] = {}
        connection = Connection(host, int(port))
        try:
            while time.monotonic() < deadline:
                with lock:
                    raw = next(todo, None)
                if raw is None:
                    break
                started = time.perf_counter()
                try:
                    status = connection.request(raw)
                except OSError:
                    connection.close()
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (Linux /proc), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def server_pids(master: int) -> list[int]:
    """The gunicorn master's worker processes."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.append(int(stat.parent.name))
    return children


def database_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving this database (the server's connections), by pid."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="distinct executions to retry")
    # The request path is CPU-bound Python: one process per core, doubled to cover the time each
    # spends waiting on PostgreSQL. Fewer client connections than server threads keeps queueing
    # (and so latency) out of the server; tried on 2 cores: 2x4/8, 3x2/6, 3x1/3, 4x1/4, 6x1/6.
    parser.add_argument("--workers", type=int, default=2 * CORES, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
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

    server = Server(free_port(), args.workers, args.threads)
    try:
        server.wait_ready()
        headers = {"X-API-Key": key}
        # Warm every worker (imports, database connection, key lookup) without using up an item:
        # retries of ids that do not exist answer 404 through the same path.
        missing = [RETRY_PATH.format(f"00000000-0000-4000-8000-{i:012d}") for i in range(400)]
        _, _, warm = load(server.base, "POST", missing, headers, args.concurrency, 60)
        assert warm == {404: len(missing)}, warm
        # Where the CPU goes during the retries: the client, gunicorn's workers, the database's
        # backends (same machine, so readable from /proc), and the machine as a whole.
        workers, backends = server_pids(server.process.pid), database_pids(database_url)
        cpu = time.process_time()
        server_cpu, db_cpu, busy = cpu_seconds(workers), cpu_seconds(backends), machine_busy()
        wall, latencies, codes = load(
            server.base,
            "POST",
            [RETRY_PATH.format(pk) for pk in ids],
            headers,
            args.concurrency,
            args.time_limit,
        )
        client_cpu = time.process_time() - cpu
        server_cpu = cpu_seconds(workers) - server_cpu
        db_cpu = cpu_seconds(backends) - db_cpu
        busy_after = machine_busy()
        machine_load = (busy_after[0] - busy[0]) / max(1, busy_after[1] - busy[1])
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
    print(f"gunicorn: {args.workers} workers x {args.threads} threads (gthread), {CORES} cores")
    print(f"concurrency: {args.concurrency}")
    print(f"retries_per_s: {retries_per_s:.0f}")
    print(f"p50_ms: {p50:.1f}")
    print(f"p99_ms: {p99:.1f}")
    print(f"health_rps: {health_rps:.0f}")
    print(f"ratio_to_health: {retries_per_s / health_rps:.2f}")
    # The load client shares the 2 cores with the server and PostgreSQL: what it costs.
    print(f"client_cpu_ms_per_retry: {client_cpu / max(done, 1) * 1000:.2f}")
    print(f"server_cpu_ms_per_retry: {server_cpu / max(done, 1) * 1000:.2f}")
    print(f"db_cpu_ms_per_retry: {db_cpu / max(done, 1) * 1000:.2f}")
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
