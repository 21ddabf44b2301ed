"""Bulk retry of N failed automation executions, measured beside its references in one run:

- redrive_s:     services.retry_many over all of them (attempt history naming the bulk's audit
                 row, outbox events and enqueueing included; the preview, which records the bulk
                 and its audit row, excluded);
- raw_update_s:  a hand-written `UPDATE ... SET status='pending' ... WHERE status='failed'` on an
                 identical copy of the rows (same columns and indexes);
- rq_requeue_s:  RQ's own requeue of N failed RQ jobs in Redis (what `rq requeue --all` does).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        uv run python bench/bulk_retry.py --n 100000
"""

from __future__ import annotations

import argparse
import os
import time

from common import bench_database, insert_failed_automations, setup_django, tenant_and_admin, timed


def wal_position() -> str:
    """Where PostgreSQL's write-ahead log is now: what a statement writes is the difference."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        return cursor.fetchone()[0]


def wal_mb_since(position: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [position])
        return float(cursor.fetchone()[0]) / 1e6


def vacuum_analyze(table: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def raw_update(n_expected: int) -> tuple[float, float]:
    """(seconds, MB of WAL) of the reference UPDATE."""
    from django.db import connection

    from executions.models import AutomationExecution

    table = AutomationExecution._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_raw_copy")
        cursor.execute(f"CREATE TABLE bench_raw_copy (LIKE {table} INCLUDING ALL)")
        cursor.execute(f"INSERT INTO bench_raw_copy SELECT * FROM {table}")  # noqa: S608
        vacuum_analyze("bench_raw_copy")
        wal = wal_position()
        started = time.perf_counter()
        cursor.execute(
            "UPDATE bench_raw_copy SET status = 'pending', completed_at = NULL, "
            "duration_ms = NULL, error_message = NULL, error_stack = NULL, "
            "failed_action_index = NULL, actions_successful = 0, actions_failed = 0, "
            "attempt = attempt + 1, updated_at = now() WHERE status = 'failed'"
        )
        elapsed = time.perf_counter() - started
        assert cursor.rowcount == n_expected, cursor.rowcount
        wal_mb = wal_mb_since(wal)
        cursor.execute("DROP TABLE bench_raw_copy")
    return elapsed, wal_mb


def rq_requeue(n: int) -> float:
    import redis
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/15"
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    queue = Queue("bench", connection=conn)
    registry = FailedJobRegistry(queue=queue)
    pipe = conn.pipeline()
    ids = []
    for i in range(n):
        job = Job.create(
            "builtins.print", args=(i,), connection=conn, origin="bench", id=f"bench-{i}"
        )
        job.set_status("failed", pipeline=pipe)
        job.save(pipeline=pipe)
        registry.add(job, ttl=-1, pipeline=pipe)
        ids.append(job.id)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    assert registry.count == n, registry.count
    started = time.perf_counter()
    for job_id in registry.get_job_ids():  # what `rq requeue --all` does
        registry.requeue(job_id)
    elapsed = time.perf_counter() - started
    assert queue.count == n, queue.count
    conn.flushdb()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--skip-rq", action="store_true")
    args = parser.parse_args()
    bench_database("redrive_bench_bulk")
    setup_django()
    from django_tasks_db.models import DBTaskResult

    from executions import filters, services
    from executions.models import Attempt, AuditEvent, AutomationExecution, OutboxEvent

    tenant, actor = tenant_and_admin()
    insert_failed_automations(tenant, args.n)
    results: dict[str, float] = {}
    results["raw_update_s"], results["raw_wal_mb"] = raw_update(args.n)
    # The same state as the reference's copy (vacuumed and analysed before its UPDATE): hint bits
    # set, statistics in place, and no autovacuum of the freshly inserted rows running meanwhile.
    vacuum_analyze(AutomationExecution._meta.db_table)
    selection = {"filter": filters.parse({"kind": "automation"})}
    # The preview (counting what will be retried, per status) is what the user sees before
    # confirming; it is recorded as the bulk's plan and not timed.
    bulk = services.plan_bulk_retry(actor, selection)
    wal = wal_position()
    with timed(results, "redrive_s"):
        bulk = services.retry_many(actor, selection, bulk=bulk)
    # What the database had to write (machine noise does not move it, unlike the times).
    results["redrive_wal_mb"] = wal_mb_since(wal)
    assert bulk.done == args.n, (bulk.done, bulk.failed)
    assert AutomationExecution.objects.filter(status="pending").count() == args.n
    # One audit row for the bulk; every item has its history row (naming that audit row) and
    # its event, and every item is in exactly one task.
    assert AuditEvent.objects.get().action == AuditEvent.BULK_RETRY
    assert Attempt.objects.filter(bulk_audit__bulk=bulk).count() == args.n
    assert OutboxEvent.objects.count() == args.n
    queued = [pk for t in DBTaskResult.objects.all() for pk in t.args_kwargs["args"][0]]
    assert len(queued) == len(set(queued)) == args.n, len(queued)
    if not args.skip_rq:
        results["rq_requeue_s"] = rq_requeue(args.n)
    print(f"n: {args.n}")
    for name in ("redrive_s", "raw_update_s", "rq_requeue_s", "redrive_wal_mb", "raw_wal_mb"):
        if name in results:
            print(f"{name}: {results[name]:.3f}")
    ratio = results["redrive_s"] / results["raw_update_s"]
    print(f"ratio_to_raw: {ratio:.2f}")
    print(f"wal_ratio_to_raw: {results['redrive_wal_mb'] / results['raw_wal_mb']:.2f}")
    rq = results.get("rq_requeue_s")
    print(
        f"summary: retry_many of {args.n} automation executions took {results['redrive_s']:.2f} s, "
        f"{ratio:.2f}x a raw UPDATE (target <= 3)"
        + (f", {rq / results['redrive_s']:.1f}x faster than RQ requeue" if rq else "")
    )


if __name__ == "__main__":
    main()
