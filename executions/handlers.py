"""The registry of named handlers: the Python callables of the deployer that units of work name
(`{"handler": "billing.charge", "params": {...}}`).

Register one with `@handler("billing.charge")` (`from executions.handlers import handler`, a
stable public import) on a function taking a HandlerContext and returning a JSON-able result or
raising. Handlers are found in every installed app's `redrive_handlers.py` (autodiscovered, like
`admin.py`) and in the modules REDRIVE_HANDLER_MODULES names; `manage.py handlers` lists them.
The demo's handlers (fail, flaky, sleep, ...) are not here: they live in
`executions/demo/handlers.py`, registered only where the demo is (seed_demo, up, the tests).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules


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
        known = _REGISTRY.get(name)
        if known is not None and location(known) != location(fn):
            raise ImproperlyConfigured(
                f"handler {name!r} is registered twice: {location(known)} and {location(fn)}"
            )
        _REGISTRY[name] = fn
        return fn

    return register


def location(fn: Handler) -> str:
    """`module:function`, as `manage.py handlers` shows it."""
    return f"{fn.__module__}:{fn.__qualname__}"


def discover() -> None:
    """Import every installed app's `redrive_handlers` module and the REDRIVE_HANDLER_MODULES
    (called once, from ExecutionsConfig.ready)."""
    autodiscover_modules("redrive_handlers")
    for path in settings.REDRIVE_HANDLER_MODULES:
        try:
            importlib.import_module(path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"REDRIVE_HANDLER_MODULES: cannot import {path!r}: {exc}"
            ) from exc


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


# --- job operation types ------------------------------------------------------------------------

COMMAND_OPERATION = "command.exec"


@dataclass(frozen=True)
class Operation:
    """A job operation type: the permission a caller needs to run (or re-run) it, and the handler
    that carries it out. A type is the built-in `command.exec` (no handler: it runs its command,
    executions.work.command, on workers started with --allow-commands) or the name of a
    registered handler."""

    permission: str
    handler: str = ""


def operation(op_type: str) -> Operation:
    if op_type == COMMAND_OPERATION:
        return Operation(permission="command:execute")
    if op_type not in _REGISTRY:
        raise HandlerNotFound(f"Unknown operation type {op_type!r}")
    return Operation(permission="jobs:write", handler=op_type)


def operation_types() -> list[str]:
    """Every operation type a job may have now: command.exec and the registered handlers."""
    return sorted({COMMAND_OPERATION, *_REGISTRY})
