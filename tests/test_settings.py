"""Settings are parsed strictly: a bad value stops start-up with ImproperlyConfigured naming the
variable, instead of surfacing later as a confusing failure.

Each case starts a fresh Python process with only the given environment, as a deployment would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = "import django; django.setup(); from django.conf import settings; "


def start(env: dict[str, str], code: str = "") -> subprocess.CompletedProcess:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DEBUG": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", SETUP + code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DATABASE_URL": "mysql://app:pw@db.internal/redrive"},
            "DATABASE_URL must be a postgres:// or sqlite:// URL; "
            "got 'mysql://app:***@db.internal/redrive'",  # never the password
        ),
        (
            {"DATABASE_URL": "postgres://u@h:notaport/db"},
            "DATABASE_URL is not a valid database URL",
        ),
        (
            {"REDRIVE_TASKS": "celery"},
            "REDRIVE_TASKS must be one of db, rq; got 'celery'",
        ),
        (
            {"DEBUG": "maybe"},
            "DEBUG must be one of 1/0, true/false, yes/no, on/off; got 'maybe'",
        ),
        (
            {"DEBUG": "0"},
            "SECRET_KEY is required when DEBUG is off",
        ),
        (
            {"DEBUG": "false", "SECRET_KEY": ""},
            "SECRET_KEY is required when DEBUG is off",
        ),
        (
            {"REDIS_URL": "http://x"},
            "REDIS_URL must start with redis or rediss or unix://; got 'http://x'",
        ),
        (
            {"REDRIVE_LEASE_SECONDS": "soon"},
            "REDRIVE_LEASE_SECONDS must be an integer; got 'soon'",
        ),
        (
            {"REDRIVE_LEASE_SECONDS": "1"},
            "REDRIVE_LEASE_SECONDS must be >= 2; got 1",
        ),
        (
            {"REDRIVE_HOST_GONE_SECONDS": "5m"},
            "REDRIVE_HOST_GONE_SECONDS must be an integer; got '5m'",
        ),
        (
            {"REDRIVE_HOST_GONE_SECONDS": "10"},
            "REDRIVE_HOST_GONE_SECONDS must be >= REDRIVE_LEASE_SECONDS (30); got 10",
        ),
        (
            {"REDRIVE_TRUSTED_PROXIES": "10.0.0.1, proxy.internal"},
            "REDRIVE_TRUSTED_PROXIES must be comma-separated IP addresses or CIDRs; "
            "got 'proxy.internal'",
        ),
        (
            {"REDRIVE_LOGIN_FAILURE_LIMIT": "0"},
            "REDRIVE_LOGIN_FAILURE_LIMIT must be >= 1; got 0",
        ),
        (
            {"DATABASE_URL": "postgres://u@h:5432/db", "DATABASE_PREPARED_STATEMENTS": "often"},
            "DATABASE_PREPARED_STATEMENTS must be one of 1/0, true/false, yes/no, on/off; "
            "got 'often'",
        ),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)
def test_a_bad_value_fails_naming_the_variable(env, message):
    done = start(env)

    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"django.core.exceptions.ImproperlyConfigured: {message}")


def test_a_production_environment_parses():
    done = start(
        {
            "DEBUG": "0",
            "SECRET_KEY": "a-long-random-production-key",
            "DATABASE_URL": "postgres://redrive:pw@db.internal:5432/redrive",
            "REDIS_URL": "redis://cache.internal:6379/1",
            "REDRIVE_TASKS": "rq",
            "ALLOWED_HOSTS": "redrive.example.com, www.redrive.example.com",
            "REDRIVE_LEASE_SECONDS": "45",
        },
        "from django.tasks import task_backends; from django_tasks_rq import RQBackend; "
        "db = settings.DATABASES['default']; "
        "print(settings.DEBUG, db['ENGINE'], db['HOST'], db['NAME'], settings.ALLOWED_HOSTS, "
        "isinstance(task_backends['default'], RQBackend), settings.RQ_QUEUES['host-web-1']['URL'], "
        "settings.REDRIVE_LEASE_SECONDS, settings.SECURE_SSL_REDIRECT)",
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "False",
        "django.db.backends.postgresql",
        "db.internal",
        "redrive",
        "['redrive.example.com',",
        "'www.redrive.example.com']",
        "True",  # the RQ backend
        "redis://cache.internal:6379/1",
        "45",
        "True",
    ]


def test_the_default_is_a_sqlite_file_in_the_project_and_the_db_backend():
    done = start(
        {},
        "from django.tasks import task_backends; from django_tasks_db import DatabaseBackend; "
        "print(settings.DATABASES['default']['NAME'], "
        "isinstance(task_backends['default'], DatabaseBackend))",
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(ROOT / "db.sqlite3"), "True"]


@pytest.mark.parametrize(("value", "expected"), [(None, "True 5"), ("0", "None None")])
def test_postgresql_prepares_statements_unless_turned_off(value, expected):
    env = {"DATABASE_URL": "postgres://u@h:5432/db"}
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    done = start(
        env,
        "o = settings.DATABASES['default']['OPTIONS']; "
        "print(o.get('server_side_binding'), o.get('prepare_threshold'))",
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


@pytest.mark.pg_only
@pytest.mark.django_db
def test_a_statement_run_often_is_prepared_once_on_the_connection():
    """What the setting buys: PostgreSQL parses and plans a frequent statement once per
    connection (an API retry's key lookup and retry statement), and it still answers right."""
    from django.db import connection

    from executions.models import Tenant

    def prepared() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return {statement for (statement,) in cursor.fetchall()}

    tenant = Tenant.objects.create(slug="prepared", name="Prepared")
    before = prepared()
    for _ in range(6):
        assert Tenant.objects.filter(slug="prepared").get().pk == tenant.pk
    assert Tenant.objects.filter(slug="missing").first() is None
    new = prepared() - before
    assert any('FROM "executions_tenant"' in statement and "$1" in statement for statement in new)


def test_the_wsgi_entry_point_loads_the_views_and_freezes_what_it_loaded():
    """gunicorn's workers import project.wsgi: by the first request the views are imported and the
    objects loaded so far sit in the permanent generation, so a full collection does not walk them
    (bench/README.md: 45-55 ms pauses without this, 3-4 ms with it)."""
    done = start(
        {"DEBUG": "0", "SECRET_KEY": "a-long-random-production-key"},
        "import gc, sys; before = gc.get_freeze_count(); "
        "loaded = 'executions.console.views' in sys.modules; "
        "import project.wsgi; "
        "print(before, loaded, 'executions.console.views' in sys.modules, gc.get_freeze_count())",
    )

    assert done.returncode == 0, done.stderr
    before, loaded, now_loaded, frozen = done.stdout.split()
    assert (loaded, now_loaded) == ("False", "True")
    assert int(frozen) - int(before) > 50_000  # Django, the models and the views


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "django.core.cache.backends.locmem.LocMemCache None"),
        (
            {"REDIS_URL": "redis://cache.internal:6379/3"},
            "django.core.cache.backends.redis.RedisCache redis://cache.internal:6379/3",
        ),
        (
            {"REDRIVE_TASKS": "rq"},
            "django.core.cache.backends.redis.RedisCache redis://127.0.0.1:6379/0",
        ),
    ],
    ids=["default", "redis-url", "rq"],
)
def test_the_cache_is_redis_only_when_redis_is_configured(env, expected):
    """Throttle counters are shared by every web process through Redis when there is one;
    `manage.py up` on a machine without Redis keeps them in each process's memory."""
    done = start(
        env,
        "c = settings.CACHES['default']; print(c['BACKEND'], c.get('LOCATION'))",
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_trusted_proxies_are_parsed():
    done = start(
        {"REDRIVE_TRUSTED_PROXIES": " 10.0.0.0/8 , 192.0.2.1,,::1 "},
        "print(settings.REDRIVE_TRUSTED_PROXIES)",
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['10.0.0.0/8', '192.0.2.1', '::1']"
