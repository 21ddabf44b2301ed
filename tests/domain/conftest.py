"""Fixtures for the retry domain: a tenant with an admin, an operator and a viewer, another tenant,
and a factory that makes a real failed (or finished) item of each kind by running the engine."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

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
    JobEvent,
    Membership,
    Run,
    Tenant,
    Workflow,
    WorkflowExecution,
    WorkflowTaskExecution,
)
from executions.tenancy import Actor

KINDS = ["function", "automation", "job", "workflow", "run"]


class Items:
    """Makes items in the state a test needs by running the real engine code in-process (the same
    functions the worker calls); retries are then run by a real worker."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant

    def failed(self, kind: str, handler: str = "flaky", **params) -> str:
        return getattr(self, f"_{kind}")(handler, params)

    def finished(self, kind: str) -> str:
        return getattr(self, f"_{kind}")("noop", {})

    def not_retryable(self, kind: str) -> str:
        """Succeeded, or for jobs (whose finished ones are cloned) still in flight."""
        if kind == "job":
            job = Job.objects.create(
                tenant=self.tenant,
                operation_type="backup.run",
                operation={"type": "backup.run", "data": {}},
            )
            return str(job.pk)
        return self.finished(kind)

    def _function(self, handler: str, params: dict) -> str:
        function = Function.objects.create(
            tenant=self.tenant, name=f"fn-{handler}", handler=handler, params=params
        )
        return functions_run.invoke_function(function, {"order": 42}, queued=False).pk

    def _automation(self, handler: str, params: dict) -> str:
        actions = [{"handler": "noop"}, {"handler": handler, "params": params}]
        rule = AutomationRule.objects.create(
            tenant=self.tenant, name=f"rule-{handler}", actions=actions
        )
        execution = AutomationExecution.objects.create(
            tenant=self.tenant,
            automation_rule=rule,
            trigger_data={"ticket": 7},
            actions_total=2,
            execution_context={"actions": actions},
        )
        automations_run.execute([str(execution.pk)])
        return str(execution.pk)

    def _job(self, handler: str, params: dict, op_type: str = "package.install") -> str:
        job = Job.objects.create(
            tenant=self.tenant,
            operation_type=op_type,
            operation={"type": op_type, "data": {"handler": handler, **params}},
        )
        JobEvent.objects.create(job=job, revision=1, type="created")
        jobs_run.execute(str(job.pk), "test-host")
        return str(job.pk)

    def command_job(self) -> str:
        return self._job("fail", {}, op_type="command.exec")

    def _workflow(self, handler: str, params: dict, tasks: list | None = None) -> str:
        workflow = Workflow.objects.create(
            tenant=self.tenant,
            external_id=f"wf-{handler}-{Workflow.objects.count()}",
            version="1",
            tasks=tasks
            or [
                {"externalId": "extract", "handler": "noop"},
                {
                    "externalId": "load",
                    "handler": handler,
                    "params": params,
                    "dependsOn": ["extract"],
                },
                {"externalId": "notify", "handler": "noop", "dependsOn": ["load"]},
            ],
        )
        execution = WorkflowExecution.objects.create(tenant=self.tenant, workflow=workflow)
        WorkflowTaskExecution.objects.bulk_create(
            WorkflowTaskExecution(
                execution=execution,
                task_external_id=t["externalId"],
                max_attempts=int(t.get("retries", 0)) + 1,
                is_optional=bool(t.get("isOptional")),
            )
            for t in workflow.tasks
        )
        workflows_run.execute(str(execution.pk))
        return str(execution.pk)

    def workflow(self, tasks: list) -> str:
        return self._workflow("noop", {}, tasks)

    def _run(self, handler: str, params: dict, nodes: dict | None = None) -> str:
        definition = {
            "triggerNodeIds": ["root"],
            "nodes": nodes
            or {
                "root": {"type": "trigger"},
                "fetch": {"handler": "counter", "params": {"key": "fetch"}, "dependsOn": ["root"]},
                "transform": {"handler": handler, "params": params, "dependsOn": ["fetch"]},
                "publish": {"handler": "noop", "dependsOn": ["transform"]},
            },
            "inputSchema": [{"key": "account", "type": "string", "required": True}],
            "variableDefs": [],
        }
        run = runs_run.new_run(
            self.tenant, definition, workflow_id="wf_demo", prop_values={"account": "acct-1"}
        )
        run.save(force_insert=True)
        runs_run.execute(run.pk)
        return run.pk


def make_user(username: str, tenant: Tenant, role: str) -> User:
    user = User.objects.create_user(username, password=f"{username}-pass-2026")
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def tenant(db) -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme-prod")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return Tenant.objects.create(slug="globex", name="Globex", workflows_project="globex-prod")


@pytest.fixture
def admin(tenant) -> Actor:
    return Actor.for_user(
        make_user("alice", tenant, "admin"),
        tenant,
        source="api",
        request_id="req-test-1",
        ip="127.0.0.1",
    )


@pytest.fixture
def operator(tenant) -> Actor:
    return Actor.for_user(make_user("dave", tenant, "operator"), tenant, source="console")


@pytest.fixture
def viewer(tenant) -> Actor:
    return Actor.for_user(make_user("bob", tenant, "viewer"), tenant, source="console")


@pytest.fixture
def items(tenant) -> Items:
    return Items(tenant)


MODELS = {
    "function": FunctionExecution,
    "automation": AutomationExecution,
    "job": Job,
    "workflow": WorkflowExecution,
    "run": Run,
}


def options(actor: Actor, kind: str) -> dict:
    """What a retry of `kind` needs besides the id: workflows need a fresh session nonce; a
    function's retry is queued without waiting for its result (the test runs the worker after;
    tests/test_function_sync.py covers the wait)."""
    from executions import services

    if kind == "workflow":
        return {"nonce": services.create_session(actor).nonce}
    return {"wait": False} if kind == "function" else {}
