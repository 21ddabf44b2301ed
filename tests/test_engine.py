"""The engine runs all five kinds of work in a real worker process and records how they ended.

Work is started inside `transaction.atomic()` so that the on-commit enqueue fires, as it does in
a request; then a real `manage.py worker --batch` runs it against the test database.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from executions.kinds.automations import run as automations_run
from executions.kinds.functions import run as functions_run
from executions.kinds.jobs import run as jobs_run
from executions.kinds.runs import run as runs_run
from executions.kinds.workflows import run as workflows_run
from executions.models import (
    AutomationExecution,
    AutomationRule,
    Function,
    FunctionExecution,
    Job,
    Run,
    Tenant,
    Workflow,
    WorkflowExecution,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme")


def messages(logs: list[dict]) -> list[str]:
    return [entry["message"] for entry in logs]


def tasks_of(execution: WorkflowExecution) -> dict:
    return {t.task_external_id: t for t in execution.task_executions.all()}


# --- functions ----------------------------------------------------------------------------------


def test_a_function_runs_in_the_worker_and_succeeds(tenant, run_worker):
    function = Function.objects.create(tenant=tenant, name="echo", handler="echo")
    with transaction.atomic():
        execution = functions_run.invoke_function(function, {"order": 42}, queued=True)
    assert FunctionExecution.objects.get(pk=execution.pk).result is None  # not run in-process

    run_worker()

    execution.refresh_from_db()
    assert execution.status == "success"
    assert execution.result == {"payload": {"order": 42}, "params": {}}
    assert execution.error_message is None
    assert execution.execution_time is not None
    assert messages(execution.logs) == ["echoing payload"]
    assert execution.lease_owner == "" and execution.lease_expires_at is None


def test_a_failing_function_records_error_stack_and_logs(tenant, run_worker):
    failing = Function.objects.create(
        tenant=tenant, name="charge", handler="fail", params={"error": "validation"}
    )
    slow = Function.objects.create(
        tenant=tenant, name="slow", handler="sleep", params={"seconds": 3}, timeout_ms=300
    )
    with transaction.atomic():
        failed = functions_run.invoke_function(failing, {"amount": 7250}, queued=True)
        timed_out = functions_run.invoke_function(slow, {}, queued=True)

    run_worker()

    failed.refresh_from_db()
    assert failed.status == "failed"
    assert failed.error_message == "card declined: amount 7250 exceeds limit 5000"
    assert failed.error_stack.startswith("Traceback (most recent call last):")
    assert "in _charge" in failed.error_stack
    assert failed.error_stack.endswith(
        "ValidationFailed: card declined: amount 7250 exceeds limit 5000"
    )
    assert messages(failed.logs) == ["starting", "about to fail with validation"]
    assert failed.fingerprint
    timed_out.refresh_from_db()
    assert timed_out.status == "timeout"
    assert timed_out.error_message == "Handler 'sleep' timed out after 0.3s"


# --- automations --------------------------------------------------------------------------------


def test_automation_actions_run_in_order_and_complete(tenant, run_worker):
    rule = AutomationRule.objects.create(
        tenant=tenant,
        name="welcome",
        actions=[
            {"handler": "echo", "params": {}},
            {"handler": "send_email", "params": {"to": "new@example.com"}},
        ],
    )
    with transaction.atomic():
        execution = automations_run.start_automation(rule, {"user": "u-1"})
    assert execution.status == "pending"

    run_worker()

    execution.refresh_from_db()
    assert execution.status == "completed"
    assert (execution.actions_total, execution.actions_successful, execution.actions_failed) == (
        2,
        2,
        0,
    )
    assert execution.failed_action_index is None
    assert execution.completed_at is not None and execution.duration_ms is not None
    assert messages(execution.logs) == [
        "echoing payload",
        "action 0 (echo) succeeded",
        "queued email to new@example.com",
        "action 1 (send_email) succeeded",
    ]
    assert [e["action_index"] for e in execution.logs] == [0, 0, 1, 1]


def test_a_failing_automation_action_stops_the_execution(tenant, run_worker):
    rule = AutomationRule.objects.create(
        tenant=tenant,
        name="sync",
        actions=[
            {"handler": "noop", "params": {}},
            {"handler": "fail", "params": {"error": "upstream"}},
            {"handler": "send_email", "params": {}},
        ],
    )
    with transaction.atomic():
        execution = automations_run.start_automation(rule, {})

    run_worker()

    execution.refresh_from_db()
    assert execution.status == "failed"
    assert (execution.actions_successful, execution.actions_failed) == (1, 1)
    assert execution.failed_action_index == 1
    assert execution.error_message == "connection to 10.0.4.17:5432 refused after 3 attempts"
    assert "UpstreamError: connection to 10.0.4.17:5432 refused" in execution.error_stack
    last = execution.logs[-1]
    assert last["level"] == "error"
    assert last["action_index"] == 1
    assert last["message"] == (
        "action 1 (fail) failed: connection to 10.0.4.17:5432 refused after 3 attempts"
    )
    # The action after the failing one never ran.
    assert all(e["action_index"] < 2 for e in execution.logs)


# --- jobs ---------------------------------------------------------------------------------------


def test_a_job_runs_and_every_transition_bumps_revision_with_an_event(tenant, run_worker):
    with transaction.atomic():
        done = jobs_run.create_job(tenant, {"type": "backup.run", "data": {}})
        failed = jobs_run.create_job(
            tenant,
            {"type": "service.restart", "data": {"handler": "fail", "service": "nginx"}},
        )

    run_worker(hostname="web-1")

    done.refresh_from_db()
    assert (done.status, done.revision, done.taken_by) == ("completed", 3, "web-1")
    assert done.result == {"ok": True}
    events = list(done.events.values_list("revision", "type"))
    assert events == [(1, "created"), (2, "processing"), (3, "completed")]
    assert done.events.get(type="processing").data == {"hostname": "web-1"}

    failed.refresh_from_db()
    assert (failed.status, failed.revision) == ("failed", 3)
    assert failed.error_message == "connection to 10.0.4.17:5432 refused after 3 attempts"
    assert "Traceback (most recent call last):" in failed.error_stack
    assert messages(failed.logs) == ["starting", "about to fail with upstream"]
    events = list(failed.events.values_list("revision", "type", "data"))
    assert events[-1] == (3, "failed", {"error": failed.error_message})


def test_a_job_is_taken_only_by_a_worker_for_its_host(tenant, run_worker):
    with transaction.atomic():
        for_web1 = jobs_run.create_job(tenant, {"type": "cert.renew", "data": {}}, "web-1")
        for_any = jobs_run.create_job(tenant, {"type": "cert.renew", "data": {}})

    run_worker(hostname="web-2")

    for_web1.refresh_from_db()
    assert (for_web1.status, for_web1.revision, for_web1.taken_by) == ("unprocessed", 1, "")
    assert list(for_web1.events.values_list("type", flat=True)) == ["created"]
    for_any.refresh_from_db()
    assert (for_any.status, for_any.taken_by) == ("completed", "web-2")

    run_worker(hostname="web-1")

    for_web1.refresh_from_db()
    assert (for_web1.status, for_web1.revision, for_web1.taken_by) == ("completed", 3, "web-1")


# --- unknown handlers ---------------------------------------------------------------------------


def test_an_unknown_handler_fails_the_execution_with_a_clear_error(tenant, run_worker):
    function = Function.objects.create(tenant=tenant, name="gone", handler="nope")
    rule = AutomationRule.objects.create(
        tenant=tenant, name="gone", actions=[{"handler": "nope", "params": {}}]
    )
    workflow = Workflow.objects.create(
        tenant=tenant,
        external_id="gone",
        version="1",
        tasks=[{"externalId": "a", "handler": "nope"}],
    )
    with transaction.atomic():
        fn_exec = functions_run.invoke_function(function, {}, queued=True)
        auto_exec = automations_run.start_automation(rule, {})
        job = jobs_run.create_job(tenant, {"type": "backup.run", "data": {"handler": "nope"}})
        bad_type = jobs_run.create_job(tenant, {"type": "rm.rf", "data": {}})
        wf_exec = workflows_run.start_workflow(workflow)
        run = runs_run.start_run(
            tenant,
            {"nodes": {"root": {}, "a": {"handler": "nope", "dependsOn": ["root"]}}},
            workflow_id="wf-gone",
        )

    output = run_worker()  # exits 0: the worker itself did not crash

    assert "Traceback" not in output
    unknown = "Unknown handler 'nope'"
    assert FunctionExecution.objects.values_list("status", "error_message").get(pk=fn_exec.pk) == (
        "failed",
        unknown,
    )
    assert AutomationExecution.objects.values_list("status", "error_message").get(
        pk=auto_exec.pk
    ) == ("failed", unknown)
    assert Job.objects.values_list("status", "error_message").get(pk=job.pk) == (
        "failed",
        unknown,
    )
    assert Job.objects.values_list("status", "error_message").get(pk=bad_type.pk) == (
        "failed",
        "Unknown operation type 'rm.rf'",
    )
    wf_exec.refresh_from_db()
    assert (wf_exec.status, wf_exec.error_message) == ("FAILED", unknown)
    assert Run.objects.values_list("status", "error_message").get(pk=run.pk) == (
        "failure",
        unknown,
    )
    # Nothing was left queued: the django.tasks results all finished successfully.
    assert not DBTaskResult.objects.exclude(status="SUCCESSFUL").exists()


# --- workflows ----------------------------------------------------------------------------------


def make_workflow(tenant: Tenant, tasks: list[dict]) -> Workflow:
    return Workflow.objects.create(tenant=tenant, external_id="etl", version="1", tasks=tasks)


def test_a_workflow_honours_dependencies_optional_tasks_and_retries(tenant, run_worker):
    workflow = make_workflow(
        tenant,
        [
            {"externalId": "extract", "handler": "echo"},
            {
                "externalId": "transform",
                "handler": "flaky",
                "params": {"failures": 1},
                "dependsOn": ["extract"],
                "retries": 1,
            },
            {
                "externalId": "notify",
                "handler": "fail",
                "dependsOn": ["extract"],
                "isOptional": True,
            },
            {"externalId": "load", "handler": "echo", "dependsOn": ["transform", "notify"]},
        ],
    )
    with transaction.atomic():
        execution = workflows_run.start_workflow(workflow, {"day": "2026-11-01"})

    run_worker()

    execution.refresh_from_db()
    assert execution.status == "COMPLETED"
    assert execution.end_time is not None and execution.reason_for_incompletion is None
    tasks = tasks_of(execution)
    assert {k: (t.status, t.attempts) for k, t in tasks.items()} == {
        "extract": ("COMPLETED", 1),
        "transform": ("COMPLETED", 2),  # failed once, its own retry completed it
        "notify": ("FAILED", 1),  # optional: its failure does not fail the execution
        "load": ("COMPLETED", 1),
    }
    assert messages(tasks["transform"].logs)[-1] == "attempt 2: COMPLETED"
    assert tasks["notify"].error_message == "connection to 10.0.4.17:5432 refused after 3 attempts"
    # `load` ran after its dependencies and received their outputs.
    assert tasks["load"].started_at >= tasks["transform"].ended_at
    assert tasks["load"].output["payload"]["upstream"] == {
        "transform": {"ok": True, "attempt": 2},
        "notify": None,
    }


def test_a_task_without_retries_fails_the_workflow_and_blocks_downstream(tenant, run_worker):
    workflow = make_workflow(
        tenant,
        [
            {"externalId": "extract", "handler": "echo"},
            {
                "externalId": "transform",
                "handler": "flaky",
                "params": {"failures": 1},
                "dependsOn": ["extract"],
                "retries": 0,
            },
            {"externalId": "load", "handler": "echo", "dependsOn": ["transform"]},
        ],
    )
    with transaction.atomic():
        execution = workflows_run.start_workflow(workflow)

    run_worker()

    execution.refresh_from_db()
    assert execution.status == "FAILED"
    error = "connection reset by peer (attempt 1; succeeds after 1)"
    assert execution.reason_for_incompletion == f"Task transform FAILED: {error}"
    assert execution.error_message == error
    assert "ConnectionResetError" in execution.error_stack
    tasks = tasks_of(execution)
    assert {k: (t.status, t.attempts) for k, t in tasks.items()} == {
        "extract": ("COMPLETED", 1),
        "transform": ("FAILED", 1),
        "load": ("SCHEDULED", 0),
    }
    assert messages(tasks["transform"].logs) == [
        "attempt 1 of 2 needed; failing",
        f"attempt 1: FAILED ({error})",
    ]


def test_a_task_that_overruns_its_timeout_times_the_workflow_out(tenant, run_worker):
    workflow = make_workflow(
        tenant,
        [
            {"externalId": "wait", "handler": "sleep", "params": {"seconds": 5}, "timeout": 0.5},
            {"externalId": "after", "handler": "echo", "dependsOn": ["wait"]},
        ],
    )
    with transaction.atomic():
        execution = workflows_run.start_workflow(workflow)

    run_worker()

    execution.refresh_from_db()
    assert execution.status == "TIMED_OUT"
    assert execution.reason_for_incompletion == (
        "Task wait TIMED_OUT: Handler 'sleep' timed out after 0.5s"
    )
    tasks = tasks_of(execution)
    assert tasks["wait"].status == "TIMED_OUT"
    assert tasks["after"].status == "SCHEDULED"


def test_terminating_a_running_workflow_ends_it_terminated(tenant, worker_process, wait_until):
    workflow = make_workflow(
        tenant,
        [
            {"externalId": "wait", "handler": "sleep", "params": {"seconds": 2}},
            {"externalId": "after", "handler": "echo", "dependsOn": ["wait"]},
        ],
    )
    with transaction.atomic():
        execution = workflows_run.start_workflow(workflow)
    worker = worker_process()
    wait_until(
        lambda: execution.task_executions.filter(
            task_external_id="wait", status="IN_PROGRESS"
        ).exists(),
        message="the task to start",
    )

    assert workflows_run.terminate_workflow(str(execution.pk)) is True

    # The worker finishes its sleep; its late result must not bring the execution back.
    wait_until(
        lambda: DBTaskResult.objects.filter(status="SUCCESSFUL").exists(),
        message="the worker to finish the task",
    )
    assert worker.alive()
    execution.refresh_from_db()
    assert execution.status == "TERMINATED"
    assert execution.reason_for_incompletion == "Terminated by user"
    tasks = tasks_of(execution)
    assert (tasks["wait"].status, tasks["wait"].output) == ("CANCELED", None)
    assert (tasks["after"].status, tasks["after"].attempts) == ("SCHEDULED", 0)


# --- runs ---------------------------------------------------------------------------------------


def graph(**nodes: dict) -> dict:
    return {
        "nodes": {"root": {}, **nodes},
        "triggerNodeIds": ["root"],
        "inputSchema": [],
        "variableDefs": [],
    }


def test_runs_record_node_outputs_and_end_success_partial_or_failure(tenant, run_worker):
    props = {"wallet": "0xabc"}
    success_graph = graph(
        fetch={"handler": "echo", "dependsOn": ["root"]},
        store={"handler": "send_email", "params": {"to": "a@example.com"}, "dependsOn": ["fetch"]},
    )
    partial_graph = graph(
        fetch={"handler": "echo", "dependsOn": ["root"]},
        notify={"handler": "fail", "optional": True, "dependsOn": ["fetch"]},
        store={"handler": "noop", "dependsOn": ["fetch"]},
    )
    failure_graph = graph(
        fetch={"handler": "fail", "params": {"error": "http_502"}, "dependsOn": ["root"]},
        store={"handler": "noop", "dependsOn": ["fetch"]},
        report={"handler": "noop", "dependsOn": ["store"]},
    )
    with transaction.atomic():
        ok = runs_run.start_run(tenant, success_graph, workflow_id="wf-1", prop_values=props)
        partial = runs_run.start_run(tenant, partial_graph, workflow_id="wf-2", prop_values=props)
        failure = runs_run.start_run(tenant, failure_graph, workflow_id="wf-3", prop_values=props)
        cancelled = runs_run.start_run(tenant, success_graph, workflow_id="wf-4")
    assert runs_run.cancel_run(cancelled.pk) is True

    run_worker()

    ok.refresh_from_db()
    assert (ok.status, ok.summary) == ("success", "3 nodes succeeded")
    assert ok.execution_state == {
        "root": props,
        "fetch": {"payload": {"root": props}, "params": {}},
        "store": {"messageId": ok.execution_state["store"]["messageId"], "to": "a@example.com"},
    }
    assert {n: s["status"] for n, s in ok.node_states.items()} == dict.fromkeys(
        ("root", "fetch", "store"), "success"
    )
    assert ok.finished_at is not None and ok.progress == {"done": 3, "total": 3}

    partial.refresh_from_db()
    assert (partial.status, partial.summary) == ("partial", "Some optional nodes failed")
    assert partial.node_states["notify"]["status"] == "failure"
    assert partial.node_states["notify"]["error"] == (
        "connection to 10.0.4.17:5432 refused after 3 attempts"
    )
    assert partial.execution_state["store"] == {"ok": True}
    assert "notify" not in partial.execution_state

    failure.refresh_from_db()
    message = "HTTP 502 Bad Gateway from https://api.example.com/v2/sync"
    assert (failure.status, failure.error_message, failure.summary) == (
        "failure",
        message,
        message,
    )
    assert "RuntimeError: HTTP 502 Bad Gateway" in failure.error_stack
    assert failure.node_states["fetch"]["status"] == "failure"
    assert failure.node_states["store"] == {
        "status": "skipped",
        "reason": "upstream fetch did not succeed",
    }
    assert failure.node_states["report"] == {
        "status": "skipped",
        "reason": "upstream store did not succeed",
    }
    assert set(failure.execution_state) == {"root"}

    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.execution_state) == ("cancelled", {})
