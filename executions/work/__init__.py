"""The kinds of real work a unit can run, each with limits. Every unit of the five kinds of
executions (a function, an automation action, a job's operation, a workflow task, a run node)
runs one of them; the engine calls `run` and records what comes back.

A unit is a dict; which key it has says its kind of work:

    javascript  {"code": "...", "env": {...}, "limits": {"timeout": ms, "memoryMb": n}}
    http        {"url": "...", "method", "headers", "body" | "json", "timeout": s, "expectStatus"}
    command     {"command": "...", "args": [...], "cwd", "timeout": s, "env": {...}}
    handler     {"handler": "billing.charge", "params": {...}, "timeout": s}

(each module's docstring has the details). Other keys (an action's name, a node's type) are the
caller's and are left alone. env and header values may be secret: `{"value": "...", "secret":
true}` (see `secrets`).

    validate(unit, where="actions[2]") -> the unit, cleaned; raises InvalidInput naming the field
                                          (`actions[2].url`), for refusing a definition when saved
    run(unit, WorkContext(...))        -> Outcome(result, logs); raises WorkTimeout (record status
                                          timeout) or WorkFailed (failed), both with message,
                                          error_class, stack, logs and any partial result
"""

from __future__ import annotations

from collections.abc import Collection

from executions.errors import InvalidInput

from . import command, handlers, http, javascript, secrets
from .base import Logs, Outcome, WorkContext, WorkFailed, WorkTimeout, field_name

__all__ = [
    "KINDS",
    "Logs",
    "Outcome",
    "WorkContext",
    "WorkFailed",
    "WorkTimeout",
    "from_operation",
    "kind_of",
    "run",
    "secrets",
    "validate",
]

# kind of work -> the key that marks it, and the module that runs it
KINDS = {
    "javascript": ("code", javascript),
    "http": ("url", http),
    "command": ("command", command),
    "handler": ("handler", handlers),
}
COMMAND_OPERATION = "command.exec"


def kind_of(unit: dict, where: str = "") -> str:
    if not isinstance(unit, dict):
        raise InvalidInput("a unit of work must be an object", field=where or "unit")
    found = [kind for kind, (key, _) in KINDS.items() if key in unit]
    if len(found) != 1:
        keys = ", ".join(key for key, _ in KINDS.values())
        raise InvalidInput(f"a unit of work has exactly one of {keys}", field=where or "unit")
    return found[0]


def validate(unit: dict, *, where: str = "", kinds: Collection[str] = tuple(KINDS)) -> dict:
    """The unit, cleaned, or InvalidInput naming the field. `kinds`: the kinds of work the caller
    accepts here (a function only runs JavaScript, say)."""
    kind = kind_of(unit, where)
    if kind not in kinds:
        key = KINDS[kind][0]
        raise InvalidInput(
            f"{key} is not allowed here (allowed: {', '.join(KINDS[k][0] for k in kinds)})",
            field=field_name(where, key),
        )
    return KINDS[kind][1].validate(unit, where)


def run(unit: dict, ctx: WorkContext | None = None) -> Outcome:
    """Run one unit. A definition that is not valid (saved before a check existed, say) fails
    the unit rather than the worker."""
    ctx = ctx or WorkContext()
    try:
        kind = kind_of(unit)
        module = KINDS[kind][1]
        clean = module.validate(unit, saving=False)
    except InvalidInput as exc:
        raise WorkFailed(
            f"invalid unit of work: {exc.message}", error_class="InvalidInput"
        ) from exc
    return module.run(clean, ctx)


def from_operation(operation: dict) -> dict:
    """A job's operation as a unit: `{"type": "command.exec", "data": {...command...}}` is a
    command, any other type names a handler whose params are the data."""
    data = operation.get("data") or {}
    if operation.get("type") == COMMAND_OPERATION:
        return dict(data)
    return {"handler": operation.get("type"), "params": data}
