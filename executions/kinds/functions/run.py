"""Running a function execution (seed 000) in a worker: claim (conditional UPDATE + lease) -> run
the code or handler outside any transaction -> fenced finishing UPDATE, then a wake-up for whoever
waits for it (a single retry answers with its result: wait_final). A bulk retry queues its
executions TASK_BATCH to a task: claimed in one UPDATE, their finishes written together
(execute_many). Only the demo's seeding and the tests' fixtures run one in their own process
(invoke_function(queued=False))."""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Q
from django.utils import timezone

from ... import handlers, leases, work
from ...fingerprints import fingerprint
from ...models import Function, FunctionExecution, Kind
from ...queueing import enqueue_on_commit, worker_task
from ...work import secrets
from ..base import failure, worker_lost

# Executions per worker task in a bulk retry. bench/work.py: a task (and its claim and finish
# commits) per execution cost 3-4x the JavaScript it ran.
TASK_BATCH = 250


def unclaimed_lease(timeout_ms: int) -> dict[str, Any]:
    """The lease of a new function execution that its creator runs right after the commit (not
    queued), held until execute() claims it: if the creator dies in between, the reaper
    fails it as "worker lost" once it expires. (A queued one is its task's: the task, written in
    the same transaction with the database backend, runs it however long it waits.)"""
    return {
        "lease_owner": leases.worker_name()[:64],
        "lease_expires_at": leases.lease_expiry(timeout_ms / 1000),
    }


def invoke_function(
    function: Function, payload: Any, *, invoked_by: str = "manual", queued: bool = True
) -> FunctionExecution:
    """Record a new execution of `function` and run it: in a worker (queued) or right here."""
    execution = FunctionExecution.objects.create(
        tenant_id=function.tenant_id,
        function=function,
        **function.definition(),
        payload=payload,
        invoked_by=invoked_by,
        **({} if queued else unclaimed_lease(function.timeout_ms)),
    )
    if queued:
        enqueue_on_commit(run_function_execution, execution.pk)
    else:
        execute(execution.pk)
        execution.refresh_from_db()
    return execution


def execute(execution_id: str) -> None:
    execution = FunctionExecution.objects.filter(
        pk=execution_id, status="running", lease_token=0
    ).first()
    if execution is None:
        return  # claimed already (a bulk's task, or a task run twice)
    # A function's timeout bounds the attempt; the lease covers it even without renewal. Its
    # code has no I/O, so running it again after a database crash is harmless: the claim's
    # commit need not wait for the disk (one flush less per execution, on a sync retry's path).
    token = leases.claim_one(
        FunctionExecution,
        execution_id,
        0,
        from_status="running",
        to_status="running",
        owner=leases.new_owner(),
        grace_seconds=execution.timeout_ms / 1000,
        wait_for_disk=not execution.code,
    )
    if token is None:
        return
    started = time.monotonic()
    values = run_code(execution) if execution.code else run_handler(execution)
    finished = leases.finish(
        FunctionExecution,
        execution_id,
        token,
        running_status="running",
        notify=_channel(execution_id),  # wakes a single retry's request waiting for it
        execution_time=int((time.monotonic() - started) * 1000),
        finished_at=timezone.now(),
        **values,
    )
    if finished and values["status"] != "success":
        from .retry import retry_automatically  # retry.py imports this module

        retry_automatically(execution_id)


def _channel(execution_id: str) -> str:
    return f"redrive_fn_{execution_id}"  # ids are 24 hex digits: a valid identifier


def wait_final(execution_id: str, grace_seconds: float) -> tuple[FunctionExecution | None, float]:
    """The execution once a worker has finished it (or the reaper failed it as worker lost),
    waiting at most its timeout and `grace_seconds`: (the execution or None if it is still
    running then, the seconds waited at most). Outside any transaction (it must see the
    worker's commits)."""
    started = time.monotonic()
    if connection.vendor == "postgresql":
        return _wait_notified(execution_id, started, grace_seconds)
    delay = 0.002
    while True:
        final, seconds = _look(execution_id, grace_seconds)
        if final or time.monotonic() >= started + seconds:
            return _read_if(final, execution_id), seconds
        time.sleep(min(delay, max(started + seconds - time.monotonic(), 0)))
        delay = min(delay * 1.5, 0.05)


# How often a waiting request looks at the row even without a wake-up: the reaper's "worker
# lost" sends none.
RECHECK_SECONDS = 0.1


def _wait_notified(
    execution_id: str, started: float, grace_seconds: float
) -> tuple[FunctionExecution | None, float]:
    channel = _channel(execution_id)
    with connection.cursor() as cursor:
        cursor.execute(f'LISTEN "{channel}"')
    try:
        while True:
            # Listening first, then looking: a finish committed in between is seen by the look.
            final, seconds = _look(execution_id, grace_seconds)
            remaining = started + seconds - time.monotonic()
            if final or remaining <= 0:
                return _read_if(final, execution_id), seconds
            for _ in connection.connection.notifies(
                timeout=min(remaining, RECHECK_SECONDS), stop_after=1
            ):
                pass
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'UNLISTEN "{channel}"')


def _look(execution_id: str, grace_seconds: float) -> tuple[bool, float]:
    """Whether the execution is final (or gone), and how long to wait for it: its timeout and
    the grace. Two columns: the whole row (its payload, result and logs) is read once, final."""
    row = (
        FunctionExecution.objects.filter(pk=execution_id)
        .values_list("status", "timeout_ms")
        .first()
    )
    if row is None:
        return True, 0
    status, timeout_ms = row
    return status not in FunctionExecution.IN_FLIGHT, timeout_ms / 1000 + grace_seconds


def _read_if(final: bool, execution_id: str) -> FunctionExecution | None:
    return FunctionExecution.objects.filter(pk=execution_id).first() if final else None


def execute_many(execution_ids: list[str]) -> None:
    """Run a batch of queued executions: claim the ones still unclaimed in one UPDATE, run each
    in turn, write their fenced finishes together (leases.Finisher: at most every 100 results or
    0.5 s, so a killed worker loses at most that much recorded work; the rest is reaped)."""
    claimable = FunctionExecution.objects.filter(
        pk__in=execution_ids, status="running", lease_token=0
    )
    found = claimable.aggregate(longest=Max("timeout_ms"), handlers=Count("pk", filter=Q(code="")))
    longest = found["longest"]
    if longest is None:
        return
    # As for one execution, the lease covers an attempt without renewal; the keeper renews the
    # leases of those waiting their turn.
    won = leases.claim(
        claimable,
        to_status="running",
        owner=leases.new_owner(),
        grace_seconds=longest / 1000,
        wait_for_disk=found["handlers"] > 0,  # as in execute()
    )
    if not won:
        return
    executions = FunctionExecution.objects.filter(pk__in=list(won)).order_by("executed_at", "id")
    with leases.Finisher(FunctionExecution, running_status="running") as finisher:
        for execution in executions:
            started = time.monotonic()
            values = run_code(execution) if execution.code else run_handler(execution)
            finisher.add(
                execution.pk,
                won[execution.pk],
                execution_time=int((time.monotonic() - started) * 1000),
                finished_at=timezone.now(),
                **values,
            )


def run_handler(execution: FunctionExecution) -> dict[str, Any]:
    ctx = handlers.HandlerContext(
        params=execution.params,
        payload=execution.payload,
        attempt=execution.retry_count + 1,
        key=str(execution.retry_of_id or execution.pk),
    )
    values: dict[str, Any]
    try:
        result = handlers.call(execution.handler, ctx, timeout_s=execution.timeout_ms / 1000)
        values = {
            "status": "success",
            "result": result if isinstance(result, dict) else {"value": result},
        }
    except handlers.HandlerTimeout as exc:
        values = {"status": "timeout", **failure(Kind.FUNCTION, execution.handler, exc)}
    except Exception as exc:
        values = {"status": "failed", **failure(Kind.FUNCTION, execution.handler, exc)}
    return {**values, **_logs(work.Logs.of(ctx.logs))}


def run_code(execution: FunctionExecution) -> dict[str, Any]:
    """The function's JavaScript in V8 (executions/work/javascript.py), in this worker's sandbox
    host process: the result, or the thrown error with its class and stack; and the console."""
    attempt = execution.retry_count + 1
    unit = {
        "code": execution.code,
        "env": execution.environment or {},
        "limits": {
            "timeout": execution.timeout_ms,
            **({"memoryMb": execution.memory_mb} if execution.memory_mb else {}),
        },
    }
    ctx = work.WorkContext(
        payload=execution.payload,
        context={
            "executionId": execution.pk,
            "functionId": execution.function_id,
            "functionVersion": execution.function_version,
            "attempt": attempt,
            "retryOf": execution.retry_of_id,
        },
        attempt=attempt,
        key=str(execution.retry_of_id or execution.pk),
        reuse=str(execution.tenant_id),
    )
    try:
        outcome = work.run(unit, ctx)
    except work.WorkFailed as exc:
        hidden = secrets.secret_values(unit)
        message = secrets.redact(exc.message, hidden)
        return {
            "status": "timeout" if isinstance(exc, work.WorkTimeout) else "failed",
            "error_message": message,
            "error_class": exc.error_class[:100],
            "error_stack": secrets.redact(exc.stack, hidden) or None,
            "fingerprint": fingerprint(Kind.FUNCTION, "", exc.error_class, message),
            **_logs(exc.logs),
        }
    except Exception as exc:  # invalid code or environment, saved before it was checked
        return {"status": "failed", **failure(Kind.FUNCTION, "", exc)}
    result = outcome.result
    return {
        "status": "success",
        "result": result if isinstance(result, dict) else {"value": result},
        **_logs(outcome.logs),
    }


def _logs(logs: work.Logs) -> dict[str, Any]:
    return {"logs": logs.entries, "logs_truncated": logs.truncated, "logs_bytes": logs.bytes}


@worker_task
def run_function_execution(execution_id: str) -> None:
    execute(execution_id)


@worker_task
def run_function_executions(execution_ids: list[str]) -> None:
    execute_many(execution_ids)


def reap(now) -> int:
    return leases.fail_lost(
        FunctionExecution,
        Q(lease_expires_at__lt=now, status="running"),
        status="failed",
        finished_at=now,
        **worker_lost(Kind.FUNCTION),
    )
