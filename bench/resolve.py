"""Triage of one error group of N failures (executions/triage.py), beside a raw UPDATE of the same
rows in the same run:

- resolve_s: ignoring the group (triage.ignore_group: its failures, the group, the audit row),
             then resolving the N failures as their successful retries are recorded
             (triage.settled: what a worker's finish calls, audit rows included);
- raw_s:     hand-written UPDATEs of the same state changes on an identical copy of the rows
             (same columns and indexes; no failure-count triggers, no audit).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        uv run python bench/resolve.py --n 100000
"""

from __future__ import annotations

import argparse
import time

from common import bench_database, insert_failed_automations, setup_django, tenant_and_admin

COPY = "bench_triage_copy"


def execute(sql: str, params: list | None = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def succeed_all(table: str) -> None:
    """What the retries' successes leave before their finish is settled (not timed): every row
    completed on its second attempt."""
    execute(f"UPDATE {table} SET status = 'completed', attempt = 2")  # noqa: S608


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="failures in the group")
    args = parser.parse_args()
    bench_database("redrive_bench_resolve")
    setup_django()

    from django.db import connection, transaction

    from executions import triage
    from executions.models import AuditEvent, AutomationExecution

    tenant, admin = tenant_and_admin()
    insert_failed_automations(tenant, args.n)
    table = AutomationExecution._meta.db_table
    fp = AutomationExecution.objects.values_list("fingerprint", flat=True).first()
    execute(f"CREATE TABLE {COPY} (LIKE {table} INCLUDING ALL)")
    execute(f"INSERT INTO {COPY} SELECT * FROM {table}")  # noqa: S608
    execute(f"VACUUM ANALYZE {table}")
    execute(f"VACUUM ANALYZE {COPY}")
    pks = list(AutomationExecution.objects.values_list("pk", flat=True))

    started = time.perf_counter()
    ignored = triage.ignore_group(admin, fp, reason="bench")
    ignore_s = time.perf_counter() - started
    assert ignored == args.n, ignored

    started = time.perf_counter()
    execute(
        f"UPDATE {COPY} SET triage = 'ignored', triage_until = NULL "  # noqa: S608
        "WHERE tenant_id = %s AND fingerprint = %s AND triage IN ('open', 'regressed') "
        "AND status IN ('failed', 'timeout')",
        [tenant.pk, fp],
    )
    raw_ignore_s = time.perf_counter() - started

    succeed_all(table)
    succeed_all(COPY)
    execute(f"VACUUM ANALYZE {table}")
    execute(f"VACUUM ANALYZE {COPY}")

    started = time.perf_counter()
    with transaction.atomic():
        triage.settled(AutomationExecution, pks)
    settle_s = time.perf_counter() - started
    resolved = AutomationExecution.objects.filter(triage="resolved").count()
    assert resolved == args.n, resolved
    assert AuditEvent.objects.filter(action="resolve").count() == args.n

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {COPY} SET triage = 'resolved', triage_until = NULL "  # noqa: S608
            "WHERE execution_id = ANY(%s) AND attempt > 1 AND triage <> 'resolved'",
            [pks],
        )
    raw_resolve_s = time.perf_counter() - started

    resolve_s = ignore_s + settle_s
    raw_s = raw_ignore_s + raw_resolve_s
    ratio = resolve_s / raw_s
    print(f"ignore_s: {ignore_s:.2f}")
    print(f"settle_s: {settle_s:.2f}")
    print(f"resolve_s: {resolve_s:.2f}")
    print(f"raw_s: {raw_s:.2f}")
    print(f"ratio_to_raw: {ratio:.2f}")
    print(
        f"summary: {args.n} failures of one group ignored in {ignore_s:.2f} s (raw "
        f"{raw_ignore_s:.2f} s) and resolved in {settle_s:.2f} s (raw {raw_resolve_s:.2f} s): "
        f"{ratio:.2f}x a raw UPDATE (target <= 3x)"
    )


if __name__ == "__main__":
    main()
