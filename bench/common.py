"""Shared by the benchmark scripts: a throwaway PostgreSQL database, Django set up on it, and
set-based creation of failed automation executions."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_database(name: str) -> str:
    """Point DATABASE_URL at a fresh database `name` on the server of DATABASE_URL (PostgreSQL)."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit("benchmarks run on PostgreSQL: set DATABASE_URL=postgres://user@host:5432/db")
    import psycopg

    parsed = urlparse(base)
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(parsed._replace(path=f"/{name}"))
    os.environ["DATABASE_URL"] = url
    return url


def setup_django(migrate: bool = True) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-" + "x" * 40)  # noqa: S105
    # Production settings, minus TLS (loopback has none) and with the test client's host.
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The benchmarks' executions run the demo's no-op handler, registered only where named.
    os.environ.setdefault("REDRIVE_HANDLER_MODULES", "executions.demo.handlers")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


@contextmanager
def timed(results: dict, name: str):
    started = time.perf_counter()
    yield
    results[name] = time.perf_counter() - started


def tenant_and_admin():
    from django.contrib.auth.models import User

    from executions.models import Membership, Tenant
    from executions.tenancy import Actor

    tenant, _ = Tenant.objects.get_or_create(
        slug="bench", defaults={"name": "Bench", "workflows_project": "bench-prod"}
    )
    user, _ = User.objects.get_or_create(username="bench-admin")
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": "admin"})
    return tenant, Actor.for_user(user, tenant, source="cli")


def insert_failed_automations(tenant, n: int, handler: str = "noop") -> None:
    """n failed automation executions in one INSERT ... SELECT (as the engine leaves them)."""
    import json

    from django.db import connection

    from executions.fingerprints import fingerprint
    from executions.models import AutomationExecution, AutomationRule

    actions = [{"handler": handler}]
    rule = AutomationRule.objects.create(tenant=tenant, name="bench rule", actions=actions)
    table = AutomationExecution._meta.db_table
    message = "connection reset by peer"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (execution_id, tenant_id, automation_rule_id, trigger_data, status,
                started_at, completed_at, duration_ms, actions_total, actions_successful,
                actions_failed, failed_action_index, execution_context, logs, attempt, created_at,
                updated_at, error_message, error_stack, fingerprint, lease_owner, lease_token,
                lease_expires_at)
            SELECT gen_random_uuid(), %s, %s, '{{}}'::jsonb, 'failed',
                now() - (g || ' seconds')::interval, now(), 12.5, 1, 0, 1, 0, %s::jsonb,
                %s::jsonb, 1, now(), now() - (g || ' seconds')::interval, %s, %s, %s, '', 1, NULL
            FROM generate_series(1, %s) AS g
            """,  # noqa: S608 - table name from the model, values as parameters
            [
                tenant.pk,
                rule.pk,
                json.dumps({"actions": actions}),
                json.dumps([{"level": "error", "message": message, "action_index": 0}]),
                message,
                "Traceback (most recent call last):\n  ...\nConnectionResetError",
                fingerprint("automation", handler, "ConnectionResetError", message),
                n,
            ],
        )
    return rule
