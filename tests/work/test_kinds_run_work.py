"""The kinds run real units of work (issue 18), through real worker processes: an HTTP request
that fails (status outside expectStatus), then retried end to end after the server succeeds;
JavaScript that throws, recorded with its stack; a job's `command.exec` on workers with and
without --allow-commands."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from executions import services
from executions.kinds.automations import run as automations_run
from executions.kinds.jobs import run as jobs_run
from executions.kinds.runs import run as runs_run
from executions.kinds.workflows import run as workflows_run
from executions.models import (
    AutomationExecution,
    AutomationRule,
    Job,
    Membership,
    Run,
    Tenant,
    Workflow,
    WorkflowExecution,
)
from executions.tenancy import Actor
from executions.work.command import NOT_ALLOWED

pytestmark = pytest.mark.django_db(transaction=True)

ALLOW_LOCAL = {"REDRIVE_HTTP_ALLOW": "127.0.0.1"}
THROWS = 'console.log("checking", payload.user);\nthrow new TypeError("no such user");'


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme")


@pytest.fixture
def admin(tenant) -> Actor:
    user = get_user_model().objects.create_user("alice")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    return Actor.for_user(user, tenant, source="cli")


@pytest.fixture
def server(http_server):
    return http_server()


def request_unit(server) -> dict:
    return {"url": server.url("/switch"), "method": "POST", "json": {"n": 1}, "expectStatus": [200]}


def retried(admin, kind: str, pk, run_worker) -> str:
    """Retry one item through the retry service and let a real worker run the retry."""
    new_id = services.retry_one(admin, kind, str(pk)).new_id
    run_worker(env=ALLOW_LOCAL)
    return new_id


def test_an_automation_http_action_fails_on_its_status_then_its_retry_completes(
    tenant, admin, server, run_worker
):
    rule = AutomationRule.objects.create(
        tenant=tenant, name="notify", actions=[{"handler": "echo"}, request_unit(server)]
    )
    with transaction.atomic():
        execution = automations_run.start_automation(rule, {"user": "u-1"})

    run_worker(env=ALLOW_LOCAL)

    execution.refresh_from_db()
    assert (execution.status, execution.failed_action_index) == ("failed", 1)
    assert execution.error_message.startswith(
        f"HTTP 503 Service Unavailable from POST {server.url('/switch')}"
    )
    assert execution.fingerprint
    assert server.requests[-1]["method"] == "POST"

    server.switch = 200
    new_id = retried(admin, "automation", execution.pk, run_worker)

    again = AutomationExecution.objects.get(pk=new_id)
    assert (again.status, again.actions_successful, again.error_message) == ("completed", 2, None)


def test_an_automation_javascript_action_that_throws_is_recorded_with_its_stack(tenant, run_worker):
    rule = AutomationRule.objects.create(tenant=tenant, name="check", actions=[{"code": THROWS}])
    with transaction.atomic():
        execution = automations_run.start_automation(rule, {"user": "u-7"})

    run_worker()

    execution.refresh_from_db()
    assert (execution.status, execution.error_message) == ("failed", "no such user")
    assert "TypeError: no such user" in execution.error_stack
    assert ":2" in execution.error_stack  # the line that threw
    messages = [e["message"] for e in execution.logs]
    assert "checking u-7" in messages
    assert messages[-1] == "action 0 (javascript) failed: no such user"


def graph(**nodes: dict) -> dict:
    return {"nodes": {"root": {}, **nodes}, "triggerNodeIds": ["root"]}


def test_a_run_http_node_fails_on_its_status_then_its_retry_succeeds(
    tenant, admin, server, run_worker
):
    nodes = graph(call={"type": "http", **request_unit(server), "dependsOn": ["root"]})
    with transaction.atomic():
        run = runs_run.start_run(tenant, nodes, workflow_id="wf-http")

    run_worker(env=ALLOW_LOCAL)

    run.refresh_from_db()
    assert run.status == "failure"
    assert "HTTP 503" in run.error_message
    assert "HTTP 503" in run.node_states["call"]["error"]

    server.switch = 200
    new_id = retried(admin, "run", run.pk, run_worker)

    again = Run.objects.get(pk=new_id)
    assert again.status == "success"
    assert again.execution_state["call"]["status"] == 200
    assert again.execution_state["call"]["json"] == {"switch": True}


def test_a_run_code_node_that_throws_is_recorded_with_its_stack(tenant, run_worker):
    nodes = graph(check={"type": "code", "code": THROWS, "dependsOn": ["root"]})
    with transaction.atomic():
        run = runs_run.start_run(tenant, nodes, workflow_id="wf-code")

    run_worker()

    run.refresh_from_db()
    assert (run.status, run.error_message) == ("failure", "no such user")
    assert "TypeError: no such user" in run.error_stack
    state = run.node_states["check"]
    assert state["error"] == "no such user" and "TypeError" in state["errorStack"]
    assert any(e["message"] == "checking undefined" for e in state["logs"])


def test_a_workflow_http_task_fails_on_its_status_then_its_retry_completes(
    tenant, admin, server, run_worker
):
    workflow = Workflow.objects.create(
        tenant=tenant,
        external_id="notify",
        version="1",
        tasks=[
            {"externalId": "first", "handler": "echo"},
            {"externalId": "call", "type": "http", **request_unit(server), "dependsOn": ["first"]},
        ],
    )
    with transaction.atomic():
        execution = workflows_run.start_workflow(workflow)

    run_worker(env=ALLOW_LOCAL)

    execution.refresh_from_db()
    assert execution.status == "FAILED"
    assert "HTTP 503" in execution.reason_for_incompletion
    call = execution.task_executions.get(task_external_id="call")
    assert call.status == "FAILED" and "HTTP 503" in call.error_message

    server.switch = 200
    new_id = retried(admin, "workflow", execution.pk, run_worker)

    again = WorkflowExecution.objects.get(pk=new_id)
    assert again.status == "COMPLETED"
    call = again.task_executions.get(task_external_id="call")
    assert (call.status, call.output["status"]) == ("COMPLETED", 200)


def command_job(tenant, code: int) -> Job:
    script = f"import sys; print('ran'); print('broken', file=sys.stderr); sys.exit({code})"
    operation = {"type": "command.exec", "data": {"command": "python3", "args": ["-c", script]}}
    with transaction.atomic():
        return jobs_run.create_job(tenant, operation)


def test_a_command_job_runs_on_a_worker_that_allows_commands(tenant, run_worker):
    ok, broken = command_job(tenant, 0), command_job(tenant, 3)

    run_worker(hostname="web-1", args=("--allow-commands",))

    ok.refresh_from_db()
    assert ok.status == "completed"
    assert (ok.result["exitCode"], ok.result["stdout"]) == (0, "ran\n")
    assert set(ok.result) == {"exitCode", "stdout", "stderr", "durationMs"}
    broken.refresh_from_db()
    assert broken.status == "failed"
    assert broken.error_message.startswith("exit code 3")
    assert "broken" in broken.error_message
    assert broken.events.last().data == {"error": broken.error_message}


def test_a_command_job_fails_at_once_on_a_worker_that_does_not_run_commands(tenant, run_worker):
    job = command_job(tenant, 0)

    run_worker(hostname="web-1")

    job.refresh_from_db()
    assert (job.status, job.error_message) == ("failed", NOT_ALLOWED)


def test_a_command_job_that_fails_is_retried_end_to_end_once_its_host_is_ready(
    tenant, admin, tmp_path, run_worker
):
    ready = tmp_path / "app.ready"
    operation = {
        "type": "command.exec",
        "data": {"command": "test", "args": ["-f", "app.ready"], "cwd": str(tmp_path)},
    }
    with transaction.atomic():
        job = jobs_run.create_job(tenant, operation)
    allowed = ("--allow-commands",)

    run_worker(args=allowed)

    job.refresh_from_db()
    assert (job.status, job.error_message, job.result["exitCode"]) == ("failed", "exit code 1", 1)

    ready.touch()
    new_id = services.retry_one(admin, "job", str(job.pk)).new_id
    run_worker(args=allowed)

    again = Job.objects.get(pk=new_id)
    assert (again.status, again.result["exitCode"], again.retry_of_id) == ("completed", 0, job.pk)
