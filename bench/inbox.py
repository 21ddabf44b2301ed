"""Console pages at scale: N failures across the five kinds (`seed_demo --scale`), each page timed
server-side through Django's test client (warm), p50 and p95, beside the time of the same page's
SQL run raw (the database's share; the rest is Python and templates).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        uv run python bench/inbox.py --n 1000000
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from common import bench_database, setup_django


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(client, url: str, repeat: int) -> tuple[list[float], float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm: caches, plans, connection
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    raw = []
    for _ in range(5):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for query in captured.captured_queries:
                sql = query["sql"]
                # The page's reads, and the fold of pending failure counts (a WITH ... DELETE
                # ... INSERT, nothing to fold the second time); not the session's writes.
                if sql.lstrip().upper().startswith(("SELECT", "WITH", "(SELECT")):
                    cursor.execute(sql)
                    if cursor.description is not None:
                        cursor.fetchall()
        raw.append((time.perf_counter() - started) * 1000)
    return times, statistics.median(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="failures in all")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the database of a last run")
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="skip project.wsgi's gc.freeze() (to see what it is worth)",
    )
    args = parser.parse_args()
    if args.reuse:
        import os

        os.environ["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + (
            "/redrive_bench_inbox"
        )
        setup_django(migrate=False)
    else:
        bench_database("redrive_bench_inbox")
        setup_django()
        from django.core.management import call_command
        from django.db import connection

        started = time.perf_counter()
        call_command("seed_demo", scale=args.n // 5, verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seeded_s: {time.perf_counter() - started:.1f}")

    if not args.no_gc_freeze:
        import project.wsgi  # noqa: F401 - as gunicorn's workers do: views loaded, gc.freeze()

    from django.contrib.auth.models import User
    from django.test import Client

    from executions import filters, selectors
    from executions.models import AutomationExecution, Tenant

    tenant = Tenant.objects.get(slug="acme")
    client = Client()
    client.force_login(User.objects.get(username="alice"))
    first = selectors.inbox(tenant, filters.parse({}), limit=50)
    cursor = first.next_cursor
    for _ in range(19):  # the 20th page
        cursor = selectors.inbox(tenant, filters.parse({}), cursor=cursor, limit=50).next_cursor
    failed = AutomationExecution.objects.filter(tenant=tenant, status="failed").first()
    pages = {
        "inbox": "/",
        "open_inbox": "/?state=open",  # the default (issue 20): failures still needing someone
        "by_kind": "/?kind=job",
        "search": "/?q=refused",
        "groups": "/groups/",
        "deep_page": f"/?cursor={cursor}",
        "detail": f"/executions/automation/{failed.pk}/",
        "chart": "/chart/?range=7d",
        "id_search": f"/?q={str(failed.pk)[:8]}",  # an id prefix: any kind's, 6+ characters
        "chart_1h": "/chart/?range=1h",
        "chart_24h": "/chart/?range=24h",
        "chart_30d": "/chart/?range=30d",
    }
    worst = ("", 0.0)
    for name, url in pages.items():
        times, raw = measure(client, url, args.repeat)
        p50, p95 = statistics.median(times), percentile(times, 95)
        print(f"{name}_p50_ms: {p50:.1f}")
        print(f"{name}_p95_ms: {p95:.1f}")
        print(f"{name}_sql_ms: {raw:.1f}")
        if p95 > worst[1]:
            worst = (name, p95)
    started = time.perf_counter()
    gc.collect()  # what a full collection costs a request it lands on
    print(f"gc_full_collect_ms: {(time.perf_counter() - started) * 1000:.1f}")
    print(
        f"summary: {args.n} failures; slowest page {worst[0]} p95 {worst[1]:.1f} ms "
        f"(target <= 50 ms)"
    )


if __name__ == "__main__":
    main()
