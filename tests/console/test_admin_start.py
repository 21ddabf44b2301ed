"""Starting work from the Django admin: each definition's page has a "Start…" button whose form
takes the input as JSON and calls the service the API calls (a function executed, a job started,
an event fired for a rule, a saved 004 workflow run, a 003 workflow run), as the signed-in tenant
admin, in the definition's tenant only, audited; bad input is refused naming it, starting
nothing. A function's code edited in the admin is a new version, as the API's PUT makes one."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from executions.kinds.functions import run as functions_run
from executions.models import (
    AuditEvent,
    AutomationExecution,
    Function,
    FunctionExecution,
    Job,
    Run,
    SavedWorkflow,
    WorkflowExecution,
)
from executions.work import secrets

pytestmark = pytest.mark.django_db

CODE = "if (payload.fail) throw new Error('boom ' + payload.n); return {ok: payload.n};"
SECRET = "Bearer sk_live_0123456789abcdef"


@pytest.fixture
def staff(client, cast):
    """alice, admin of acme, signed in to the admin as staff (not a superuser)."""
    user = get_user_model().objects.get(username="alice")
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


def start_url(obj) -> str:
    return reverse(f"admin:executions_{obj._meta.model_name}_start", args=[obj.pk])


def start(client, obj, data, **extra):
    return client.post(start_url(obj), {"input": json.dumps(data), **extra})


def form_errors(response) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.context["form"].errors)


def started_audit(kind: str, target_id) -> AuditEvent:
    return AuditEvent.objects.get(action="start", kind=kind, target_id=str(target_id))


@pytest.fixture
def function(cast) -> Function:
    return Function.objects.create(tenant=cast.acme, name="charge", code=CODE)


@pytest.mark.django_db(transaction=True)
def test_a_tenant_admin_executes_a_function_from_the_admin_and_a_worker_runs_it(
    staff, function, run_worker
):
    change = staff.get(reverse("admin:executions_function_change", args=[function.pk]))
    assert start_url(function) in change.content.decode()  # the button
    page = staff.get(start_url(function))
    assert page.status_code == 200 and "Payload" in page.content.decode()

    response = start(staff, function, {"fail": True, "n": 7})

    assert response.status_code == 302
    execution = FunctionExecution.objects.get(function=function)
    assert execution.payload == {"fail": True, "n": 7} and execution.invoked_by == "manual"
    audit = started_audit("function", execution.pk)
    assert (audit.source, audit.actor) == ("admin", "user:alice")
    assert audit.tenant_id == function.tenant_id
    run_worker()
    execution.refresh_from_db()
    assert execution.status == "failed" and execution.error_message == "boom 7"


@pytest.mark.parametrize(
    ("text", "error"),
    [("[1, 2]", "must be a JSON object"), ("{", "not JSON"), ('"x"', "must be a JSON object")],
)
def test_input_that_is_not_a_json_object_is_refused_and_starts_nothing(
    staff, function, text, error
):
    response = staff.post(start_url(function), {"input": text})
    assert error in form_errors(response)
    assert not FunctionExecution.objects.filter(function=function).exists()


def test_a_deactivated_function_is_refused_as_the_api_refuses_it(staff, function):
    Function.objects.filter(pk=function.pk).update(is_active=False)
    assert "deactivated" in form_errors(start(staff, function, {}))
    assert not FunctionExecution.objects.filter(function=function).exists()


def test_another_tenants_definition_cannot_be_started(staff, cast):
    foreign = Function.objects.create(tenant=cast.globex, name="theirs", code="return 1")
    assert staff.get(start_url(foreign)).status_code == 404
    assert start(staff, foreign, {}).status_code == 404
    assert not FunctionExecution.objects.filter(function=foreign).exists()


def test_a_job_is_started_like_an_existing_one_keeping_its_masked_secrets(staff, cast):
    job = Job.objects.create(
        tenant=cast.acme,
        operation={"type": "echo", "data": {"token": {"value": SECRET, "secret": True}}},
        operation_type="echo",
        target_hostname="web-1",
    )
    page = staff.get(start_url(job)).content.decode()
    assert secrets.mask(SECRET) in page and SECRET not in page
    shown = {"type": "echo", "data": {"token": {"value": secrets.mask(SECRET), "secret": True}}}

    response = start(staff, job, shown, target_hostname="web-9")

    assert response.status_code == 302
    new = Job.objects.exclude(pk=job.pk).get(tenant=cast.acme, target_hostname="web-9")
    assert new.operation == job.operation  # the secret as stored, not its mask
    assert started_audit("job", new.pk).source == "admin"


def test_a_job_with_a_bad_operation_names_the_field_and_starts_nothing(staff, cast):
    before = Job.objects.count()
    response = start(staff, cast.job, {"type": "rm.rf", "data": {}})
    assert "operation.type must be command.exec or a registered handler" in form_errors(response)
    bad_host = start(staff, cast.job, {"type": "noop"}, target_hostname="a b")
    assert "target_hostname must be a valid hostname" in form_errors(bad_host)
    assert Job.objects.count() == before


def test_a_rule_fires_an_event_of_its_type_as_an_execution(staff, cast):
    rule = cast.automation.automation_rule
    response = start(staff, rule, {"contactId": "c_9"})
    assert response.status_code == 302
    execution = AutomationExecution.objects.exclude(pk=cast.automation.pk).get(automation_rule=rule)
    assert "c_9" in json.dumps(execution.trigger_data)
    assert started_audit("automation", execution.pk).source == "admin"


def test_a_saved_workflow_runs_with_inputs_checked_against_its_schema(staff, cast):
    workflow = SavedWorkflow.objects.create(
        tenant=cast.acme,
        name="quote",
        definition={
            "nodes": {
                "root": {"type": "trigger"},
                "quote": {"type": "code", "code": "return 1;", "dependsOn": ["root"]},
            },
            "triggerNodeIds": ["root"],
            "inputSchema": [{"key": "qty", "type": "number", "required": True}],
        },
    )
    assert "inputs.qty" in form_errors(start(staff, workflow, {"qty": "three"}))
    assert not Run.objects.filter(workflow_id=workflow.pk).exists()

    assert start(staff, workflow, {"qty": 3}).status_code == 302
    run = Run.objects.get(workflow_id=workflow.pk)
    assert run.prop_values == {"qty": 3} and run.workflow_version == workflow.version
    assert started_audit("run", run.pk).source == "admin"


def test_a_cognite_workflow_version_runs_as_the_admin(staff, cast):
    workflow = cast.workflow.workflow
    assert start(staff, workflow, {"orderId": "ord_9"}).status_code == 302
    execution = WorkflowExecution.objects.exclude(pk=cast.workflow.pk).get(workflow=workflow)
    assert execution.input == {"orderId": "ord_9"}
    assert {t.run_as for t in execution.task_executions.all()} == {"user:alice"}
    assert started_audit("workflow", execution.pk).source == "admin"


def test_a_viewer_cannot_start_work(client, cast, function):
    # bob is a viewer of acme: no admin for him, and no start.
    bob = get_user_model().objects.get(username="bob")
    bob.is_staff = True
    bob.save()
    client.force_login(bob)
    assert start(client, function, {}).status_code in (302, 403, 404)
    assert not FunctionExecution.objects.filter(function=function).exists()


def test_editing_a_functions_code_in_the_admin_is_a_new_version_executions_record(staff, function):
    url = reverse("admin:executions_function_change", args=[function.pk])
    form = {
        "tenant": function.tenant_id,
        "name": "charge",
        "handler": "",
        "params": "{}",
        "code": CODE,
        "environment": "{}",
        "memory_mb": "",
        "timeout_ms": "30000",
        "version": "1",
        "created_at_0": "2026-12-01",
        "created_at_1": "10:00:00",
    }
    assert staff.post(url, form).status_code == 302
    function.refresh_from_db()
    assert function.version == 1  # the code did not change

    form["code"] = "return {fixed: true};"
    assert staff.post(url, form).status_code == 302

    function.refresh_from_db()
    assert function.version == 2 and function.code == "return {fixed: true};"
    versions = list(function.versions.order_by("version").values_list("version", "code"))
    assert versions == [(1, CODE), (2, "return {fixed: true};")]
    execution = functions_run.invoke_function(function, {}, queued=False)
    assert execution.function_version == 2 and execution.result == {"fixed": True}


# --- the console's detail page links to the definition an execution came from --------------------


def detail_page(client, kind: str, pk) -> str:
    response = client.get(reverse("detail", kwargs={"kind": kind, "object_id": pk}))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("kind", "admin_url"),
    [
        ("function", lambda c: ("executions_function", c.function.function_id)),
        ("automation", lambda c: ("executions_automationrule", c.automation.automation_rule_id)),
        ("workflow", lambda c: ("executions_workflow", c.workflow.workflow_id)),
    ],
)
def test_a_detail_page_links_to_the_definition_in_the_admin(login, cast, kind, admin_url):
    model, pk = admin_url(cast)
    page = detail_page(login("dave"), kind, cast.item(kind).pk)
    assert f'<dt>Definition</dt><dd><a href="{reverse(f"admin:{model}_change", args=[pk])}">' in (
        page
    )


def test_a_runs_detail_page_links_to_its_saved_workflow_in_the_api(login, cast):
    client = login("dave")
    assert "<dt>Definition</dt>" not in detail_page(client, "run", cast.run.pk)  # none saved
    SavedWorkflow.objects.create(
        id=cast.run.workflow_id, tenant=cast.acme, name="leads", definition={"nodes": {}}
    )
    page = detail_page(client, "run", cast.run.pk)
    assert f'<a href="/v1/workflows/{cast.run.workflow_id}">leads (saved workflow)</a>' in page
    # A job is its own definition: nothing to link to.
    assert "<dt>Definition</dt>" not in detail_page(client, "job", cast.job.pk)


def test_another_tenants_saved_workflow_of_the_same_id_is_not_linked(login, cast):
    SavedWorkflow.objects.create(
        id=cast.run.workflow_id, tenant=cast.globex, name="theirs", definition={"nodes": {}}
    )
    assert "<dt>Definition</dt>" not in detail_page(login("dave"), "run", cast.run.pk)
