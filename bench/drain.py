"""End to end: bulk-retry N failed automation executions whose handler is a no-op, start 2 worker
processes, time until every one is final. In the same run, the stock django-tasks-db `db_worker`
(2 processes) drains N no-op django.tasks tasks: the reference. Then the same with REDRIVE_TASKS=rq.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres uv run python bench/drain.py --n 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from common import ROOT, bench_database, insert_failed_automations, setup_django, tenant_and_admin

WORKERS = 2


def start(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_all(processes: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in processes:
        p.wait(max(deadline - time.monotonic(), 1))
        assert p.returncode == 0, f"worker exited {p.returncode}"


def redrive_drain(n: int, backend: str) -> float:
    from django.db import connections

    from executions import filters, services
    from executions.models import AutomationExecution

    AutomationExecution.objects.all().delete()
    tenant = tenant_and_admin_cached()
    insert_failed_automations(tenant[0], n)
    services.retry_many(tenant[1], {"filter": filters.parse({"kind": "automation"})})
    connections.close_all()
    env = {**os.environ, "REDRIVE_TASKS": backend}
    started = time.perf_counter()
    wait_all(
        [start(["worker", "--batch", "--no-reaper"], env) for _ in range(WORKERS)], timeout=600
    )
    elapsed = time.perf_counter() - started
    left = AutomationExecution.objects.exclude(status="completed").count()
    assert left == 0, f"{left} executions not completed"
    return n / elapsed


_CACHE: dict = {}


def tenant_and_admin_cached():
    if "t" not in _CACHE:
        _CACHE["t"] = tenant_and_admin()
    return _CACHE["t"]


def stock_drain(n: int) -> float:
    from django.db import connections, transaction
    from django_tasks_db.models import DBTaskResult

    from bench.stock_tasks import noop  # the path the workers import it by

    DBTaskResult.objects.all().delete()
    with transaction.atomic():  # enqueued as any caller would (not timed)
        for _ in range(n):
            noop.enqueue()
    connections.close_all()
    env = dict(os.environ)
    started = time.perf_counter()
    wait_all(
        [
            start(
                ["db_worker", "--batch", "--no-startup-delay", "--interval", "0", "--no-reload"],
                env,
            )
            for _ in range(WORKERS)
        ],
        timeout=900,
    )
    elapsed = time.perf_counter() - started
    assert not DBTaskResult.objects.exclude(status="SUCCESSFUL").exists()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--skip-rq", action="store_true")
    parser.add_argument("--rq-part", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rq_part:  # a child run with REDRIVE_TASKS=rq, so retry_many enqueues into Redis
        setup_django(migrate=False)
        print(f"{redrive_drain(args.n, 'rq'):.0f}")
        return
    bench_database("redrive_bench_drain")
    setup_django()
    redrive = redrive_drain(args.n, "db")
    stock = stock_drain(args.n)
    print(f"n: {args.n}")
    print(f"redrive_per_s: {redrive:.0f}")
    print(f"stock_per_s: {stock:.0f}")
    print(f"ratio: {redrive / stock:.2f}")
    line = (
        f"summary: {WORKERS} workers drained {args.n} retried executions at {redrive:.0f}/s "
        f"(target >= 1500), {redrive / stock:.2f}x stock db_worker (target >= 2)"
    )
    if not args.skip_rq:
        import redis

        redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).flushdb()
        child = subprocess.run(
            [sys.executable, __file__, "--n", str(args.n), "--rq-part"],
            env={**os.environ, "REDRIVE_TASKS": "rq"},
            capture_output=True,
            text=True,
            check=True,
        )
        rq = float(child.stdout.strip().splitlines()[-1])
        print(f"redrive_rq_per_s: {rq:.0f}")
        line += f"; with RQ {rq:.0f}/s"
    print(line)


if __name__ == "__main__":
    main()
