"""`manage.py apply FILE --tenant SLUG [--check]`: a tenant's definitions made to match a TOML
file through the API's validators and state changes: created, then unchanged when applied again
(idempotent), updated field by field when the file changes, `--check` showing the diff and
applying nothing (exit 1 when it differs), a bad entry naming itself and its field with nothing
applied, and docs/redrive.example.toml applying as the README says."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from executions.models import (
    AuditEvent,
    AutomationRule,
    Function,
    FunctionVersion,
    Membership,
    Role,
    SavedWorkflow,
    Tenant,
    Workflow,
)

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "redrive.example.toml"

SMALL = """
[[functions]]
name = "charge"
code = "return {charged: true};"
trigger = { type = "http" }
limits = { timeout = 5000 }

[[rules]]
name = "urgent"
trigger = { type = "event", event = "ticket.created" }
actions = [{ handler = "echo" }]

[[workflows]]
name = "wf"
[workflows.definition]
triggerNodeIds = ["root"]
[workflows.definition.nodes.root]
type = "trigger"
[workflows.definition.nodes.a]
type = "code"
code = "return 1;"
dependsOn = ["root"]
"""


@pytest.fixture
def tenants(db):
    acme = Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme-prod")
    globex = Tenant.objects.create(slug="globex", name="Globex", workflows_project="globex-prod")
    return acme, globex


def run(path: Path, *args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("apply", str(path), *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "redrive.toml"
    path.write_text(text)
    return path


def counts(tenant) -> tuple[int, int, int, int]:
    return (
        Function.objects.filter(tenant=tenant).count(),
        AutomationRule.objects.filter(tenant=tenant).count(),
        SavedWorkflow.objects.filter(tenant=tenant).count(),
        Workflow.objects.filter(tenant=tenant).count(),
    )


def test_the_example_file_applies_then_is_unchanged(tenants):
    acme, globex = tenants
    code, out = run(EXAMPLE, "--tenant", "acme", "--check")
    assert code == 1 and "5 created, 0 updated, 0 unchanged (check: nothing applied)" in out
    assert counts(acme) == (0, 0, 0, 0)

    code, out = run(EXAMPLE, "--tenant", "acme")
    assert code == 0 and out.strip().endswith("5 created, 0 updated, 0 unchanged")
    assert "function send-invoice: created" in out
    assert "cognite_workflow invoice-run version 1: created" in out
    assert counts(acme) == (2, 1, 1, 1) and counts(globex) == (0, 0, 0, 0)
    invoice = Function.objects.get(tenant=acme, name="send-invoice")
    assert invoice.timeout_ms == 5000 and invoice.max_executions_per_minute == 600
    assert invoice.trigger == {"type": "http"} and invoice.version == 1
    assert Function.objects.get(tenant=acme, name="nightly-report").next_fire_at is not None
    assert AuditEvent.objects.filter(tenant=acme, action="create rule", source="cli").exists()

    # Idempotent: again, nothing changes, and --check agrees (exit 0).
    code, out = run(EXAMPLE, "--tenant", "acme")
    assert code == 0 and "0 created, 0 updated, 5 unchanged" in out
    assert run(EXAMPLE, "--tenant", "acme", "--check")[0] == 0
    assert counts(acme) == (2, 1, 1, 1)
    assert Function.objects.get(tenant=acme, name="send-invoice").version == 1


def test_a_changed_file_updates_field_by_field_and_check_shows_it_first(tenants, tmp_path):
    acme, _ = tenants
    path = write(tmp_path, SMALL)
    assert run(path, "--tenant", "acme")[0] == 0
    function = Function.objects.get(tenant=acme, name="charge")
    rule = AutomationRule.objects.get(tenant=acme, name="urgent")

    changed = SMALL.replace("return {charged: true};", "return {charged: 2};")
    changed = changed.replace("timeout = 5000", "timeout = 7000")
    changed = changed.replace('{ handler = "echo" }', '{ handler = "noop" }')
    path = write(tmp_path, changed)
    code, out = run(path, "--tenant", "acme", "--check")
    assert code == 1
    assert "function charge: updated" in out and "  limits.timeout: 5000 -> 7000" in out
    assert '  code: "return {charged: true};" -> "return {charged: 2};"' in out
    assert "rule urgent: updated" in out and "  actions:" in out
    assert "workflow wf: unchanged" in out
    function.refresh_from_db()
    assert function.code == "return {charged: true};" and function.timeout_ms == 5000

    code, out = run(path, "--tenant", "acme")
    assert code == 0 and "0 created, 2 updated, 1 unchanged" in out
    function.refresh_from_db()
    rule.refresh_from_db()
    assert function.code == "return {charged: 2};" and function.timeout_ms == 7000
    # The API's PUT: a code change is a new version, recorded.
    assert function.version == 2
    assert list(
        FunctionVersion.objects.filter(function=function).values_list("version", flat=True)
    ) == [1, 2]
    assert rule.actions == [{"handler": "noop", "params": {}}] and rule.version == 2


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'trigger = { type = "http" }',
            'trigger = { type = "cron", schedule = "every tuesday" }',
            "functions[0] (charge): trigger.schedule must be minutely, hourly, daily, weekly",
        ),
        ("return {charged: true};", "return (;", "functions[0] (charge): code does not compile"),
        ('{ handler = "echo" }', '{ handler = "nope" }', "rules[0] (urgent): actions[0].handler"),
        ('dependsOn = ["root"]', 'dependsOn = ["ghost"]', "workflows[0] (wf): definition.nodes.a"),
        ("limits = { timeout = 5000 }", "colour = 1", "functions[0] (charge): colour: unknown"),
    ],
)
def test_a_bad_entry_names_itself_and_its_field_and_nothing_is_applied(
    tenants, tmp_path, old, new, message
):
    acme, _ = tenants
    path = write(tmp_path, SMALL.replace(old, new))
    with pytest.raises(CommandError) as caught:
        run(path, "--tenant", "acme")
    assert message in str(caught.value) and "nothing applied" in str(caught.value)
    assert counts(acme) == (0, 0, 0, 0)


def test_a_file_that_is_not_toml_or_an_unknown_tenant_is_a_clear_error(tenants, tmp_path):
    with pytest.raises(CommandError, match="not valid TOML"):
        run(write(tmp_path, "[[functions]\nname="), "--tenant", "acme")
    with pytest.raises(CommandError, match="unknown section 'jobs'"):
        run(write(tmp_path, "[[jobs]]\nname = 'x'\n"), "--tenant", "acme")
    with pytest.raises(CommandError, match="unknown tenant 'nope'"):
        run(EXAMPLE, "--tenant", "nope")


def test_a_member_without_write_permission_cannot_apply(tenants, tmp_path, django_user_model):
    acme, _ = tenants
    viewer = django_user_model.objects.create_user("viewer", password="x")
    Membership.objects.create(user=viewer, tenant=acme, role=Role.VIEWER)
    with pytest.raises(CommandError, match="Missing permission functions:write"):
        run(write(tmp_path, SMALL), "--tenant", "acme", "--user", "viewer")
    assert counts(acme) == (0, 0, 0, 0)
