"""The pace of a staged bulk retry through one real worker: N failed no-op automations retried
with `ratePerSecond` R (no canary), on the database backend or on RQ (`--backend rq`, with an
empty Redis database in REDIS_URL). Prints the rate achieved between the first and the last
retry (the first chunk goes at once: (N - R) items over that span), the steps the bulk took, and
the time until it finished.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/9 \\
        uv run python bench/staged_rate.py --backend rq --n 60 --rate 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from common import ROOT, bench_database, insert_failed_automations, setup_django, tenant_and_admin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("db", "rq"), default="db")
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    os.environ["REDRIVE_TASKS"] = args.backend
    bench_database(f"redrive_bench_staged_{args.backend}")
    setup_django()

    from django.db import close_old_connections, connections

    from executions import filters, selectors, services
    from executions.models import BulkRetry

    tenant, actor = tenant_and_admin()
    insert_failed_automations(tenant, args.n)
    selection = {"filter": filters.parse({"kind": "automation"})}
    bulk = services.start_bulk_retry(actor, selection, options={"ratePerSecond": args.rate})
    connections.close_all()
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--no-reaper"],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20 + 3 * args.n / args.rate
        while BulkRetry.objects.get(pk=bulk.pk).status != "finished":
            close_old_connections()
            assert time.monotonic() < deadline, "the bulk did not finish"
            time.sleep(0.2)
        finished_s = time.perf_counter() - started
    finally:
        os.killpg(worker.pid, 9)
        worker.wait()
    bulk.refresh_from_db()
    events, _ = selectors.audit_events(bulk.tenant, bulk=str(bulk.pk), limit=10**6)
    times = sorted(e.created_at for e in events if e.action == "retry")
    span = (times[-1] - times[0]).total_seconds()
    chunk = max(1, int(args.rate))
    achieved = (len(times) - chunk) / span if span else float("inf")
    print(
        f"backend={args.backend} n={args.n} rate={args.rate:g} retried={len(times)} "
        f"achieved_rate={achieved:.2f} steps={bulk.staged['seq'] + 1} finished_s={finished_s:.1f}"
    )


if __name__ == "__main__":
    main()
