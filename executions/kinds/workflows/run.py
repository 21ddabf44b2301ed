"""Running a workflow execution (seed 003): every task whose dependencies are met runs, one after
another, each claimed on its own (with its own retries), until none is left; then the execution
settles to COMPLETED, FAILED or TIMED_OUT. A retry schedules the failed tasks again."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from ... import leases, work
from ...models import Kind, Workflow, WorkflowExecution, WorkflowTaskExecution
from ...queueing import enqueue_on_commit, worker_task
from ..base import UnitFailed, log_entry, run_unit, worker_lost
from . import cognite as typed


def new_execution(
    workflow: Workflow,
    input_data: dict | None = None,
    metadata: dict | None = None,
    run_as: str = "",
) -> WorkflowExecution:
    """A RUNNING execution of `workflow` and its tasks, all SCHEDULED; not queued yet. `run_as`:
    the identity of the session whose nonce started it (its cdf tasks act as that user)."""
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
            is_optional=bool(t.get("isOptional")),
            max_attempts=int(t.get("retries", 0)) + 1,
            run_as=run_as,
        )
        for t in workflow.tasks
    )
    return execution


def start_workflow(
    workflow: Workflow,
    input_data: dict | None = None,
    metadata: dict | None = None,
    run_as: str = "",
) -> WorkflowExecution:
    execution = new_execution(workflow, input_data, metadata, run_as)
    enqueue_on_commit(advance_workflow, str(execution.pk))
    return execution


def execute(execution_id: str) -> None:
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
    task.refresh_from_db(fields=["attempts", "max_attempts", "logs", "run_as"])
    outputs = {t.task_external_id: t.output for t in execution.task_executions.all()}
    upstream = {k: v for k, v in outputs.items() if k in definition.get("dependsOn", [])}
    ctx = work.WorkContext(
        payload={"input": execution.input, "upstream": upstream},
        context={"executionId": str(execution.pk), "taskExternalId": task.task_external_id},
        attempt=task.attempts,
        key=f"{execution.pk}:{task.task_external_id}",
        timeout_s=timeout,
        reuse=str(execution.tenant_id),
    )
    try:
        if typed.is_typed(definition):
            scope = _scope(execution, outputs)
            output, logs = typed.run_task(
                execution.tenant_id,
                definition,
                typed.task_input(definition, scope),
                ctx,
                task.run_as,
            )
        else:
            output, logs = run_unit(Kind.WORKFLOW, _unit(definition), ctx)
        values = {
            "status": "COMPLETED",
            "output": output if isinstance(output, dict) else {"value": output},
            "error_message": None,
        }
    except UnitFailed as exc:
        logs = exc.logs
        values = {"status": "TIMED_OUT" if exc.timed_out else "FAILED", **exc.columns}
        if typed.is_typed(definition) and isinstance(exc.result, dict):
            values["output"] = exc.result
    # Cognite: a task that timed out under abortWorkflow is not retried; otherwise the task's own
    # retries run it again in this pass.
    no_retry = values["status"] == "TIMED_OUT" and definition.get("onFailure") == "abortWorkflow"
    if values["status"] != "COMPLETED" and task.attempts < task.max_attempts and not no_retry:
        values["status"] = "SCHEDULED"
    entry = log_entry(
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
        logs=task.logs + logs + [entry],
        **values,
    )


def _scope(execution: WorkflowExecution, outputs: dict) -> dict:
    """What `${...}` references in a typed task's parameters can name."""
    inputs = {t["externalId"]: t.get("parameters") for t in execution.workflow.tasks}
    scope = {k: {"output": v, "input": inputs.get(k)} for k, v in outputs.items()}
    return {**scope, "workflow": {"input": execution.input}}


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
    with transaction.atomic():  # with its events and triage: a completed retry resolves it
        if WorkflowExecution.objects.filter(
            pk=execution.pk, status="RUNNING", attempt=execution.attempt
        ).update(end_time=now, updated_at=now, **values):
            leases.became_final(WorkflowExecution, [(execution.pk, values)])


def _deps_could_run(definitions: dict, tasks: list, task: WorkflowTaskExecution) -> bool:
    if task.status == "IN_PROGRESS":
        return True
    by_id = {t.task_external_id: t for t in tasks}
    return _deps_met(definitions, by_id, task.task_external_id)


def terminate_workflow(execution_id: str, reason: str = "Terminated by user") -> bool:
    now = timezone.now()
    values = {"status": "TERMINATED", "reason_for_incompletion": reason, "error_message": reason}
    with transaction.atomic():
        if not WorkflowExecution.objects.filter(pk=execution_id, status="RUNNING").update(
            end_time=now, updated_at=now, **values
        ):
            return False
        leases.became_final(WorkflowExecution, [(execution_id, values)])
        WorkflowTaskExecution.objects.filter(
            execution_id=execution_id, status__in=["SCHEDULED", "IN_PROGRESS"], attempts__gt=0
        ).update(status="CANCELED", ended_at=now, lease_owner="", lease_expires_at=None)
    return True


# Redrive's extension task types: `handler` (handler, params) and `http` (these keys; the
# task's own `timeout` bounds either, as the context's outer limit).
HTTP_TASK_KEYS = ("url", "method", "headers", "body", "json", "expectStatus")


def _unit(definition: dict) -> dict:
    if "url" in definition:
        return {key: definition[key] for key in HTTP_TASK_KEYS if key in definition}
    return {"handler": definition.get("handler", ""), "params": definition.get("params", {})}


@worker_task
def advance_workflow(execution_id: str) -> None:
    execute(execution_id)


def reap(now) -> int:
    """A task whose worker was lost is scheduled again while it has attempts left (else it
    fails), and its execution advances."""
    expired = Q(lease_expires_at__lt=now, status="IN_PROGRESS")
    reaped = 0
    rows = WorkflowTaskExecution.objects.filter(expired).values_list("pk", "execution_id")
    for pk, execution_id in list(rows):
        with transaction.atomic():
            if WorkflowTaskExecution.objects.filter(expired, pk=pk).update(
                # Decided by the row as the UPDATE finds it, not as it was read above.
                status=Case(
                    When(attempts__lt=F("max_attempts"), then=Value("SCHEDULED")),
                    default=Value("FAILED"),
                ),
                ended_at=now,
                **worker_lost(Kind.WORKFLOW),
            ):
                reaped += 1
                enqueue_on_commit(advance_workflow, str(execution_id))
    return reaped
