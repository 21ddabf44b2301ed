"""The console's cast: tenants acme and globex; alice (admin of acme), dave (operator of acme), bob
(viewer of acme), carol (admin of globex), maria (operator in both); and one real failure of each
kind in acme (run through the engine in this process, so error, stack and logs are what a worker
records), plus one failure in globex that acme must never see."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model

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
    Membership,
    Role,
    Run,
    Tenant,
    Workflow,
    WorkflowExecution,
)

PASSWORD = "console-test-pw"


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    # PBKDF2 at full cost is a third of a second per login; these tests are not about hashing.
    # (PBKDF2 stays listed so the demo users' precomputed hashes still verify.)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@dataclass
class Cast:
    acme: Tenant
    globex: Tenant
    users: dict
    function: FunctionExecution
    automation: AutomationExecution
    job: Job
    command_job: Job
    workflow: WorkflowExecution
    run: Run
    foreign: AutomationExecution  # globex's

    def item(self, kind: str):
        return {
            "function": self.function,
            "automation": self.automation,
            "job": self.job,
            "workflow": self.workflow,
            "run": self.run,
        }[kind]


def make_tenant(slug: str, name: str) -> Tenant:
    return Tenant.objects.create(slug=slug, name=name, workflows_project=f"{slug}-prod")


def make_user(username: str, memberships: list[tuple[Tenant, str]]):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    for tenant, role in memberships:
        Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def failed_function(tenant: Tenant, name: str = "sync-inventory", handler: str = "flaky"):
    fn = Function.objects.create(tenant=tenant, name=name, handler=handler, params={})
    return functions_run.invoke_function(fn, {"sku": "SKU-1"}, queued=False)


def failed_automation(tenant: Tenant, name: str = "Sync CRM contact") -> AutomationExecution:
    rule = AutomationRule.objects.create(
        tenant=tenant,
        name=name,
        trigger={"type": "event", "event": "contact.updated"},
        actions=[
            {"name": "load", "handler": "echo", "params": {}},
            {"name": "push", "handler": "flaky", "params": {}},
            {"name": "notify", "handler": "send_email", "params": {"to": "crm@example.com"}},
        ],
    )
    execution = automations_run.start_automation(rule, {"contactId": "c_1"})
    automations_run.execute([str(execution.pk)])
    execution.refresh_from_db()
    return execution


def failed_job(tenant: Tenant, op_type: str = "package.install", host: str = "web-1") -> Job:
    job = jobs_run.create_job(
        tenant, {"type": op_type, "data": {"handler": "flaky", "package": "nginx"}}, host
    )
    jobs_run.execute(str(job.pk), host)
    job.refresh_from_db()
    return job


def failed_workflow(tenant: Tenant) -> WorkflowExecution:
    workflow = Workflow.objects.create(
        tenant=tenant,
        external_id="order-fulfilment",
        version="1",
        tasks=[
            {"externalId": "validate", "handler": "echo", "dependsOn": [], "retries": 0},
            {"externalId": "reserve", "handler": "flaky", "dependsOn": ["validate"], "retries": 0},
            {"externalId": "ship", "handler": "noop", "dependsOn": ["reserve"], "retries": 0},
        ],
    )
    execution = workflows_run.start_workflow(workflow, {"orderId": "ord_1"})
    workflows_run.execute(str(execution.pk))
    execution.refresh_from_db()
    return execution


def failed_run(tenant: Tenant) -> Run:
    definition = {
        "nodes": {
            "root": {"dependsOn": []},
            "fetch": {"handler": "echo", "dependsOn": ["root"]},
            "enrich": {"handler": "flaky", "dependsOn": ["fetch"]},
        },
        "triggerNodeIds": ["root"],
        "inputSchema": [],
        "variableDefs": [],
    }
    run = runs_run.start_run(tenant, definition, workflow_id="wf_lead_enrichment")
    runs_run.execute(run.pk)
    run.refresh_from_db()
    return run


def build_cast() -> Cast:
    acme = make_tenant("acme", "Acme Corporation")
    globex = make_tenant("globex", "Globex")
    users = {
        "alice": make_user("alice", [(acme, Role.ADMIN)]),
        "dave": make_user("dave", [(acme, Role.OPERATOR)]),
        "bob": make_user("bob", [(acme, Role.VIEWER)]),
        "carol": make_user("carol", [(globex, Role.ADMIN)]),
        "maria": make_user("maria", [(acme, Role.OPERATOR), (globex, Role.OPERATOR)]),
    }
    cast = Cast(
        acme=acme,
        globex=globex,
        users=users,
        function=failed_function(acme),
        automation=failed_automation(acme),
        job=failed_job(acme),
        command_job=failed_job(acme, "command.exec", "web-2"),
        workflow=failed_workflow(acme),
        run=failed_run(acme),
        foreign=failed_automation(globex, "Globex secret rule"),
    )
    for kind in ("function", "automation", "job", "workflow", "run"):
        obj = cast.item(kind)
        assert obj.status in ("failed", "FAILED", "failure"), (kind, obj.status)
    return cast


@pytest.fixture
def cast(db) -> Cast:
    return build_cast()


@pytest.fixture
def login(client):
    """`login("alice")` signs the test client in as a cast member and returns the client."""

    def sign_in(username: str):
        from django.contrib.auth import get_user_model

        client.force_login(get_user_model().objects.get(username=username))
        return client

    return sign_in
