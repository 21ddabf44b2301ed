"""How long `manage.py seed_demo --scale N` takes, on a fresh throwaway PostgreSQL database.

    uv run python bench/seed.py --n 100000

The database (default redrive_bench_seed, on the server DATABASE_URL names) is dropped, created,
migrated, seeded with `seed_demo --scale N` (timed: base seed plus N failed items of each of the
five kinds) and dropped again (--keep keeps it). Refuses to run on SQLite unless --allow-sqlite:
the target is about PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# Issue 17 retired the 10-second target along with the tricks that served it: the plain
# set-based path only has to seed 100,000 per kind in under a minute.
TARGET_S = 60.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="failed items of each kind")
    parser.add_argument("--db-name", default="redrive_bench_seed", help="throwaway database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--allow-sqlite", action="store_true", help="run on SQLite anyway")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be >= 1")
    return args


def postgres_admin(url: str, db_name: str, *, create: bool) -> None:
    """Drop `db_name` (and create it again) through the server's maintenance database."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name))
        )
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))


def main() -> int:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    sqlite_file = None
    if url.startswith(("postgres://", "postgresql://")):
        bench_url = urlunsplit(urlsplit(url)._replace(path=f"/{args.db_name}"))
        postgres_admin(url, args.db_name, create=True)
    elif args.allow_sqlite:
        sqlite_file = Path(tempfile.mkdtemp(prefix="redrive-bench-")) / "bench.sqlite3"
        bench_url = f"sqlite:///{sqlite_file}"
    else:
        print(
            "bench/seed.py measures PostgreSQL: set DATABASE_URL=postgres://... "
            "(or pass --allow-sqlite)",
            file=sys.stderr,
        )
        return 2

    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    # Settings require a SECRET_KEY when DEBUG is off; a throwaway one is fine here.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from executions.models import (
        AutomationExecution,
        FunctionExecution,
        Job,
        JobEvent,
        Run,
        WorkflowExecution,
        WorkflowTaskExecution,
    )

    try:
        call_command("migrate", verbosity=0)
        print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
        started = time.monotonic()
        call_command("seed_demo", scale=args.n)
        elapsed = time.monotonic() - started
        counts = {
            "function executions failed": FunctionExecution.objects.filter(status="failed"),
            "automation executions failed": AutomationExecution.objects.filter(status="failed"),
            "jobs failed": Job.objects.filter(status="failed"),
            "job events": JobEvent.objects.all(),
            "workflow executions FAILED": WorkflowExecution.objects.filter(status="FAILED"),
            "workflow task executions": WorkflowTaskExecution.objects.all(),
            "runs failure": Run.objects.filter(status="failure"),
        }
        for label, qs in counts.items():
            print(f"{label}: {qs.count()}")
        print(f"seed_scale_s: {elapsed:.2f}")
        print(f"rows_per_s: {args.n * 5 / elapsed:.0f}")
        verdict = "ok" if elapsed <= TARGET_S else "OVER TARGET"
        print(
            f"summary: seed_demo --scale {args.n} took {elapsed:.2f} s "
            f"(target <= {TARGET_S:g} s) {verdict}"
        )
    finally:
        connections.close_all()
        if args.keep:
            print(f"kept {bench_url}")
        elif sqlite_file is None:
            postgres_admin(url, args.db_name, create=False)
        else:
            sqlite_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
