"""The demo's handlers: deterministic, offline, failing in realistic ways.

`flaky` fails its first N attempts and then succeeds, so a retry visibly fixes it; `fail` always
fails with a real stack; `sleep` is for timeouts. They are registered only where the demo is:
importing executions.demo registers them (seed_demo, up), and `manage.py up` and the test
settings name this module in REDRIVE_HANDLER_MODULES, so their workers have them too. A
deployment without the demo does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from executions import handlers
from executions.handlers import HandlerContext, handler


@handler("noop")
def noop(ctx: HandlerContext) -> dict:
    return {"ok": True}


@handler("echo")
def echo(ctx: HandlerContext) -> dict:
    ctx.log("info", "echoing payload")
    return {"payload": ctx.payload, "params": ctx.params}


@handler("send_email")
def send_email(ctx: HandlerContext) -> dict:
    to = ctx.params.get("to", "ops@example.com")
    ctx.log("info", f"queued email to {to}")
    return {"messageId": f"msg-{ctx.key[:8] or 'demo'}", "to": to}


class UpstreamError(ConnectionError):
    pass


class ValidationFailed(ValueError):
    pass


def _connect(host: str, port: int) -> None:
    raise UpstreamError(f"connection to {host}:{port} refused after 3 attempts")


def _charge(amount: int) -> None:
    raise ValidationFailed(f"card declined: amount {amount} exceeds limit 5000")


def _lookup(record: dict, field_name: str) -> Any:
    return record[field_name]


_FAILURES: dict[str, Callable[[HandlerContext], Any]] = {
    "upstream": lambda ctx: _connect(
        ctx.params.get("host", "10.0.4.17"), ctx.params.get("port", 5432)
    ),
    "validation": lambda ctx: _charge(int(ctx.params.get("amount", 7250))),
    "missing_field": lambda ctx: _lookup(ctx.payload or {}, ctx.params.get("field", "customer_id")),
    "http_502": lambda ctx: (_ for _ in ()).throw(
        RuntimeError(
            f"HTTP 502 Bad Gateway from {ctx.params.get('url', 'https://api.example.com/v2/sync')}"
        )
    ),
    "timeout": lambda ctx: (_ for _ in ()).throw(
        TimeoutError(f"read timed out after {ctx.params.get('seconds', 30)}s")
    ),
}


@handler("fail")
def fail(ctx: HandlerContext) -> None:
    """Always fails, with a real stack; params.error picks the kind of failure."""
    error = ctx.params.get("error", "upstream")
    ctx.log("info", "starting")
    ctx.log("error", f"about to fail with {error}")
    _FAILURES.get(error, _FAILURES["upstream"])(ctx)


@handler("flaky")
def flaky(ctx: HandlerContext) -> dict:
    """Fails the first `failures` attempts (default 1) of an item, then succeeds."""
    failures = int(ctx.params.get("failures", 1))
    if ctx.attempt <= failures:
        ctx.log("warn", f"attempt {ctx.attempt} of {failures + 1} needed; failing")
        raise ConnectionResetError(
            f"connection reset by peer (attempt {ctx.attempt}; succeeds after {failures})"
        )
    ctx.log("info", f"succeeded on attempt {ctx.attempt}")
    return {"ok": True, "attempt": ctx.attempt}


# The demo's job operation types. A demo job's data.handler says how it behaves (flaky, fail,
# ...); without one it succeeds doing nothing.
OPERATION_TYPES = ("package.install", "backup.run", "cert.renew", "service.restart")


def _operation(ctx: HandlerContext) -> Any:
    name = ctx.params.get("handler")
    return handlers.get(name)(ctx) if name else {"ok": True}


for _type in OPERATION_TYPES:
    handler(_type)(_operation)


@handler("sleep")
def sleep(ctx: HandlerContext) -> dict:
    seconds = float(ctx.params.get("seconds", 1))
    ctx.log("info", f"sleeping {seconds}s")
    time.sleep(seconds)
    return {"slept": seconds}
