"""Redrive settings: one module, every knob read from the environment with strict parsing.

A value that cannot be parsed raises ImproperlyConfigured naming the variable, at start-up, instead
of surfacing later as a confusing failure.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}"
    )


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}; got {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _without_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def env_database(name: str, default: str) -> dict:
    raw = os.environ.get(name) or default
    shown = _without_password(raw)  # error messages end up in logs: never the password
    try:
        config = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(
            f"{name} is not a valid database URL ({exc}); got {shown!r}"
        ) from None
    engine = config.get("ENGINE", "")
    if engine not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ImproperlyConfigured(f"{name} must be a postgres:// or sqlite:// URL; got {shown!r}")
    if engine.endswith("sqlite3"):
        # SQLite is the zero-setup default; persistent connections only add lock contention there.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": ("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"),
        }
        # The test database is a file, not Django's in-memory default, so that the real worker
        # processes the tests start can open it too (pytest-xdist suffixes it per process).
        stem = Path(config["NAME"]).stem if config["NAME"] not in ("", ":memory:") else "memory"
        test_name = BASE_DIR / "var" / f"test_{stem}.sqlite3"
        config["TEST"] = {"NAME": os.environ.get("REDRIVE_TEST_DB_NAME") or str(test_name)}
    else:
        config.setdefault("OPTIONS", {})
        if env_bool("DATABASE_PREPARED_STATEMENTS", True):
            # Server-side parameters, and psycopg prepares a statement the fifth time a
            # connection runs it: PostgreSQL then skips parsing and planning (an API retry's
            # database CPU went from ~2.4 to ~1.3 ms). Turn off behind a pooler in transaction
            # mode that does not carry prepared statements (PgBouncer before 1.21).
            config["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
        config["TEST"] = {"NAME": os.environ.get("REDRIVE_TEST_DB_NAME") or None}
    return config


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    if not value.startswith(tuple(f"{s}://" for s in schemes)):
        raise ImproperlyConfigured(
            f"{name} must start with {' or '.join(schemes)}://; got {value!r}"
        )
    return value


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    # Development only: a random key kept in a git-ignored file so sessions survive restarts.
    _key_file = BASE_DIR / "var" / "secret_key"
    if not _key_file.exists():
        import secrets

        _key_file.parent.mkdir(exist_ok=True)
        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "executions.apps.RedriveAdminConfig",  # django.contrib.admin, tenant-scoped
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks_db",
    "executions",
]

MIDDLEWARE = [
    "executions.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "executions.console.context.notices",
            ],
        },
    },
]

# Content-Security-Policy, enforced on every response (the console, the admin, Swagger UI): scripts
# and styles come from our own static files only; the rare inline one (the admin's) carries the
# request's nonce. No inline style attributes, no eval, no plugins, no framing, forms post here.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix"))
REDRIVE_TASKS = env_choice("REDRIVE_TASKS", "db", ("db", "rq"))

if REDRIVE_TASKS == "rq":
    INSTALLED_APPS.append("django_rq")

    class _RQQueues(dict):
        """Job queues are per target host (`host-<name>`): every queue name maps to Redis."""

        def __missing__(self, name: str) -> dict:
            return self["default"]

    RQ_QUEUES = _RQQueues(
        default={
            "URL": REDIS_URL,
            "DEFAULT_TIMEOUT": 3600,
            "QUEUE_CLASS": "executions.rq_backend.RedeliveringQueue",
        }
    )
    TASKS = {"default": {"BACKEND": "executions.rq_backend.RedriveRQBackend", "QUEUES": []}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}

# How long a worker's claim on an attempt lives without renewal; the worker renews it every third
# of this. A SIGKILLed worker's attempt is failed as "worker lost" once it expires.
REDRIVE_LEASE_SECONDS = env_int("REDRIVE_LEASE_SECONDS", 30, minimum=2)
# How long a host may have no live worker (none beat for this long) before the jobs targeted at it
# fail with "no live worker for host <name>", retryable to another host (see the reaper round).
REDRIVE_HOST_GONE_SECONDS = env_int("REDRIVE_HOST_GONE_SECONDS", 300, minimum=2)
if REDRIVE_HOST_GONE_SECONDS < REDRIVE_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"REDRIVE_HOST_GONE_SECONDS must be >= REDRIVE_LEASE_SECONDS ({REDRIVE_LEASE_SECONDS}); "
        f"got {REDRIVE_HOST_GONE_SECONDS}"
    )
# How long beyond a function's own timeout its synchronous retry waits for a worker to take and
# finish it (the queue, the claim) before answering 504 with the execution id (it goes on).
REDRIVE_SYNC_WAIT_GRACE_MS = env_int("REDRIVE_SYNC_WAIT_GRACE_MS", 2000)
# How often each worker looks for due cron functions (ms); each tick fires once however many look.
REDRIVE_CRON_CHECK_MS = env_int("REDRIVE_CRON_CHECK_MS", 1000, minimum=10)
# How often an open inbox asks whether new failures match its filter ("3 new failures — show").
REDRIVE_INBOX_POLL_SECONDS = env_int("REDRIVE_INBOX_POLL_SECONDS", 10, minimum=1)
# Seed 000's public webhook trigger: when set, callers must send it as X-Webhook-Secret.
REDRIVE_FUNCTION_WEBHOOK_SECRET = os.environ.get("REDRIVE_FUNCTION_WEBHOOK_SECRET", "")
# How many database connections one bulk retry's batches run on at once (PostgreSQL).
REDRIVE_BULK_CONNECTIONS = env_int(
    "REDRIVE_BULK_CONNECTIONS", min(4, os.cpu_count() or 1), minimum=1
)
# Largest request body (after gzip decompression) the API accepts.
REDRIVE_MAX_BODY_BYTES = env_int("REDRIVE_MAX_BODY_BYTES", 1_048_576, minimum=1024)
JWT_LIFETIME_SECONDS = env_int("JWT_LIFETIME_SECONDS", 3600, minimum=60)
DATA_UPLOAD_MAX_MEMORY_SIZE = REDRIVE_MAX_BODY_BYTES

# --- Real work: HTTP allow-list, JavaScript memory, the deployer's handlers (issue 18) ---------


def env_http_allow(name: str, default: str):
    """Host names, IP addresses or CIDR ranges, each with an optional :port, and `*` for any
    public address (see executions/work/allow.py)."""
    from executions.work.allow import AllowList

    raw = os.environ.get(name, default)
    try:
        return AllowList.parse(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}; got {raw!r}") from None


def env_modules(name: str) -> list[str]:
    modules = env_list(name, [])
    for module in modules:
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module):
            raise ImproperlyConfigured(f"{name} must list dotted module paths; got {module!r}")
    return modules


# Where HTTP work may connect; private, loopback and link-local addresses only when named here.
REDRIVE_HTTP_ALLOW = env_http_allow("REDRIVE_HTTP_ALLOW", "*")
# Webhook deliveries: each attempt's timeout, and the backoff's first retry (the others scale
# with it: 5 s, 30 s, 2 min, 10 min, 1 h, ... over about a day; tests shorten it).
REDRIVE_WEBHOOK_TIMEOUT_S = env_int("REDRIVE_WEBHOOK_TIMEOUT_S", 10, minimum=1)
REDRIVE_WEBHOOK_FIRST_RETRY_MS = env_int("REDRIVE_WEBHOOK_FIRST_RETRY_MS", 5000, minimum=10)
# Where the console is, for the links Slack and Teams messages carry.
REDRIVE_CONSOLE_URL = env_url("REDRIVE_CONSOLE_URL", "http://127.0.0.1:8000", ("http", "https"))
# Memory for a function's JavaScript unless its limits.memoryMb says otherwise.
REDRIVE_JS_MEMORY_MB = env_int("REDRIVE_JS_MEMORY_MB", 64, minimum=16)
# Modules with @handler functions, besides installed apps' redrive_handlers.py.
REDRIVE_HANDLER_MODULES = env_modules("REDRIVE_HANDLER_MODULES")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API key and JWT first: DRF answers 401 (not 403) only when the first authenticator
        # names a WWW-Authenticate scheme.
        "executions.api.auth.ApiKeyAuthentication",
        "executions.api.auth.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    # The API has one version. drf-spectacular reads /api/schema/?version= only when it is listed
    # here, and otherwise put it, CR and all, into a response header (a 500).
    "ALLOWED_VERSIONS": ["1.0.0"],
}


# --- sign-in lockout, throttles and the client's address -----------------------------------------
# X-Forwarded-For is believed only from these proxies (comma-separated addresses or CIDRs); by
# default from none, and the client is REMOTE_ADDR. Throttles, the lockout and audit rows all use
# executions.client_ip.client_ip.
def env_networks(name: str) -> list[str]:
    import ipaddress

    values = env_list(name, [])
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must be comma-separated IP addresses or CIDRs; got {value!r}"
            ) from None
    return values


REDRIVE_TRUSTED_PROXIES = env_networks("REDRIVE_TRUSTED_PROXIES")

# Throttle counters live in Django's cache: Redis (shared by every web process) when REDIS_URL is
# set or the queue is RQ; otherwise this process's memory, so each process counts on its own and
# `manage.py up` needs no Redis.
if "REDIS_URL" in os.environ or REDRIVE_TASKS == "rq":
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "redrive",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-axes: after REDRIVE_LOGIN_FAILURE_LIMIT failed sign-ins for one username (from anywhere),
# or from one address (whatever the usernames), sign-in is refused for REDRIVE_LOGIN_LOCKOUT_MINUTES
# on the console, /admin/login/ and POST /api/auth/token alike. Attempts are kept in the database
# (axes' own table), so every web process sees them, whatever the cache. Attempts made while
# locked out are not counted: the lock ends that long after the failure that set it.
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as axes asks
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("REDRIVE_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("REDRIVE_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "executions.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "executions.lockout.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins need no row each; failures are kept

SPECTACULAR_SETTINGS = {
    "TITLE": "Redrive API",
    "DESCRIPTION": "Find failed executions, understand why they failed, and retry them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files (drf-spectacular-sidecar), so /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "FunctionExecutionStatusEnum": "executions.models.FunctionExecution.Status",
        "AutomationExecutionStatusEnum": "executions.models.AutomationExecution.Status",
        "JobStatusEnum": "executions.models.Job.Status",
        "WorkflowExecutionStatusEnum": "executions.models.WorkflowExecution.Status",
        "RunStatusEnum": "executions.models.Run.Status",
        # A failure's triage state, and an error group's (executions/triage.py).
        "FailureStateEnum": ["open", "regressed", "resolved", "ignored"],
        "GroupStateEnum": ["open", "resolved", "ignored"],
    },
}

# Production hardening: on whenever DEBUG is off (check --deploy stays clean).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^health(/live)?$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "executions.middleware.RequestIdFilter"},
        "no_empty_traceback": {"()": "executions.middleware.NoEmptyTraceback"},
    },
    "formatters": {
        "json": {"()": "executions.middleware.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id", "no_empty_traceback"],
            "formatter": env_choice("LOG_FORMAT", "plain" if DEBUG else "json", ("plain", "json")),
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_tasks_db": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # a line per sign-in otherwise; lockouts are warnings
    },
}
