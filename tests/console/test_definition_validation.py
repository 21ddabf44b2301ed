"""A definition of units of work is refused when it is saved, naming the field, not when it runs:
an automation rule's actions, a workflow's tasks and a function saved through the admin (real
POSTs as a staff user), and a run's definition and a job's operation by their models' clean()
(what seed_demo and the REST endpoints rely on)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from executions.errors import InvalidInput
from executions.kinds.jobs.definition import validate_definition as validate_operation
from executions.kinds.runs.definition import validate_definition as validate_run
from executions.models import AutomationRule, Function, Job, Role, Run, Workflow

pytestmark = pytest.mark.django_db

WHEN = {"created_at_0": "2026-12-01", "created_at_1": "10:00:00"}


@pytest.fixture
def staff(client, cast):
    """alice, admin of acme, signed in to the admin as staff (not a superuser)."""
    user = get_user_model().objects.get(username="alice")
    user.is_staff = True
    user.save()
    assert user.memberships.get(tenant=cast.acme).role == Role.ADMIN
    client.force_login(user)
    return client


def refused(response, field: str) -> str:
    """The form came back (nothing saved) with an error on `field`: its text."""
    assert response.status_code == 200, response.status_code
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    return " ".join(errors[field])


def add_rule(client, tenant, actions) -> object:
    return client.post(
        reverse("admin:executions_automationrule_add"),
        {
            "tenant": tenant.pk,
            "name": "checked",
            "trigger": json.dumps({"event": "ticket.created"}),
            "actions": json.dumps(actions),
            "version": "1",
            **WHEN,
        },
    )


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (
            [{"handler": "noop"}, {"handler": "echo"}, {"handler": "billing.nope"}],
            "actions[2].handler: unknown handler 'billing.nope'",
        ),
        ([{"url": "http://127.0.0.1:8080/hook"}], "actions[0].url: host not allowed: 127.0.0.1"),
        ([{"url": "http://[::1]/hook"}], "actions[0].url: host not allowed: ::1"),
        ([{"url": "http://169.254.169.254/latest"}], "actions[0].url: host not allowed"),
        ([{"url": "ftp://example.com/x"}], "actions[0].url: url must be an http:// or https://"),
        (
            [{"url": "https://example.com", "headers": {"X": {"value": 5, "secret": True}}}],
            "actions[0].headers.X: actions[0].headers.X must be a string",
        ),
        ([{"code": "return (", "limits": {}}], "actions[0].code: code does not compile"),
        (
            [{"code": "return 1", "limits": {"memoryMb": 4}}],
            "actions[0].limits.memoryMb: limits.memoryMb must be an integer from 16",
        ),
        (
            [{"code": "return 1", "limits": {"timeout": 0}}],
            "actions[0].limits.timeout: limits.timeout must be an integer from 1",
        ),
        ([{"command": "rm", "args": ["-rf", "/"]}], "actions[0].command: command is not allowed"),
        ([{"params": {}}], "actions[0]: a unit of work has exactly one of"),
        ({"handler": "noop"}, "actions must be a list"),
    ],
)
def test_the_admin_refuses_an_invalid_automation_action_naming_it(staff, cast, actions, message):
    before = AutomationRule.objects.count()
    assert message in refused(add_rule(staff, cast.acme, actions), "actions")
    assert AutomationRule.objects.count() == before


def test_the_admin_saves_a_valid_rule_and_an_allowed_local_address(staff, cast, settings):
    actions = [
        {"handler": "noop"},
        {"url": "https://example.com/hook", "method": "POST", "json": {"a": 1}},
        {"code": "return payload", "limits": {"timeout": 500, "memoryMb": 32}},
    ]
    assert add_rule(staff, cast.acme, actions).status_code == 302
    settings.REDRIVE_HTTP_ALLOW = "127.0.0.1:8080"
    local = [{"url": "http://127.0.0.1:8080/hook"}]
    assert add_rule(staff, cast.acme, local).status_code == 302
    assert "port" not in refused(
        add_rule(staff, cast.acme, [{"url": "http://127.0.0.1:9/"}]), "actions"
    )


def test_editing_a_rule_to_an_unknown_handler_is_refused_and_changes_nothing(staff, cast):
    rule = AutomationRule.objects.create(
        tenant=cast.acme, name="r", trigger={"event": "x"}, actions=[{"handler": "noop"}]
    )
    response = staff.post(
        reverse("admin:executions_automationrule_change", args=[rule.pk]),
        {
            "tenant": cast.acme.pk,
            "name": "r",
            "trigger": json.dumps({"event": "x"}),
            "actions": json.dumps([{"handler": "gone"}]),
            "version": "2",
            **WHEN,
        },
    )
    assert "actions[0].handler: unknown handler 'gone'" in refused(response, "actions")
    rule.refresh_from_db()
    assert (rule.actions, rule.version) == ([{"handler": "noop"}], 1)


def add_workflow(client, tenant, tasks) -> object:
    return client.post(
        reverse("admin:executions_workflow_add"),
        {
            "tenant": tenant.pk,
            "external_id": "checked",
            "version": "1",
            "tasks": json.dumps(tasks),
            **WHEN,
        },
    )


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (
            [{"externalId": "a", "handler": "noop"}, {"externalId": "b", "handler": "nope"}],
            "tasks[1].handler: unknown handler 'nope'",
        ),
        (
            [{"externalId": "a", "type": "http", "url": "http://10.0.0.5/internal"}],
            "tasks[0].url: host not allowed: 10.0.0.5",
        ),
        (
            [{"externalId": "a", "code": "return 1"}],
            "tasks[0].code: code is not allowed here",
        ),
        (
            [{"externalId": "a", "handler": "noop", "dependsOn": ["z"]}],
            "tasks[0].dependsOn: dependsOn must list the externalIds",
        ),
        (
            [{"externalId": "a", "handler": "noop"}, {"externalId": "a", "handler": "noop"}],
            "tasks[1].externalId: externalId 'a' is used twice",
        ),
        (
            [{"externalId": "a", "handler": "noop", "retries": -1}],
            "tasks[0].retries: retries must be an integer",
        ),
        (
            [{"externalId": "a", "url": "https://example.com", "expectStatus": "ok"}],
            "tasks[0].expectStatus: expectStatus must be a status code",
        ),
    ],
)
def test_the_admin_refuses_an_invalid_workflow_task_naming_it(staff, cast, tasks, message):
    assert message in refused(add_workflow(staff, cast.acme, tasks), "tasks")
    assert not Workflow.objects.filter(external_id="checked").exists()


def test_the_admin_saves_a_valid_workflow(staff, cast):
    tasks = [
        {"externalId": "a", "handler": "noop", "retries": 2, "timeout": 30},
        {"externalId": "b", "type": "http", "url": "https://example.com/x", "dependsOn": ["a"]},
    ]
    assert add_workflow(staff, cast.acme, tasks).status_code == 302
    assert Workflow.objects.get(external_id="checked").tasks == tasks


def add_function(client, tenant, **fields) -> object:
    return client.post(
        reverse("admin:executions_function_add"),
        {
            "tenant": tenant.pk,
            "name": "checked",
            "handler": "",
            "params": "{}",
            "code": "",
            "environment": "{}",
            "memory_mb": "",
            "timeout_ms": "1000",
            "version": "1",
            **WHEN,
            **fields,
        },
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"code": "return {"}, "code", "code does not compile"),
        ({"code": "return 1", "memory_mb": "4"}, "memory_mb", "memory_mb must be an integer"),
        ({"code": "return 1", "timeout_ms": "99999999"}, "timeout_ms", "timeout_ms must be"),
        ({"handler": "nope"}, "handler", "unknown handler 'nope'"),
        ({}, "handler", "handler must be the name of a registered handler"),
    ],
)
def test_the_admin_refuses_an_invalid_function_naming_the_field(
    staff, cast, fields, field, message
):
    assert message in refused(add_function(staff, cast.acme, **fields), field)
    assert not Function.objects.filter(name="checked").exists()


def test_the_admin_saves_a_valid_function(staff, cast):
    response = add_function(staff, cast.acme, code="return payload", memory_mb="32")
    assert response.status_code == 302
    assert Function.objects.get(name="checked").memory_mb == 32


def test_a_runs_definition_is_checked_by_its_model_naming_the_node(cast):
    definition = {
        "nodes": {
            "root": {},
            "ok": {"type": "action", "handler": "noop", "dependsOn": ["root"]},
            "fetch": {"type": "http", "url": "http://192.168.1.1/", "dependsOn": ["ok"]},
        },
        "triggerNodeIds": ["root"],
    }
    run = Run(tenant=cast.acme, workflow_id="wf", workflow_definition=definition)
    with pytest.raises(ValidationError) as caught:
        run.full_clean()
    assert caught.value.message_dict["workflow_definition"] == [
        "workflow_definition.nodes.fetch.url: host not allowed: 192.168.1.1"
    ]
    with pytest.raises(InvalidInput) as direct:
        validate_run({**definition, "nodes": {**definition["nodes"], "fetch": {"code": "x("}}})
    assert (direct.value.field, direct.value.message) == (
        "workflowDefinition.nodes.fetch.code",
        direct.value.message,
    )
    assert direct.value.message.startswith("code does not compile")
    definition["nodes"]["fetch"] = {"handler": "noop", "dependsOn": ["missing"]}
    with pytest.raises(InvalidInput, match="dependsOn must list") as dangling:
        validate_run(definition)
    assert dangling.value.field == "workflowDefinition.nodes.fetch.dependsOn"


def test_a_jobs_operation_is_a_registered_handler_or_command_exec(cast):
    job = Job(tenant=cast.acme, operation={"type": "rm.rf", "data": {}}, operation_type="rm.rf")
    with pytest.raises(ValidationError) as caught:
        job.full_clean()
    assert caught.value.message_dict["operation"] == [
        "operation.type: type must be command.exec or a registered handler's name"
    ]
    validate_operation({"type": "noop", "data": {"x": 1}})
    validate_operation({"type": "command.exec", "data": {"command": "test", "args": ["-f", "a"]}})
    with pytest.raises(InvalidInput) as bad:
        validate_operation({"type": "command.exec", "data": {"command": "ls", "cwd": "srv"}})
    assert (bad.value.field, bad.value.message) == (
        "operation.data.cwd",
        "cwd must be an absolute path",
    )
