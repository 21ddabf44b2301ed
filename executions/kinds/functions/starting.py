"""Starting a function (seed 000): execute (http trigger), webhook, cron. Each start is one new
execution queued for the workers (run.invoke_function); the caller gets its id at once and reads
its outcome later (get_function_execution). What a start checks: the function is active, the
payload fits `maxPayloadSize`, and `maxExecutionsPerMinute`/`PerHour` are not used up (429)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ...errors import InvalidInput, RedriveError
from ...models import Function, FunctionExecution
from .defining import next_fire
from .run import invoke_function

log = logging.getLogger("redrive.functions")


class RateLimited(RedriveError):
    """A function's own execution limit is used up."""

    status_code = 429


class Inactive(RedriveError):
    status_code = 400


def start(function: Function, payload: Any, *, invoked_by: str) -> FunctionExecution:
    """Queue one execution of `function` (in the caller's transaction, or its own)."""
    with transaction.atomic():
        if _limited(function):
            # Locked and read again, so that concurrent starts count each other against the
            # limits. Without a limit there is nothing to count: starts of one function must not
            # queue behind each other's commits (bench/README.md, start).
            function = Function.objects.select_for_update().get(pk=function.pk)
        if not function.is_active:
            raise Inactive(f"Function {function.name} is deactivated: activate it to execute it")
        size = len(json.dumps(payload, separators=(",", ":")).encode())
        if size > function.max_payload_size:
            raise InvalidInput(
                f"payload is {size} bytes, over the function's maxPayloadSize "
                f"({function.max_payload_size})",
                field="payload",
            )
        _check_rate(function)
        return invoke_function(function, payload, invoked_by=invoked_by)


def _limited(function: Function) -> bool:
    return (
        function.max_executions_per_minute is not None
        or function.max_executions_per_hour is not None
    )


def _check_rate(function: Function) -> None:
    now = timezone.now()
    for limit, window, label in (
        (function.max_executions_per_minute, timedelta(minutes=1), "maxExecutionsPerMinute"),
        (function.max_executions_per_hour, timedelta(hours=1), "maxExecutionsPerHour"),
    ):
        if limit is None:
            continue
        # Served by fnexec_log_order (function, executed_at); stops counting at the limit.
        used = FunctionExecution.objects.filter(
            function=function, executed_at__gt=now - window
        ).values("pk")[:limit]
        if len(used) >= limit:
            raise RateLimited(
                f"Rate limit exceeded: {label} is {limit} for function {function.name}"
            )


def webhook_functions(project_id: str):
    return Function.objects.filter(
        tenant__functions_project_id=project_id, trigger__type="webhook", is_active=True
    ).order_by("created_at", "pk")


def fire_webhook(functions: list[Function], body: Any) -> list[dict]:
    """One execution per active webhook function of the project; a function over its limits is
    reported in its result, not started (the others still are)."""
    results = []
    for function in functions:
        try:
            execution = start(function, body, invoked_by="trigger")
        except RedriveError as exc:
            results.append({"functionId": function.pk, "success": False, "error": exc.message})
        else:
            results.append(
                {"functionId": function.pk, "executionId": execution.pk, "status": "queued"}
            )
    return results


def fire_due_cron() -> int:
    """Fire every cron function whose tick has come, once per tick however many workers run
    this (fire_tick). Missed ticks (no worker running) are not made up: the next tick is the
    first after now."""
    now = timezone.now()
    due = Function.objects.filter(
        is_active=True, next_fire_at__lte=now, trigger__type="cron"
    ).values_list("pk", "next_fire_at")
    return sum(fire_tick(pk, tick, now) for pk, tick in due[:100])


def fire_tick(function_id: str, tick, now) -> bool:
    """Fire the tick `tick` of a cron function if this caller is the one that moves it on to the
    next tick: a conditional UPDATE, so that of the workers that saw the same tick due, only the
    first fires it (the others' UPDATEs then match nothing)."""
    with transaction.atomic():
        function = Function.objects.filter(pk=function_id).first()
        if function is None:
            return False
        moved = Function.objects.filter(pk=function_id, next_fire_at=tick, is_active=True).update(
            next_fire_at=next_fire(function.trigger, now)
        )
        if not moved:
            return False
        try:
            start(function, {}, invoked_by="cron")
        except RedriveError as exc:  # over its limits: this tick is skipped
            log.warning("cron function %s not started: %s", function_id, exc.message)
            return False
    return True
