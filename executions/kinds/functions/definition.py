"""Checking a function when it is saved (not when it runs): its JavaScript compiles, its
environment and limits are valid, its trigger is one Redrive fires; a function without code names
a registered handler. The one place: the admin (the model's clean()), the API's serializers and
`manage.py apply` all call these."""

from __future__ import annotations

from typing import Any

from ... import work
from ...errors import InvalidInput
from ...work import javascript, secrets
from .defining import TRIGGER_TYPES, valid_schedule

# The unit's fields (executions.work.javascript) -> the Function's own.
FIELDS = {"code": "code", "env": "environment", "limits": "timeout_ms"}
LIMIT_FIELDS = {"timeout": "timeout_ms", "memoryMb": "memory_mb"}


def validate_definition(
    *,
    code: str = "",
    environment: Any = None,
    timeout_ms: int | None = None,
    memory_mb: int | None = None,
    handler: str = "",
    params: Any = None,
) -> None:
    """InvalidInput naming the function's field (`code`, `environment.API_KEY`, `timeout_ms`,
    `memory_mb`, `handler`) that is not valid, through executions.work.validate."""
    try:
        if code:
            limits = {"timeout": timeout_ms, "memoryMb": memory_mb}
            unit = {
                "code": code,
                "env": environment or {},
                "limits": {k: v for k, v in limits.items() if v is not None},
            }
            work.validate(unit, kinds=("javascript",))
        else:
            work.validate({"handler": handler, "params": params or {}}, kinds=("handler",))
    except InvalidInput as exc:
        message = exc.message
        for unit_name, name in (("limits.timeout", "timeout_ms"), ("limits.memoryMb", "memory_mb")):
            message = message.replace(unit_name, name)
        raise InvalidInput(message, field=function_field(exc.field)) from None


def function_field(field: str) -> str:
    """`env.API_KEY` -> `environment.API_KEY`, `limits.memoryMb` -> `memory_mb`."""
    head, _, rest = field.partition(".")
    if head == "limits":
        return LIMIT_FIELDS.get(rest, "timeout_ms")
    name = FIELDS.get(head, head)
    return f"{name}.{rest}" if rest else name


def clean_code(code: str) -> str:
    """JavaScript compiled in V8 (a function's code is checked when saved), or InvalidInput."""
    return javascript.validate({"code": code}, saving=True)["code"]


def clean_environment(values: Any) -> dict[str, Any]:
    """Names to values, each a string or a secret {"value": "...", "secret": true}."""
    return secrets.validate_values(values, "environment", names=javascript.ENV_NAME_RE)


def clean_trigger(trigger: Any) -> dict:
    """Mudbase's FunctionTrigger of a type Redrive fires (http, webhook, cron with a schedule),
    without its null fields; InvalidInput naming `trigger.type` or `trigger.schedule`."""
    if not isinstance(trigger, dict):
        raise InvalidInput("trigger must be an object", field="trigger")
    trigger = {k: v for k, v in trigger.items() if v is not None}
    kind = trigger.get("type")
    if kind not in TRIGGER_TYPES:
        raise InvalidInput(
            f"trigger.type {kind!r} is not supported here (supported: {', '.join(TRIGGER_TYPES)})",
            field="trigger.type",
        )
    if kind == "cron" and not valid_schedule(trigger.get("schedule")):
        raise InvalidInput(
            "trigger.schedule must be minutely, hourly, daily, weekly or a cron expression",
            field="trigger.schedule",
        )
    return trigger
