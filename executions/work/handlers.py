"""Handler work: a Python handler of the deployer, by name.

    {"handler": "billing.charge", "params": {"amount": 7250}, "timeout": 30}

The handler gets a HandlerContext (params, payload, attempt, key) and returns the result or
raises; see executions/handlers.py for how handlers are registered and found.
"""

from __future__ import annotations

import traceback

from executions import handlers
from executions.errors import InvalidInput

from . import base
from .base import Logs, Outcome, WorkContext, WorkFailed, WorkTimeout, effective_timeout, field_name

MAX_TIMEOUT_S = 24 * 3600


def validate(unit: dict, where: str = "", *, saving: bool = True) -> dict:
    name = unit.get("handler")
    name_field = field_name(where, "handler")
    if not isinstance(name, str) or not name:
        raise InvalidInput("handler must be the name of a registered handler", field=name_field)
    if name not in handlers.names():
        raise InvalidInput(f"unknown handler {name!r}", field=name_field)
    params = unit.get("params", {})
    if not isinstance(params, dict):
        raise InvalidInput("params must be an object", field=field_name(where, "params"))
    base.check_timeout(unit, where, maximum=MAX_TIMEOUT_S)
    return {**unit, "params": params}


def run(unit: dict, ctx: WorkContext) -> Outcome:
    name = unit["handler"]
    timeout = unit.get("timeout")
    timeout_s = effective_timeout(float(timeout), ctx) if timeout else ctx.timeout_s
    hctx = handlers.HandlerContext(
        params=unit.get("params") or {}, payload=ctx.payload, attempt=ctx.attempt, key=ctx.key
    )
    try:
        result = handlers.call(name, hctx, timeout_s=timeout_s)
    except handlers.HandlerTimeout as exc:
        raise WorkTimeout(str(exc), logs=Logs.of(hctx.logs)) from exc
    except Exception as exc:
        raise WorkFailed(
            str(exc) or type(exc).__name__,
            error_class=type(exc).__name__,
            stack="".join(traceback.format_exception(exc)).strip(),
            logs=Logs.of(hctx.logs),
        ) from exc
    return Outcome(result=result, logs=Logs.of(hctx.logs))
