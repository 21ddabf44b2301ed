"""Seed 000's synchronous retry over REST with an idle worker: gunicorn on 127.0.0.1 (production
settings), one real `manage.py worker`, and one client retrying the same failed execution of a
small JavaScript function (it builds and returns an object) N times in a row, each retry waiting
for the worker's result. Then what the idle worker costs: the CPU of the worker and of
PostgreSQL's processes over `--idle` seconds with nothing queued.

- sync_p50_ms, sync_p99_ms: client-side latency of one retry (every one must answer 200 with
                            the function's result);
- worker_idle_cpu_pct:      the idle worker's CPU, percent of one core;
- postgres_idle_cpu_pct:    PostgreSQL's CPU meanwhile (its polls), percent of one core.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres uv run python bench/sync_retry.py \
        --n 500 [--interval 0.01]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from api import Server, free_port, percentile, postgres_server, tree_cpu_seconds
from common import ROOT, bench_database, setup_django, tenant_and_admin

CODE = """
const items = [];
for (let i = 0; i < 10; i++) items.push({i, square: i * i});
return {count: items.length, items, echo: payload};
"""


def own_and_tree_cpu_seconds(process: psutil.Process) -> float:
    """The worker's own CPU and its children's (its V8 sandbox host)."""
    times = process.cpu_times()
    return times.user + times.system + tree_cpu_seconds(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="retries, one after the other")
    parser.add_argument("--interval", default=None, help="the worker's --interval (default: its)")
    parser.add_argument("--idle", type=float, default=10, help="seconds of idle measured")
    args = parser.parse_args()

    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    database_url = bench_database("redrive_bench_sync")
    setup_django()
    from django.db import connections

    from executions.models import ApiKey, Function, FunctionExecution

    tenant, actor = tenant_and_admin()
    function = Function.objects.create(tenant=tenant, name="bench", code=CODE)
    original = FunctionExecution.objects.create(
        tenant=tenant,
        function=function,
        **function.definition(),
        payload={"order": 7},
        status="failed",
        error_message="connection reset by peer",
    )
    _, key = ApiKey.objects.create_key(
        name="bench", tenant=tenant, user=actor.user, permissions=["functions:retry"]
    )
    path = (
        f"/api/functions/projects/{tenant.functions_project_id}/functions/{function.pk}"
        f"/executions/{original.pk}/retry"
    )
    connections.close_all()

    log = tempfile.NamedTemporaryFile(prefix="redrive-bench-worker-", delete=False)  # noqa: SIM115
    command = [sys.executable, "manage.py", "worker", "--hostname", "bench"]
    if args.interval is not None:
        command += ["--interval", str(args.interval)]
    worker = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ}, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(free_port(), workers=2, worker_class="gthread", threads=2)
    try:
        server.wait_ready()
        session = requests.Session()
        session.headers["X-API-Key"] = key

        def retry() -> float:
            started = time.perf_counter()
            response = session.post(server.base + path, timeout=60)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            assert response.json()["data"]["result"]["count"] == 10, response.text
            return elapsed * 1000

        for _ in range(20):  # warm both gunicorn processes, the worker and its V8 host
            retry()
        latencies = sorted(retry() for _ in range(args.n))

        time.sleep(1)  # the last retry's after-effects settle
        process, postgres = psutil.Process(worker.pid), postgres_server(database_url)
        worker_cpu, db_cpu = own_and_tree_cpu_seconds(process), tree_cpu_seconds(postgres)
        time.sleep(args.idle)
        worker_cpu = own_and_tree_cpu_seconds(process) - worker_cpu
        db_cpu = tree_cpu_seconds(postgres) - db_cpu
    finally:
        server.stop()
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
        Path(log.name).unlink(missing_ok=True)

    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"n: {args.n}")
    print(f"worker_interval: {args.interval or 'default'}")
    print(f"sync_p50_ms: {p50:.1f}")
    print(f"sync_p99_ms: {p99:.1f}")
    print(f"worker_idle_cpu_pct: {worker_cpu / args.idle * 100:.1f}")
    print(f"postgres_idle_cpu_pct: {db_cpu / args.idle * 100:.1f}")
    met = p50 <= 25 and p99 <= 100
    print(
        f"summary: sync retry p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(targets <= 25 / <= 100: {'met' if met else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
