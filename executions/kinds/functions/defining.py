"""Defining functions through seed 000's API (mudbase's FunctionsApi): create, update, versions,
rollback, activate/deactivate, delete. Input arrives validated (api/serializers/functions.py);
this is where a definition's state changes. Every code change is a new version (FunctionVersion);
an execution snapshots the version it ran (models.functions.DEFINITION)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from croniter import croniter
from django.db import transaction
from django.utils import timezone

from ...errors import NotFound
from ...models import Function, FunctionVersion

if TYPE_CHECKING:
    from ...tenancy import Actor

# Mudbase's named schedules, as cron expressions.
SCHEDULES = {
    "minutely": "* * * * *",
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 0",
}
TRIGGER_TYPES = ("http", "webhook", "cron")
# Function fields the API's `limits` and `retryPolicy` set: API name -> model field.
LIMITS = {
    "timeout": "timeout_ms",
    "maxPayloadSize": "max_payload_size",
    "maxExecutionsPerMinute": "max_executions_per_minute",
    "maxExecutionsPerHour": "max_executions_per_hour",
}
RETRY_POLICY = {
    "enabled": "retry_enabled",
    "maxRetries": "retry_max",
    "backoffMs": "retry_backoff_ms",
}


def cron_expression(schedule: str) -> str:
    return SCHEDULES.get(schedule, schedule)


def valid_schedule(schedule: Any) -> bool:
    return isinstance(schedule, str) and croniter.is_valid(cron_expression(schedule))


def next_fire(trigger: dict, after: datetime) -> datetime | None:
    """A cron trigger's first tick after `after`; None for other triggers."""
    if trigger.get("type") != "cron":
        return None
    return croniter(cron_expression(trigger["schedule"]), after).get_next(datetime)


def _by(actor: Actor) -> str:
    return actor.label[:200]


def _record_version(function: Function, by: str, comment: str = "") -> None:
    """The function's current code as its version `function.version`, if not recorded yet (a
    function defined before versions were kept gets its current one so). A recorded version
    with other code means the code changed outside this API (the admin): that code becomes a
    version of its own."""
    row = function.versions.filter(version=function.version).first()
    if row is not None and row.code == function.code:
        return
    if row is not None:
        function.version = _next_version(function)
        Function.objects.filter(pk=function.pk).update(version=function.version)
    FunctionVersion.objects.create(
        function=function,
        version=function.version,
        code=function.code,
        created_by=by,
        comment=comment[:500],
    )


def create(actor: Actor, data: dict) -> Function:
    now = timezone.now()
    with transaction.atomic():
        function = Function.objects.create(
            tenant=actor.tenant,
            name=data["name"],
            description=data.get("description") or "",
            code=data["code"],
            trigger=data["trigger"],
            environment=data.get("environment") or {},
            created_by=_by(actor),
            created_at=now,
            updated_at=now,
            next_fire_at=next_fire(data["trigger"], now),
        )
        _record_version(function, _by(actor), "created")
    return function


def update(actor: Actor, function: Function, data: dict) -> Function:
    """`data`: the validated fields given (limits and retryPolicy merge into what is set)."""
    with transaction.atomic():
        function = Function.objects.select_for_update().get(pk=function.pk)
        now = timezone.now()
        for name in ("name", "description", "environment"):
            if name in data:
                setattr(function, name, data[name] if data[name] is not None else "")
        if "isActive" in data:
            function.is_active = data["isActive"]
        for group, fields in (("limits", LIMITS), ("retryPolicy", RETRY_POLICY)):
            for name, value in (data.get(group) or {}).items():
                setattr(function, fields[name], value)
        if "trigger" in data:
            function.trigger = data["trigger"]
            function.next_fire_at = next_fire(function.trigger, now)
        if "code" in data and data["code"] != function.code:
            _record_version(function, function.created_by)  # a function older than versions
            function.code = data["code"]
            function.version = _next_version(function)
            _record_version(function, _by(actor), data.get("versionComment") or "")
        function.updated_at = now
        function.save()
    return function


def _next_version(function: Function) -> int:
    latest = function.versions.order_by("-version").values_list("version", flat=True).first()
    return max(latest or 0, function.version) + 1


def rollback(actor: Actor, function: Function, version: int) -> Function:
    """The code of `version` becomes the function's code again, as a new version (so the list
    keeps what was rolled away from)."""
    with transaction.atomic():
        function = Function.objects.select_for_update().get(pk=function.pk)
        _record_version(function, function.created_by)
        old = function.versions.filter(version=version).first()
        if old is None:
            raise NotFound(f"Version {version} not found")
        function.code = old.code
        function.version = _next_version(function)
        function.updated_at = timezone.now()
        function.save(update_fields=["code", "version", "updated_at"])
        _record_version(function, _by(actor), f"rollback to version {version}")
    return function


def versions(function: Function) -> list[FunctionVersion]:
    rows = list(function.versions.order_by("-version"))
    if not any(v.version == function.version for v in rows):  # defined before versions
        rows.insert(
            0,
            FunctionVersion(
                function=function,
                version=function.version,
                code=function.code,
                created_at=function.created_at,
                created_by=function.created_by,
            ),
        )
    return rows


def set_active(function: Function, active: bool) -> Function:
    now = timezone.now()
    Function.objects.filter(pk=function.pk).update(
        is_active=active,
        updated_at=now,
        next_fire_at=next_fire(function.trigger, now) if active else function.next_fire_at,
    )
    function.refresh_from_db()
    return function


def delete(function: Function) -> None:
    """Its executions go with it (they are its log)."""
    function.delete()
