"""Handlers only the tests register: pyproject's pytest env names this module in
REDRIVE_HANDLER_MODULES, so the workers the tests start have them too."""

from __future__ import annotations

from executions.handlers import HandlerContext, handler

from .call_counter import record


@handler("counter")
def counter(ctx: HandlerContext) -> dict:
    """Counts its calls per params.key (default: the item's key), visible across processes;
    fails after counting when params.fail is true."""
    key = str(ctx.params.get("key", ctx.key))
    record(key)
    if ctx.params.get("fail"):
        raise RuntimeError(f"counter {key} told to fail")
    return {"key": key}
