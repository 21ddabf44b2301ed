"""The engine: how each kind of work really runs (in a worker, through `executions.tasks`), and how
it records success and failure. Retrying lives in `executions/kinds/`; this module only runs work.

Every run follows the same shape: claim (conditional UPDATE + lease) -> run the handler outside any
transaction -> fenced finishing UPDATE. Enqueueing happens on commit only.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend

from . import handlers, heartbeats, leases
from .fingerprints import fingerprint
from .models import (
    AutomationExecution,
    AutomationRule,
    Function,
    FunctionExecution,
    Job,
    JobEvent,
    Kind,
    Run,
    Tenant,
    Workflow,
    WorkflowExecution,
    WorkflowTaskExecution,
)

log = logging.getLogger("redrive.engine")

ANY_HOST = Job.ANY_HOST


# --- enqueueing ---------------------------------------------------------------------------------


def host_queue(hostname: str) -> str:
    """The django.tasks queue a job for `hostname` goes to (queue names are at most 32 chars)."""
    name = f"host-{hostname}"
    if len(name) > 32:
        name = "host-" + hashlib.sha1(hostname.encode(), usedforsecurity=False).hexdigest()[:27]
    return name


def enqueue_on_commit(task, *args, queue_name: str | None = None) -> None:
    """Enqueue a django.tasks task so that it exists exactly when the surrounding transaction
    commits. With the database backend the task row is written in that very transaction (it
    commits or rolls back with it, and no crash between commit and enqueue can lose it); other
    backends (Redis) enqueue from an on_commit hook."""
    target = task.using(queue_name=queue_name) if queue_name else task
    if transaction.get_connection().in_atomic_block and isinstance(
        target.get_backend(), DatabaseBackend
    ):
        target.enqueue(*args)
    else:
        transaction.on_commit(partial(target.enqueue, *args))


def _failure(kind: str, handler: str, exc: BaseException) -> dict[str, Any]:
    message = str(exc) or type(exc).__name__
    return {
        "error_message": message,
        "error_stack": leases.format_exception(exc),
        "fingerprint": fingerprint(kind, handler, type(exc).__name__, message),
    }


def _log_entry(level: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"timestamp": timezone.now().isoformat(), "level": level, "message": message, **extra}


# --- functions (seed 000) -----------------------------------------------------------------------


def unclaimed_lease(timeout_ms: int) -> dict[str, Any]:
    """The lease of a new function execution that its creator runs right after the commit (not
    queued), held until execute_function claims it: if the creator dies in between, the reaper
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
        handler=function.handler,
        params=function.params,
        function_version=function.version,
        timeout_ms=function.timeout_ms,
        payload=payload,
        invoked_by=invoked_by,
        **({} if queued else unclaimed_lease(function.timeout_ms)),
    )
    if queued:
        from .tasks import run_function_execution

        enqueue_on_commit(run_function_execution, execution.pk)
    else:
        execute_function(execution.pk)
        execution.refresh_from_db()
    return execution


def execute_function(execution_id: str) -> None:
    owner = leases.new_owner()
    qs = FunctionExecution.objects.filter(pk=execution_id, status="running", lease_token=0)
    execution = FunctionExecution.objects.filter(pk=execution_id).first()
    if execution is None:
        return
    # A function's timeout bounds the attempt; the lease covers it even without renewal.
    won = leases.claim(
        qs, to_status="running", owner=owner, grace_seconds=execution.timeout_ms / 1000
    )
    if execution_id not in won:
        return
    ctx = handlers.HandlerContext(
        params=execution.params,
        payload=execution.payload,
        attempt=execution.retry_count + 1,
        key=str(execution.retry_of_id or execution.pk),
    )
    started = time.monotonic()
    values: dict[str, Any]
    try:
        result = handlers.call(execution.handler, ctx, timeout_s=execution.timeout_ms / 1000)
        values = {
            "status": "success",
            "result": result if isinstance(result, dict) else {"value": result},
        }
    except handlers.HandlerTimeout as exc:
        values = {"status": "timeout", **_failure(Kind.FUNCTION, execution.handler, exc)}
    except Exception as exc:
        values = {"status": "failed", **_failure(Kind.FUNCTION, execution.handler, exc)}
    leases.finish(
        FunctionExecution,
        execution_id,
        won[execution_id],
        running_status="running",
        execution_time=int((time.monotonic() - started) * 1000),
        finished_at=timezone.now(),
        logs=ctx.logs,
        **values,
    )


# --- automations (seed 001) ---------------------------------------------------------------------


def start_automation(rule: AutomationRule, trigger_data: dict) -> AutomationExecution:
    execution = AutomationExecution.objects.create(
        tenant_id=rule.tenant_id,
        automation_rule=rule,
        trigger_data=trigger_data,
        actions_total=len(rule.actions),
        execution_context={"rule_version": rule.version, "actions": rule.actions},
    )
    from .tasks import run_automation_executions

    enqueue_on_commit(run_automation_executions, [str(execution.pk)])
    return execution


def run_automation_executions(execution_ids: list[str]) -> None:
    """Run a batch: claim all pending ones in one UPDATE, then run each in turn."""
    owner = leases.new_owner()
    now = timezone.now()
    won = leases.claim(
        AutomationExecution.objects.filter(pk__in=execution_ids, status="pending"),
        to_status="running",
        owner=owner,
        extra={"started_at": now, "updated_at": now},
    )
    if not won:
        return
    rows = AutomationExecution.objects.filter(pk__in=list(won)).values(
        "pk", "execution_context", "trigger_data", "attempt"
    )
    with leases.Finisher(AutomationExecution, running_status="running") as finisher:
        for row in rows:
            _run_automation(row, won[str(row["pk"])], finisher)


def _run_automation(row: dict, token: int, finisher: leases.Finisher) -> None:
    actions = row["execution_context"].get("actions", [])
    logs: list[dict] = []
    successful = 0
    started = time.monotonic()
    values: dict[str, Any] = {"status": "completed"}
    for index, action in enumerate(actions):
        name = action.get("handler", "")
        ctx = handlers.HandlerContext(
            params=action.get("params", {}),
            payload=row["trigger_data"],
            attempt=row["attempt"],
            key=f"{row['pk']}:{index}",
        )
        try:
            handlers.call(name, ctx, timeout_s=action.get("timeout"))
        except Exception as exc:
            logs += [dict(e, action_index=index) for e in ctx.logs]
            logs.append(
                _log_entry(
                    "error",
                    f"action {index} ({name}) failed: {exc}",
                    action_index=index,
                    metadata={"handler": name},
                )
            )
            values = {
                "status": "failed",
                "actions_failed": 1,
                "failed_action_index": index,
                **_failure(Kind.AUTOMATION, name, exc),
            }
            break
        logs += [dict(e, action_index=index) for e in ctx.logs]
        logs.append(
            _log_entry(
                "info",
                f"action {index} ({name}) succeeded",
                action_index=index,
                metadata={"handler": name},
            )
        )
        successful += 1
    now = timezone.now()
    finisher.add(
        row["pk"],
        token,
        actions_successful=successful,
        completed_at=now,
        updated_at=now,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
        logs=logs,
        **values,
    )


# --- jobs (seed 002) ----------------------------------------------------------------------------


def create_job(
    tenant: Tenant, operation: dict, target_hostname: str = ANY_HOST, retry_of: Job | None = None
) -> Job:
    return create_jobs(tenant, [(operation, retry_of)], target_hostname)[0]


def create_jobs(
    tenant: Tenant, specs: list[tuple[dict, Job | None]], target_hostname: str = ANY_HOST
) -> list[Job]:
    """New jobs (operation, original or None) at revision 1 with their `created` event, queued for
    `target_hostname`. Set-based: one retry and a bulk retry of jobs both come here."""
    now = timezone.now()
    target = target_hostname or ANY_HOST
    jobs = Job.objects.bulk_create(
        Job(
            tenant=tenant,
            operation=op,
            operation_type=op.get("type", ""),
            target_hostname=target,
            retry_of=original,
            created_at=now,
            updated_at=now,
        )
        for op, original in specs
    )
    JobEvent.objects.bulk_create(
        JobEvent(
            job=job,
            revision=1,
            type="created",
            timestamp=now,
            data={
                "target_hostname": target,
                **({"retry_of": str(original.pk)} if original else {}),
            },
        )
        for job, (_, original) in zip(jobs, specs, strict=True)
    )
    for job in jobs:
        enqueue_job(job)
    return jobs


def mark_jobs(events: dict, event: str, **values: Any) -> None:
    """Append `event` (data per job id) to jobs whose state does not change (e.g. `retried`):
    still a write, so their `revision` is bumped like every other transition's (with `values`,
    columns that are not their state, in the same UPDATE)."""
    now = timezone.now()
    Job.objects.filter(pk__in=list(events)).update(
        revision=F("revision") + 1, updated_at=now, **values
    )
    revisions = dict(Job.objects.filter(pk__in=list(events)).values_list("pk", "revision"))
    JobEvent.objects.bulk_create(
        JobEvent(job_id=pk, revision=revisions[pk], type=event, data=data, timestamp=now)
        for pk, data in events.items()
    )


def enqueue_job(job: Job) -> None:
    from .tasks import run_job

    enqueue_on_commit(run_job, str(job.pk), queue_name=host_queue(job.target_hostname))


def job_transition(
    job_id,
    token: int | None,
    *,
    event: str,
    event_data: dict | None = None,
    only_if: Q | None = None,
    **values,
) -> bool:
    """Every job state change: one conditional UPDATE (fenced by `token`, and `only_if`) that
    bumps `revision`, and the event only if it changed the job, in one transaction."""
    with transaction.atomic():
        qs = Job.objects.filter(pk=job_id)
        if only_if is not None:
            qs = qs.filter(only_if)
        if token is not None:
            qs = qs.filter(lease_token=token, status="processing")
            leases.keeper.release(Job, job_id)
            values = {"lease_owner": "", "lease_expires_at": None, **values}
        if not qs.update(revision=F("revision") + 1, updated_at=timezone.now(), **values):
            return False
        revision = Job.objects.filter(pk=job_id).values_list("revision", flat=True).get()
        JobEvent.objects.create(job_id=job_id, revision=revision, type=event, data=event_data or {})
    return True


def run_job(job_id: str, hostname: str) -> None:
    owner = leases.new_owner()
    with transaction.atomic():
        won = leases.claim(
            Job.objects.filter(
                pk=job_id, status="unprocessed", target_hostname__in=[hostname, ANY_HOST]
            ),
            to_status="processing",
            owner=owner,
            extra={
                "taken_by": hostname,
                "revision": F("revision") + 1,
                "updated_at": timezone.now(),
            },
        )
        if job_id not in won:
            return
        revision = Job.objects.filter(pk=job_id).values_list("revision", flat=True).get()
        JobEvent.objects.create(
            job_id=job_id, revision=revision, type="processing", data={"hostname": hostname}
        )
    job = Job.objects.get(pk=job_id)
    op_type = job.operation.get("type", "")
    data = job.operation.get("data") or {}
    name = ""
    attempt = 1 + _chain_depth(Job, job)
    ctx = handlers.HandlerContext(
        params=data, payload=data, attempt=attempt, key=str(job.retry_of_id or job.pk)
    )
    try:
        name = data.get("handler") or handlers.operation(op_type).handler
        result = handlers.call(name, ctx, timeout_s=data.get("timeout"))
        job_transition(
            job_id,
            won[job_id],
            event="completed",
            status="completed",
            result=result,
            logs=ctx.logs,
            finished_at=timezone.now(),
        )
    except Exception as exc:
        failure = _failure(Kind.JOB, name or op_type, exc)
        job_transition(
            job_id,
            won[job_id],
            event="failed",
            event_data={"error": failure["error_message"]},
            status="failed",
            logs=ctx.logs,
            finished_at=timezone.now(),
            **failure,
        )


def _chain_depth(model, obj, field: str = "retry_of_id", limit: int = 50) -> int:
    depth, parent = 0, getattr(obj, field)
    while parent is not None and depth < limit:
        depth += 1
        parent = model.objects.filter(pk=parent).values_list(field, flat=True).first()
    return depth


# --- workflows (seed 003) -----------------------------------------------------------------------


def start_workflow(
    workflow: Workflow, input_data: dict | None = None, metadata: dict | None = None
) -> WorkflowExecution:
    now = timezone.now()
    execution = WorkflowExecution.objects.create(
        tenant_id=workflow.tenant_id,
        workflow=workflow,
        input=input_data or {},
        metadata=metadata or {},
        start_time=now,
        created_time=now,
        updated_at=now,
    )
    WorkflowTaskExecution.objects.bulk_create(
        WorkflowTaskExecution(
            execution=execution,
            task_external_id=t["externalId"],
            max_attempts=int(t.get("retries", 0)) + 1,
        )
        for t in workflow.tasks
    )
    from .tasks import advance_workflow

    enqueue_on_commit(advance_workflow, str(execution.pk))
    return execution


def advance_workflow(execution_id: str) -> None:
    """Run every task whose dependencies are met, one after another, until none is left; then
    settle the execution's status. Safe to run twice at once: tasks are claimed one by one."""
    execution = WorkflowExecution.objects.select_related("workflow").filter(pk=execution_id).first()
    if execution is None or execution.status != "RUNNING":
        return
    definitions = {t["externalId"]: t for t in execution.workflow.tasks}
    while True:
        tasks = {t.task_external_id: t for t in execution.task_executions.all()}
        ready = [
            t
            for t in tasks.values()
            if t.status == "SCHEDULED" and _deps_met(definitions, tasks, t.task_external_id)
        ]
        if not ready:
            break
        for task in ready:
            _run_workflow_task(execution, definitions[task.task_external_id], task)
        if not WorkflowExecution.objects.filter(
            pk=execution_id, status="RUNNING", attempt=execution.attempt
        ).exists():
            return  # terminated (or retried) while we ran
    _settle_workflow(execution, definitions)


def _satisfied(definitions: dict, task: WorkflowTaskExecution) -> bool:
    if task.status == "COMPLETED":
        return True
    optional = definitions.get(task.task_external_id, {}).get("isOptional", False)
    return optional and task.status in (*WorkflowTaskExecution.FINAL_BAD, "SKIPPED")


def _deps_met(definitions: dict, tasks: dict, external_id: str) -> bool:
    deps = definitions.get(external_id, {}).get("dependsOn", [])
    return all(d in tasks and _satisfied(definitions, tasks[d]) for d in deps)


def _run_workflow_task(
    execution: WorkflowExecution, definition: dict, task: WorkflowTaskExecution
) -> None:
    owner = leases.new_owner()
    timeout = definition.get("timeout")
    won = leases.claim(
        WorkflowTaskExecution.objects.filter(pk=task.pk, status="SCHEDULED"),
        to_status="IN_PROGRESS",
        owner=owner,
        grace_seconds=0,
        extra={"attempts": F("attempts") + 1, "started_at": timezone.now()},
    )
    if str(task.pk) not in won:
        return
    task.refresh_from_db(fields=["attempts", "max_attempts", "logs"])
    name = definition.get("handler", "")
    upstream = {
        t.task_external_id: t.output
        for t in execution.task_executions.all()
        if t.task_external_id in definition.get("dependsOn", [])
    }
    ctx = handlers.HandlerContext(
        params=definition.get("params", {}),
        payload={"input": execution.input, "upstream": upstream},
        attempt=task.attempts,
        key=f"{execution.pk}:{task.task_external_id}",
    )
    try:
        output = handlers.call(name, ctx, timeout_s=timeout)
        values = {
            "status": "COMPLETED",
            "output": output if isinstance(output, dict) else {"value": output},
            "error_message": None,
        }
    except handlers.HandlerTimeout as exc:
        values = {"status": "TIMED_OUT", **_failure(Kind.WORKFLOW, name, exc)}
    except Exception as exc:
        values = {"status": "FAILED", **_failure(Kind.WORKFLOW, name, exc)}
    if values["status"] != "COMPLETED" and task.attempts < task.max_attempts:
        values["status"] = "SCHEDULED"  # the task's own retries: run it again in this pass
    entry = _log_entry(
        "info" if values["status"] == "COMPLETED" else "error",
        f"attempt {task.attempts}: {values['status']}"
        + (f" ({values.get('error_message')})" if values.get("error_message") else ""),
    )
    leases.finish(
        WorkflowTaskExecution,
        task.pk,
        won[str(task.pk)],
        running_status="IN_PROGRESS",
        ended_at=timezone.now(),
        logs=task.logs + ctx.logs + [entry],
        **values,
    )


def _settle_workflow(execution: WorkflowExecution, definitions: dict) -> None:
    tasks = list(execution.task_executions.all())
    if any(
        t.status in ("SCHEDULED", "IN_PROGRESS") and _deps_could_run(definitions, tasks, t)
        for t in tasks
    ):
        return  # someone else is still running a task; they will settle
    bad = [
        t
        for t in tasks
        if t.status in WorkflowTaskExecution.FINAL_BAD
        and not definitions.get(t.task_external_id, {}).get("isOptional", False)
    ]
    now = timezone.now()
    if bad:
        first = bad[0]
        status = "TIMED_OUT" if first.status == "TIMED_OUT" else "FAILED"
        values = {
            "status": status,
            "reason_for_incompletion": (
                f"Task {first.task_external_id} {first.status}: {first.error_message}"
            ),
            "error_message": first.error_message,
            "error_stack": first.error_stack,
            "fingerprint": first.fingerprint,
        }
    else:
        values = {"status": "COMPLETED", "reason_for_incompletion": None, "error_message": None}
    WorkflowExecution.objects.filter(
        pk=execution.pk, status="RUNNING", attempt=execution.attempt
    ).update(end_time=now, updated_at=now, **values)


def _deps_could_run(definitions: dict, tasks: list, task: WorkflowTaskExecution) -> bool:
    if task.status == "IN_PROGRESS":
        return True
    by_id = {t.task_external_id: t for t in tasks}
    return _deps_met(definitions, by_id, task.task_external_id)


def terminate_workflow(execution_id: str, reason: str = "Terminated by user") -> bool:
    now = timezone.now()
    with transaction.atomic():
        if not WorkflowExecution.objects.filter(pk=execution_id, status="RUNNING").update(
            status="TERMINATED",
            reason_for_incompletion=reason,
            error_message=reason,
            end_time=now,
            updated_at=now,
        ):
            return False
        WorkflowTaskExecution.objects.filter(
            execution_id=execution_id, status__in=["SCHEDULED", "IN_PROGRESS"], attempts__gt=0
        ).update(status="CANCELED", ended_at=now, lease_owner="", lease_expires_at=None)
    return True


# --- runs (seed 004) ----------------------------------------------------------------------------


def new_run(
    tenant: Tenant,
    definition: dict,
    *,
    workflow_id: str,
    workflow_version: int = 1,
    prop_values: dict | None = None,
    triggered_by: str = "",
    trigger_source: str = "manual",
    owner: str = "",
    source_run: Run | None = None,
    carried: dict | None = None,
) -> Run:
    """An unsaved run of `definition` (a snapshot). `carried` = outputs of nodes that already
    succeeded in `source_run`; they are not executed again."""
    carried = carried or {}
    return Run(
        tenant=tenant,
        workflow_id=workflow_id,
        workflow_version=workflow_version,
        workflow_definition=definition,
        prop_values=prop_values or {},
        source_run=source_run,
        triggered_by=triggered_by,
        trigger_source=trigger_source,
        workflow_owner_user_id=owner,
        trigger_node_id=(definition.get("triggerNodeIds") or [""])[0],
        execution_state=dict(carried),
        node_states={n: {"status": "success", "carriedOver": True} for n in carried},
        progress={"done": len(carried), "total": len(definition.get("nodes", {}))},
    )


def enqueue_runs(runs: list[Run]) -> None:
    from .tasks import execute_run

    for run in runs:
        enqueue_on_commit(execute_run, run.pk)


def start_run(tenant: Tenant, definition: dict, **kwargs) -> Run:
    run = new_run(tenant, definition, **kwargs)
    run.save(force_insert=True)
    enqueue_runs([run])
    return run


def _topological(nodes: dict, triggers: list[str]) -> list[str]:
    order, seen = [], set()

    def visit(node_id: str, stack: tuple = ()) -> None:
        if node_id in seen or node_id in stack or node_id not in nodes:
            return
        for dep in nodes[node_id].get("dependsOn", []):
            visit(dep, (*stack, node_id))
        seen.add(node_id)
        order.append(node_id)

    for node_id in list(triggers) + sorted(nodes):
        visit(node_id)
    return order


def execute_run(run_id: str) -> None:
    owner = leases.new_owner()
    won = leases.claim(
        Run.objects.filter(pk=run_id, status="running", lease_token=0),
        to_status="running",
        owner=owner,
    )
    if run_id not in won:
        return
    token = won[run_id]
    run = Run.objects.get(pk=run_id)
    definition = run.workflow_definition
    nodes: dict = definition.get("nodes", {})
    triggers = definition.get("triggerNodeIds") or ["root"]
    state, node_states = dict(run.execution_state), dict(run.node_states)
    attempt = 1 + _chain_depth(Run, run, "source_run_id")
    first_error: dict | None = None
    for node_id in _topological(nodes, triggers):
        node = nodes[node_id]
        if node_states.get(node_id, {}).get("status") == "success":
            continue  # carried over from the run this one retries: not executed again
        deps = node.get("dependsOn", [])
        blocked = [
            d
            for d in deps
            if node_states.get(d, {}).get("status") != "success"
            and not (
                nodes.get(d, {}).get("optional")
                and node_states.get(d, {}).get("status") == "failure"
            )
        ]
        if blocked:
            node_states[node_id] = {
                "status": "skipped",
                "reason": f"upstream {blocked[0]} did not succeed",
            }
            continue
        started = timezone.now()
        if node_id in triggers and not node.get("handler"):
            state[node_id] = run.prop_values
            node_states[node_id] = {
                "status": "success",
                "startedAt": started.isoformat(),
                "finishedAt": timezone.now().isoformat(),
            }
        else:
            name = node.get("handler", "")
            ctx = handlers.HandlerContext(
                params=node.get("params", {}),
                payload={d: state.get(d) for d in deps},
                attempt=attempt,
                key=f"{run.source_run_id or run.pk}:{node_id}",
            )
            try:
                output = handlers.call(name, ctx, timeout_s=node.get("timeout"))
                state[node_id] = output
                node_states[node_id] = {
                    "status": "success",
                    "startedAt": started.isoformat(),
                    "finishedAt": timezone.now().isoformat(),
                    "logs": ctx.logs,
                }
            except Exception as exc:
                failure = _failure(Kind.RUN, name, exc)
                node_states[node_id] = {
                    "status": "failure",
                    "error": failure["error_message"],
                    "startedAt": started.isoformat(),
                    "finishedAt": timezone.now().isoformat(),
                    "logs": ctx.logs,
                }
                if not node.get("optional") and first_error is None:
                    first_error = failure
        done = sum(
            1 for s in node_states.values() if s.get("status") in ("success", "failure", "skipped")
        )
        # Progress for the console; fenced like the finish, so a reaped run stops writing.
        if not Run.objects.filter(pk=run_id, lease_token=token, status="running").update(
            execution_state=state,
            node_states=node_states,
            progress={"done": done, "total": len(nodes)},
        ):
            return
    failed_optional = any(s.get("status") == "failure" for s in node_states.values())
    if first_error:
        values = {"status": "failure", "summary": first_error["error_message"], **first_error}
    elif failed_optional:
        values = {"status": "partial", "summary": "Some optional nodes failed"}
    else:
        values = {"status": "success", "summary": f"{len(nodes)} nodes succeeded"}
    leases.finish(
        Run,
        run_id,
        token,
        running_status="running",
        finished_at=timezone.now(),
        execution_state=state,
        node_states=node_states,
        **values,
    )


def cancel_run(run_id: str) -> bool:
    return bool(
        Run.objects.filter(pk=run_id, status__in=["running", "waiting"]).update(
            status="cancelled",
            finished_at=timezone.now(),
            summary="Cancelled by user",
            error_message="Cancelled by user",
            lease_owner="",
            lease_expires_at=None,
            lease_token=F("lease_token") + 1,
        )
    )


# --- the reaper ----------------------------------------------------------------------------------


GONE_HOST_BATCH = 500  # jobs failed per reaper round: a round stays short, the next goes on


def fail_jobs_of_gone_hosts() -> int:
    """Fail the unprocessed jobs targeted at a host that has had no live worker for
    REDRIVE_HOST_GONE_SECONDS (nor since the job was created) with "no live worker for host
    <name>": they reach the inbox, and a retry can send them to another host. Returns how many.

    Only that host's workers take such a job, so without them it would wait silently forever."""
    gone_for = settings.REDRIVE_HOST_GONE_SECONDS
    stranded = (
        Job.objects.filter(
            status=Job.Status.UNPROCESSED,
            created_at__lt=timezone.now() - timedelta(seconds=gone_for),
        )
        .exclude(target_hostname=ANY_HOST)
        .exclude(target_hostname__in=heartbeats.live_workers(within=gone_for).values("hostname"))
        .values_list("pk", "target_hostname")[:GONE_HOST_BATCH]
    )
    failed: dict[str, int] = {}
    for job_id, hostname in stranded:
        message = heartbeats.no_live_worker(hostname)
        if job_transition(
            job_id,
            None,
            only_if=Q(status=Job.Status.UNPROCESSED),
            event="failed",
            event_data={"error": message},
            status="failed",
            finished_at=timezone.now(),
            error_message=message,
            fingerprint=fingerprint(Kind.JOB, "", "HostGone", message),
        ):
            failed[hostname] = failed.get(hostname, 0) + 1
    if failed:
        log.warning("failed the jobs of hosts with no live worker for %s s: %s", gone_for, failed)
    return sum(failed.values())


def reap() -> dict[str, int]:
    """Fail every attempt whose worker stopped renewing its lease. Returns counts per kind."""
    now = timezone.now()
    lost = {
        "error_message": leases.WORKER_LOST,
        "error_stack": None,
        "lease_owner": "",
        "lease_expires_at": None,
    }
    expired = Q(lease_expires_at__lt=now)
    counts = {
        Kind.FUNCTION: FunctionExecution.objects.filter(expired, status="running").update(
            status="failed",
            finished_at=now,
            fingerprint=fingerprint(Kind.FUNCTION, "", "WorkerLost", leases.WORKER_LOST),
            **lost,
        ),
        Kind.AUTOMATION: AutomationExecution.objects.filter(expired, status="running").update(
            status="failed",
            completed_at=now,
            updated_at=now,
            fingerprint=fingerprint(Kind.AUTOMATION, "", "WorkerLost", leases.WORKER_LOST),
            **lost,
        ),
        Kind.RUN: Run.objects.filter(expired, status="running").update(
            status="failure",
            finished_at=now,
            summary=leases.WORKER_LOST,
            fingerprint=fingerprint(Kind.RUN, "", "WorkerLost", leases.WORKER_LOST),
            **lost,
        ),
    }
    job_ids = list(Job.objects.filter(expired, status="processing").values_list("pk", flat=True))
    counts[Kind.JOB] = 0
    for job_id in job_ids:
        # The job's state and lease are checked again by the UPDATE itself: a job that finished
        # since the read above, or that another reaper failed, is left alone (and gets no event).
        counts[Kind.JOB] += job_transition(
            job_id,
            None,
            only_if=Q(expired, status="processing"),
            event="failed",
            event_data={"error": leases.WORKER_LOST},
            status="failed",
            finished_at=now,
            lease_owner="",
            lease_expires_at=None,
            error_message=leases.WORKER_LOST,
            fingerprint=fingerprint(Kind.JOB, "", "WorkerLost", leases.WORKER_LOST),
        )
    task_rows = list(
        WorkflowTaskExecution.objects.filter(expired, status="IN_PROGRESS").values_list(
            "pk", "execution_id"
        )
    )
    counts[Kind.WORKFLOW] = 0
    from .tasks import advance_workflow

    for pk, execution_id in task_rows:
        with transaction.atomic():
            if WorkflowTaskExecution.objects.filter(expired, pk=pk, status="IN_PROGRESS").update(
                # Decided by the row as the UPDATE finds it, not as it was read above.
                status=Case(
                    When(attempts__lt=F("max_attempts"), then=Value("SCHEDULED")),
                    default=Value("FAILED"),
                ),
                ended_at=now,
                fingerprint=fingerprint(Kind.WORKFLOW, "", "WorkerLost", leases.WORKER_LOST),
                **lost,
            ):
                counts[Kind.WORKFLOW] += 1
                enqueue_on_commit(advance_workflow, str(execution_id))
    if any(counts.values()):
        log.warning("reaped attempts whose worker was lost: %s", counts)
    return counts
