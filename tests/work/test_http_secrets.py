"""Secret HTTP headers (and a command's secret env) are stored, passed to the request, and never
shown back in full: not by the API of any kind that shows a definition (an automation's actions,
a run's nodes, a workflow's tasks, a job's operation), nor the console's detail pages, nor the
admin, nor the error message and logs of the unit that sent them. The admin keeps a secret
submitted back as its mask, and its changes are audited by name, never by value."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from executions import permissions
from executions.kinds.automations import run as automations_run
from executions.kinds.jobs import run as jobs_run
from executions.kinds.runs import run as runs_run
from executions.kinds.workflows import run as workflows_run
from executions.models import (
    AuditEvent,
    AutomationExecution,
    AutomationRule,
    Membership,
    Role,
    Run,
    Tenant,
    Workflow,
    WorkflowExecution,
)
from executions.services import create_api_key
from executions.work import secrets

SECRET = "Bearer sk_live_0123456789abcdef"
MASK = secrets.mask(SECRET)
ALLOW_LOCAL = {"REDRIVE_HTTP_ALLOW": "127.0.0.1"}


def headers() -> dict:
    return {"Authorization": {"value": SECRET, "secret": True}, "X-Plain": "shown"}


def echo_unit(server, **extra) -> dict:
    """A request whose answer echoes what it sent (the secret header too), and that fails on it:
    the error message carries an excerpt of that body."""
    return {
        "url": server.url("/echo"),
        "method": "POST",
        "headers": headers(),
        "expectStatus": [201],
        **extra,
    }


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme")


@pytest.fixture
def server(http_server):
    return http_server()


@pytest.fixture
def api_key(tenant) -> str:
    _, key = create_api_key(
        tenant, name="reader", permissions=sorted(permissions.of_role(Role.ADMIN))
    )
    return key


@pytest.fixture
def console(client, tenant):
    user = get_user_model().objects.create_user("alice")
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    client.force_login(user)
    return client


@pytest.fixture
def root(client, settings):
    settings.REDRIVE_HTTP_ALLOW = "127.0.0.1"  # the definitions saved name the local server
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "x"))
    return client


def shown_masked(text: str) -> None:
    assert SECRET not in text
    assert MASK in text


def api_get(client, path: str, key: str) -> str:
    response = client.get(path, headers={"X-API-Key": key})
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_secret_headers_reach_the_server_and_never_come_back_from_a_failed_unit(
    tenant, server, run_worker, client, api_key
):
    rule = AutomationRule.objects.create(tenant=tenant, name="notify", actions=[echo_unit(server)])
    workflow = Workflow.objects.create(
        tenant=tenant,
        external_id="sync",
        version="1",
        tasks=[{"externalId": "call", "type": "http", **echo_unit(server)}],
    )
    definition = {
        "nodes": {"root": {}, "call": {"type": "http", **echo_unit(server), "dependsOn": ["root"]}},
        "triggerNodeIds": ["root"],
    }
    with transaction.atomic():
        automation = automations_run.start_automation(rule, {})
        flow = workflows_run.start_workflow(workflow)
        run = runs_run.start_run(tenant, definition, workflow_id="wf-secret")

    run_worker(env=ALLOW_LOCAL)

    # The server got the real value, three times (one per kind).
    sent = [r["headers"].get("Authorization") for r in server.requests]
    assert sent == [SECRET] * 3
    automation = AutomationExecution.objects.get(pk=automation.pk)
    flow = WorkflowExecution.objects.get(pk=flow.pk)
    run = Run.objects.get(pk=run.pk)
    # Each failed on the status, with an excerpt of the echoed body: the secret in it masked.
    for error in (automation.error_message, flow.error_message, run.error_message):
        assert error.startswith(f"HTTP 200 OK from POST {server.url('/echo')}"), error
        shown_masked(error)
    shown_masked(json.dumps(run.node_states))
    stored = json.dumps([automation.logs, automation.error_stack, flow.error_stack])
    assert SECRET not in stored

    # The API shows each with its definition, the secret masked.
    shown_masked(api_get(client, f"/api/v1/automation/executions/{automation.pk}", api_key))
    shown_masked(api_get(client, f"/api/v1/automation/rules/{rule.pk}", api_key))
    shown_masked(api_get(client, f"/v1/runs/{run.pk}", api_key))
    page = api_get(client, f"/api/v1/projects/acme/workflows/executions/{flow.pk}", api_key)
    assert SECRET not in page


@pytest.fixture
def items(tenant, server) -> dict:
    """One of each kind holding secret values in its definition, not run."""
    rule = AutomationRule.objects.create(tenant=tenant, name="notify", actions=[echo_unit(server)])
    workflow = Workflow.objects.create(
        tenant=tenant,
        external_id="sync",
        version="1",
        tasks=[{"externalId": "call", "type": "http", **echo_unit(server)}],
    )
    definition = {
        "nodes": {"root": {}, "call": {**echo_unit(server), "dependsOn": ["root"]}},
        "triggerNodeIds": ["root"],
    }
    with transaction.atomic():
        automation = automations_run.start_automation(rule, {})
        flow = workflows_run.start_workflow(workflow)
        run = runs_run.start_run(tenant, definition, workflow_id="wf-secret")
        job = jobs_run.create_job(
            tenant,
            {
                "type": "command.exec",
                "data": {"command": "true", "env": {"TOKEN": {"value": SECRET, "secret": True}}},
            },
        )
    AutomationExecution.objects.filter(pk=automation.pk).update(status="failed")
    return {
        "rule": rule,
        "workflow": workflow,
        "automation": automation,
        "flow": flow,
        "run": run,
        "job": job,
    }


@pytest.mark.django_db
def test_the_api_masks_secrets_in_every_definition_it_shows(client, api_key, items):
    shown_masked(
        api_get(client, f"/api/v1/automation/executions/{items['automation'].pk}", api_key)
    )
    shown_masked(api_get(client, "/api/v1/automation/executions", api_key))
    shown_masked(api_get(client, f"/api/v1/automation/rules/{items['rule'].pk}", api_key))
    shown_masked(api_get(client, f"/v1/runs/{items['run'].pk}", api_key))
    shown_masked(api_get(client, "/v1/runs", api_key))
    shown_masked(api_get(client, f"/job/{items['job'].pk}", api_key))
    shown_masked(api_get(client, "/job", api_key))
    flow = api_get(
        client, f"/api/v1/projects/acme/workflows/executions/{items['flow'].pk}", api_key
    )
    assert SECRET not in flow


@pytest.mark.django_db
def test_the_console_detail_pages_never_show_a_secret(console, items):
    for kind, obj in (
        ("automation", items["automation"]),
        ("job", items["job"]),
        ("run", items["run"]),
        ("workflow", items["flow"]),
    ):
        url = reverse("detail", kwargs={"kind": kind, "object_id": obj.pk})
        response = console.get(url)
        assert response.status_code == 200, kind
        assert SECRET not in response.content.decode(), kind
    # An automation's action shows its request, the secret header masked.
    url = reverse("detail", kwargs={"kind": "automation", "object_id": items["automation"].pk})
    page = console.get(url).content.decode()
    assert "Authorization" in page and MASK in page and "X-Plain" in page


@pytest.mark.django_db
def test_the_admin_pages_never_show_a_secret(root, items):
    for name, obj in (
        ("automationexecution", items["automation"]),
        ("job", items["job"]),
        ("run", items["run"]),
        ("automationrule", items["rule"]),
        ("workflow", items["workflow"]),
    ):
        response = root.get(reverse(f"admin:executions_{name}_change", args=[quote(obj.pk)]))
        assert response.status_code == 200, name
        shown_masked(response.content.decode())
    event = items["job"].events.get()
    page = root.get(reverse("admin:executions_jobevent_change", args=[event.pk]))
    assert SECRET not in page.content.decode()


def rule_form(rule: AutomationRule, actions: list) -> dict:
    return {
        "tenant": rule.tenant_id,
        "name": rule.name,
        "trigger": json.dumps({"event": "ticket.created"}),
        "actions": json.dumps(actions),
        "version": "1",
        "created_at_0": "2026-12-01",
        "created_at_1": "10:00:00",
    }


@pytest.mark.django_db
def test_the_admin_keeps_a_secret_saved_as_its_mask_and_audits_changes_by_name(root, items, server):
    rule = items["rule"]
    url = reverse("admin:executions_automationrule_change", args=[rule.pk])
    masked = secrets.masked_deep(rule.actions)
    masked[0]["headers"]["X-Plain"] = "changed"
    response = root.post(url, rule_form(rule, masked))
    assert response.status_code == 302, errors(response)
    rule.refresh_from_db()
    assert rule.actions[0]["headers"] == {
        "Authorization": {"value": SECRET, "secret": True},
        "X-Plain": "changed",
    }

    changed = secrets.masked_deep(rule.actions)
    changed[0]["headers"]["Authorization"] = {"value": "Bearer new-value-1234", "secret": True}
    assert root.post(url, rule_form(rule, changed)).status_code == 302
    rule.refresh_from_db()
    assert rule.actions[0]["headers"]["Authorization"]["value"] == "Bearer new-value-1234"

    audits = AuditEvent.objects.filter(action="rule_changed", target_id=str(rule.pk))
    details = [a.details for a in audits.order_by("id")]
    assert [d["secrets"] for d in details] == [[], ["actions[0].headers.Authorization"]]
    assert all(a.source == "admin" and a.kind == "automation" for a in audits)
    assert SECRET not in str(details) and "new-value" not in str(details)


@pytest.mark.django_db
def test_the_admin_workflow_form_masks_and_keeps_secrets(root, items):
    workflow = items["workflow"]
    url = reverse("admin:executions_workflow_change", args=[workflow.pk])
    shown_masked(root.get(url).content.decode())
    form = {
        "tenant": workflow.tenant_id,
        "external_id": "sync",
        "version": "2",
        "tasks": json.dumps(secrets.masked_deep(workflow.tasks)),
        # What the page's hidden input holds (the field's initial value: masked too).
        "initial-tasks": json.dumps(secrets.masked_deep(workflow.tasks)),
        "created_at_0": "2026-12-01",
        "created_at_1": "10:00:00",
    }
    response = root.post(url, form)
    assert response.status_code == 302, errors(response)
    workflow.refresh_from_db()
    assert workflow.version == "2"
    assert workflow.tasks[0]["headers"]["Authorization"] == {"value": SECRET, "secret": True}
    audit = AuditEvent.objects.get(action="workflow_changed", target_id=str(workflow.pk))
    assert audit.details == {"fields": ["created_at", "version"], "secrets": []}


def errors(response) -> str:
    """The admin form's errors, for a failed assertion's message."""
    form = response.context["adminform"].form if response.context else None
    return str(form.errors) if form is not None else response.content.decode()[:2000]


@pytest.mark.django_db
def test_a_mask_that_matches_no_stored_secret_is_refused_not_saved(root, items):
    rule = items["rule"]
    moved = secrets.masked_deep(rule.actions)
    moved[0]["headers"]["X-Other"] = moved[0]["headers"].pop("Authorization")
    response = root.post(
        reverse("admin:executions_automationrule_change", args=[rule.pk]), rule_form(rule, moved)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["actions"]
    assert errors == [
        "actions[0].headers.X-Other: a masked secret that moved must be entered again"
    ]
    rule.refresh_from_db()
    assert rule.actions[0]["headers"]["Authorization"]["value"] == SECRET
