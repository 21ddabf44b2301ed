"""Checking a function when it is saved (not when it runs): its JavaScript compiles, its
environment and limits are valid; a function without code names a registered handler."""

from __future__ import annotations

from typing import Any

from ... import work
from ...errors import InvalidInput

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
