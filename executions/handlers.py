"""The registry of named handlers: the Python callables that functions, automation actions, jobs,
workflow tasks and run nodes execute.

Every handler takes a HandlerContext and returns a JSON-able result or raises. The demo handlers are
deterministic and work offline: `flaky` fails its first N attempts and then succeeds, so a retry
visibly fixes it; `fail` always fails with a real stack; `sleep` is for timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.utils import timezone


class HandlerNotFound(LookupError):
    pass


class HandlerTimeout(TimeoutError):
    pass


@dataclass
class HandlerContext:
    params: dict
    payload: Any = None
    attempt: int = 1
    key: str = ""
    logs: list[dict] = field(default_factory=list)

    def log(self, level: str, message: str, **metadata: Any) -> None:
        self.logs.append(
            {
                "timestamp": timezone.now().isoformat(),
                "level": level,
                "message": message,
                "metadata": metadata,
            }
        )


Handler = Callable[[HandlerContext], Any]
_REGISTRY: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _REGISTRY[name] = fn
        return fn

    return register


def get(name: str) -> Handler:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise HandlerNotFound(f"Unknown handler {name!r}") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


def call(name: str, ctx: HandlerContext, timeout_s: float | None = None) -> Any:
    """Run a handler, in a helper thread when it has a timeout so the caller can give up on it.

    A thread cannot be killed in Python: a handler that overruns keeps its thread until it returns,
    but its result is ignored and the attempt is recorded as timed out.
    """
    fn = get(name)
    if not timeout_s:
        return fn(ctx)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn(ctx)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name=f"handler-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise HandlerTimeout(f"Handler {name!r} timed out after {timeout_s:g}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


# --- demo handlers ------------------------------------------------------------------------------


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


@handler("sleep")
def sleep(ctx: HandlerContext) -> dict:
    seconds = float(ctx.params.get("seconds", 1))
    ctx.log("info", f"sleeping {seconds}s")
    time.sleep(seconds)
    return {"slept": seconds}


@handler("counter")
def counter(ctx: HandlerContext) -> dict:
    """Counts its calls per params.key in the database (visible across processes); fails after
    counting when params.fail is true. Tests use it to prove what did and did not run again."""
    from .models import HandlerCall

    key = str(ctx.params.get("key", ctx.key))
    HandlerCall.objects.create(key=key)
    if ctx.params.get("fail"):
        raise RuntimeError(f"counter {key} told to fail")
    return {"key": key}


# --- job operation types ------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """A job operation type: the permission a caller needs to run (or re-run) it, and the handler
    that carries it out (data.handler overrides it, for demo jobs)."""

    permission: str
    handler: str


OPERATIONS: dict[str, Operation] = {
    "command.exec": Operation(permission="command:execute", handler="fail"),
    "package.install": Operation(permission="jobs:write", handler="noop"),
    "backup.run": Operation(permission="jobs:write", handler="noop"),
    "cert.renew": Operation(permission="jobs:write", handler="noop"),
    "service.restart": Operation(permission="jobs:write", handler="noop"),
}


def operation(op_type: str) -> Operation:
    try:
        return OPERATIONS[op_type]
    except KeyError:
        raise HandlerNotFound(f"Unknown operation type {op_type!r}") from None
