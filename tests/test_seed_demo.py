"""The demo data (`manage.py seed_demo`, executions/demo/): the manifest other tests and scripts
read says the truth, and --scale adds real-looking failures of every kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import jsonschema
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from executions import demo, handlers, permissions, tokens
from executions.demo import exemplars
from executions.demo.handlers import OPERATION_TYPES as DEMO_OPERATION_TYPES
from executions.fingerprints import fingerprint
from executions.models import (
    ApiKey,
    AutomationExecution,
    Function,
    FunctionExecution,
    Job,
    JobEvent,
    Kind,
    Membership,
    Run,
    Tenant,
    WorkflowExecution,
    WorkflowTaskExecution,
)
from executions.work.command import NOT_ALLOWED

# The manifest's contract is the project's own, documented in the README.
SCHEMA = Path(settings.BASE_DIR) / "docs" / "seed_demo_manifest.schema.json"
TENANTS = ("acme", "globex")


def other(slug: str) -> str:
    return "globex" if slug == "acme" else "acme"


def validate(manifest: dict) -> None:
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(manifest)


def function_log(function_id: str) -> list[FunctionExecution]:
    """The function's log as seed 000's logs endpoint lists it: newest first."""
    return list(
        FunctionExecution.objects.filter(function_id=function_id).order_by("-executed_at", "-id")
    )


def assert_items_true(manifest: dict) -> None:
    """Every id of the manifest exists, in the stated state, in the stated tenant only."""
    for slug in TENANTS:
        tenant, foreign = Tenant.objects.get(slug=slug), Tenant.objects.get(slug=other(slug))
        items = manifest[slug]

        fn = items["functions"]
        assert fn["project_id"] == tenant.functions_project_id
        assert Function.objects.filter(pk=fn["function_id"], tenant=tenant).exists()
        assert not Function.objects.filter(pk=fn["function_id"], tenant=foreign).exists()
        log = function_log(fn["function_id"])
        failed, succeeded = log[fn["failed_index"]], log[fn["succeeded_index"]]
        assert (failed.status, failed.handler, failed.retry_count) == ("failed", "flaky", 0)
        assert not FunctionExecution.objects.filter(retry_of=failed).exists()
        assert failed.error_message and failed.error_stack and failed.fingerprint
        assert succeeded.status == "success"

        auto = items["automations"]
        a = AutomationExecution.objects.get(pk=auto["failed"], tenant=tenant)
        assert a.status == "failed"
        assert a.execution_context["actions"][a.failed_action_index]["handler"] == "flaky"
        assert a.actions_successful == a.failed_action_index >= 1
        assert AutomationExecution.objects.get(pk=auto["completed"], tenant=tenant).status == (
            "completed"
        )
        for state in ("failed", "completed"):
            assert not AutomationExecution.objects.filter(pk=auto[state], tenant=foreign).exists()

        jobs = items["jobs"]
        failed_job = Job.objects.get(pk=jobs["failed"], tenant=tenant)
        assert failed_job.status == "failed"
        assert failed_job.operation["type"] == "package.install"
        assert failed_job.operation["data"]["handler"] == "flaky"
        assert [e.type for e in failed_job.events.all()] == ["created", "processing", "failed"]
        assert Job.objects.get(pk=jobs["completed"], tenant=tenant).status == "completed"
        processing = Job.objects.get(pk=jobs["processing"], tenant=tenant)
        assert processing.status == "processing" and processing.lease_token >= 1
        ahead = processing.lease_expires_at - timezone.now()
        assert timedelta(hours=23, minutes=50) < ahead <= timedelta(hours=24)
        command = Job.objects.get(pk=jobs["failed_command"], tenant=tenant)
        assert (command.status, command.operation["type"]) == ("failed", "command.exec")
        assert handlers.operation("command.exec").permission == "command:execute"
        for state in ("failed", "completed", "processing", "failed_command"):
            assert not Job.objects.filter(pk=jobs[state], tenant=foreign).exists()

        wf = items["workflows"]
        assert wf["project"] == tenant.workflows_project
        execution = WorkflowExecution.objects.select_related("workflow").get(
            pk=wf["failed"], tenant=tenant
        )
        assert execution.status == "FAILED"
        definitions = {t["externalId"]: t for t in execution.workflow.tasks}
        bad = [
            t
            for t in execution.task_executions.all()
            if t.status in WorkflowTaskExecution.FINAL_BAD
            and not definitions[t.task_external_id]["isOptional"]
        ]
        assert [definitions[t.task_external_id]["handler"] for t in bad] == ["flaky"]
        assert WorkflowExecution.objects.get(pk=wf["completed"], tenant=tenant).status == (
            "COMPLETED"
        )
        for state in ("failed", "completed"):
            assert not WorkflowExecution.objects.filter(pk=wf[state], tenant=foreign).exists()

        runs = items["runs"]
        run = Run.objects.get(pk=runs["failure"], tenant=tenant)
        assert run.status == "failure"
        nodes = run.workflow_definition["nodes"]
        failed_nodes = [n for n, s in run.node_states.items() if s["status"] == "failure"]
        assert [nodes[n]["handler"] for n in failed_nodes] == ["flaky"]
        succeeded_actions = [
            n
            for n, s in run.node_states.items()
            if s["status"] == "success" and nodes[n].get("handler")
        ]
        assert succeeded_actions and all(n in run.execution_state for n in succeeded_actions)
        assert Run.objects.get(pk=runs["success"], tenant=tenant).status == "success"
        for state in ("failure", "success"):
            assert not Run.objects.filter(pk=runs[state], tenant=foreign).exists()


@pytest.mark.django_db
def test_the_manifest_matches_the_contract(manifest: dict) -> None:
    validate(manifest)
    assert {u: (v["tenant"], v["role"]) for u, v in manifest["users"].items()} == {
        "alice": ("acme", "admin"),
        "dave": ("acme", "operator"),
        "bob": ("acme", "viewer"),
        "carol": ("globex", "admin"),
    }
    assert manifest["acme"]["functions"]["failed_index"] == 0
    assert manifest["acme"]["functions"]["succeeded_index"] == 1


@pytest.mark.django_db
def test_every_id_is_in_its_state_in_its_tenant_only(manifest: dict) -> None:
    assert_items_true(manifest)


@pytest.mark.django_db
def test_it_runs_everything_in_process_and_queues_nothing(manifest: dict) -> None:
    assert DBTaskResult.objects.count() == 0


@pytest.mark.django_db
def test_users_log_in_with_the_manifest_passwords_in_their_tenant(manifest: dict) -> None:
    User = get_user_model()
    for username, info in manifest["users"].items():
        user = User.objects.get(username=username)
        assert user.check_password(info["password"])
        membership = Membership.objects.get(user=user)
        assert (membership.tenant.slug, membership.role) == (info["tenant"], info["role"])


@pytest.mark.django_db
def test_api_keys_authenticate_to_the_users_tenant_with_the_roles_permissions(
    manifest: dict,
) -> None:
    for username, key in manifest["api_keys"].items():
        info = manifest["users"][username]
        api_key = ApiKey.objects.get_from_key(key)
        assert api_key.tenant.slug == info["tenant"]
        assert api_key.user.username == username
        assert api_key.permissions == sorted(permissions.of_role(info["role"]))
    assert (
        "command:execute"
        not in ApiKey.objects.get_from_key(manifest["api_keys"]["dave"]).permissions
    )


@pytest.mark.django_db
def test_jwts_decode_to_the_user_and_tenant(manifest: dict) -> None:
    User = get_user_model()
    for username, token in manifest["jwt"].items():
        claims = tokens.decode(token)
        assert claims["sub"] == str(User.objects.get(username=username).pk)
        assert claims["tenant"] == str(
            Tenant.objects.get(slug=manifest["users"][username]["tenant"]).pk
        )


@pytest.mark.django_db
def test_the_base_seed_holds_a_week_of_varied_failures(manifest: dict) -> None:
    now = timezone.now()
    for slug in TENANTS:
        failed = FunctionExecution.objects.filter(tenant__slug=slug, status="failed")
        assert failed.values("fingerprint").distinct().count() >= 5
        oldest = failed.order_by("executed_at").first().executed_at
        assert now - timedelta(days=7) <= oldest <= now - timedelta(days=1)
        for model, status in (
            (AutomationExecution, "failed"),
            (Job, "failed"),
            (WorkflowExecution, "FAILED"),
            (Run, "failure"),
        ):
            rows = model.objects.filter(tenant__slug=slug, status=status)
            assert rows.values("fingerprint").distinct().count() >= 3, model
            assert not rows.filter(fingerprint="").exists()
        # Timed-out work ran for real too.
        assert FunctionExecution.objects.filter(tenant__slug=slug, status="timeout").exists()
        assert WorkflowExecution.objects.filter(tenant__slug=slug, status="TIMED_OUT").exists()
        assert Run.objects.filter(tenant__slug=slug, status="partial").exists()


def error_type(stack: str) -> str:
    """ "executions.handlers.UpstreamError: connection ..." -> "UpstreamError"."""
    return stack.strip().splitlines()[-1].split(":", 1)[0].rsplit(".", 1)[-1]


def failing_handler(kind: str, obj) -> str:
    """The handler whose failure the item records (what its fingerprint is computed from)."""
    if kind == Kind.FUNCTION:
        return obj.handler
    if kind == Kind.AUTOMATION:
        return obj.execution_context["actions"][obj.failed_action_index]["handler"]
    if kind == Kind.JOB:
        return obj.operation["data"].get("handler", "")  # what the demo's operation type runs
    if kind == Kind.WORKFLOW:
        definitions = {t["externalId"]: t for t in obj.workflow.tasks}
        task = next(
            t
            for t in obj.task_executions.all()
            if t.status in WorkflowTaskExecution.FINAL_BAD
            and not definitions[t.task_external_id]["isOptional"]
        )
        return definitions[task.task_external_id]["handler"]
    nodes = obj.workflow_definition["nodes"]
    return next(nodes[n]["handler"] for n, s in obj.node_states.items() if s["status"] == "failure")


# kind -> (model, failed status, the time the item happened)
FAILED = {
    Kind.FUNCTION: (FunctionExecution, "failed", "executed_at"),
    Kind.AUTOMATION: (AutomationExecution, "failed", "started_at"),
    Kind.JOB: (Job, "failed", "created_at"),
    Kind.WORKFLOW: (WorkflowExecution, "FAILED", "created_time"),
    Kind.RUN: (Run, "failure", "started_at"),
}


@pytest.mark.django_db
def test_scale_200_adds_200_real_looking_failures_of_each_kind(
    manifest: dict, tmp_path: Path
) -> None:
    before = {
        kind: set(model.objects.filter(status=status).values_list("pk", flat=True))
        for kind, (model, status, _) in FAILED.items()
    }
    started = timezone.now()
    path = tmp_path / "manifest.json"
    call_command("seed_demo", scale=200, manifest=str(path), stdout=StringIO())
    second = json.loads(path.read_text())
    validate(second)
    assert_items_true(second)
    now = timezone.now()
    for kind, (model, status, when) in FAILED.items():
        added = model.objects.filter(status=status).exclude(pk__in=before[kind])
        # The command also made a fresh set of manifest items just now; the copies are older.
        copies = list(added.filter(**{f"{when}__lt": started}))
        assert len(copies) == 200, kind
        assert sum(o.tenant.slug == "acme" for o in copies) == 100, kind
        assert sum(o.tenant.slug == "globex" for o in copies) == 100, kind
        assert len({o.pk for o in copies}) == 200
        flaky = 0
        for o in copies:
            if kind == Kind.JOB and o.operation["type"] == "command.exec":
                # The demo's command job runs a real command: the seed's process runs none.
                assert o.error_message == NOT_ALLOWED
                assert o.fingerprint == fingerprint(
                    kind, "systemctl", "CommandsNotAllowed", NOT_ALLOWED
                )
            else:
                handler = failing_handler(kind, o)
                flaky += handler == "flaky"
                assert o.error_message and o.error_stack
                # A job's failure is grouped by its operation type (the handler it names).
                name = o.operation["type"] if kind == Kind.JOB else handler
                assert o.fingerprint == fingerprint(
                    kind, name, error_type(o.error_stack), o.error_message
                ), (kind, o.pk)
            assert now - timedelta(days=7) < getattr(o, when) < now - timedelta(minutes=4)
            # Template markers are all replaced by the copy's own time and number.
            text = json.dumps(
                [getattr(o, f.attname) for f in model._meta.concrete_fields], default=str
            )
            assert "__TS__" not in text and "__N__" not in text
        assert flaky >= 60, (kind, flaky)  # a bulk retry of these visibly succeeds
        assert len({o.fingerprint for o in copies}) >= 5, kind
        if kind == Kind.JOB:
            for job in copies:
                assert [(e.revision, e.type) for e in job.events.all()] == [
                    (1, "created"),
                    (2, "processing"),
                    (3, "failed"),
                ]
                assert all(e.timestamp >= job.created_at for e in job.events.all())
        if kind == Kind.WORKFLOW:
            for execution in copies:
                tasks = list(execution.task_executions.all())
                assert {t.task_external_id for t in tasks} == {
                    t["externalId"] for t in execution.workflow.tasks
                }
                assert any(t.status == "FAILED" for t in tasks)


@pytest.mark.django_db
def test_a_second_seed_keeps_the_data_and_issues_fresh_credentials(
    manifest: dict, tmp_path: Path
) -> None:
    out = StringIO()
    path = tmp_path / "again.json"
    call_command("seed_demo", manifest=str(path), stdout=out)
    again = json.loads(path.read_text())
    validate(again)
    assert_items_true(again)
    assert out.getvalue().startswith("seed_demo: base kept")
    assert Tenant.objects.count() == 2 and get_user_model().objects.count() == 4
    assert again["api_keys"]["alice"] != manifest["api_keys"]["alice"]
    # The first run's keys still work; the items it named were not touched.
    assert ApiKey.objects.get_from_key(manifest["api_keys"]["alice"]).tenant.slug == "acme"
    assert_items_true(manifest)


def test_seed_demo_refuses_a_negative_scale() -> None:
    with pytest.raises(CommandError, match=r"--scale must be >= 0; got -1"):
        call_command("seed_demo", "--scale", "-1")


def assert_foreign_keys_hold() -> None:
    """scale() may load with the foreign-key triggers off: every reference must still resolve."""
    checks = {
        "executions_functionexecution": [
            ("function_id", "executions_function", "id"),
            ("tenant_id", "executions_tenant", "id"),
        ],
        "executions_automationexecution": [
            ("automation_rule_id", "executions_automationrule", "id"),
            ("tenant_id", "executions_tenant", "id"),
        ],
        "executions_job": [("tenant_id", "executions_tenant", "id")],
        "executions_jobevent": [("job_id", "executions_job", "job_id")],
        "executions_workflowexecution": [
            ("workflow_id", "executions_workflow", "id"),
            ("tenant_id", "executions_tenant", "id"),
        ],
        "executions_workflowtaskexecution": [
            ("execution_id", "executions_workflowexecution", "id")
        ],
        "executions_run": [("tenant_id", "executions_tenant", "id")],
    }
    with connection.cursor() as cursor:
        for table, refs in checks.items():
            for column, target, key in refs:
                cursor.execute(
                    f"SELECT count(*) FROM {table} AS t WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {target} AS r WHERE r.{key} = t.{column})"
                )
                assert cursor.fetchone()[0] == 0, (table, column)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_big_scale_in_a_transaction_adds_failures_whose_references_hold(manifest: dict) -> None:
    assert demo.scale(5000) == {str(kind): 5000 for kind in FAILED}
    for kind, (model, status, _) in FAILED.items():
        assert model.objects.filter(status=status, fingerprint="").count() == 0, kind
        assert model.objects.filter(status=status).count() >= 5000, kind
    assert JobEvent.objects.count() >= 3 * 5000
    assert_foreign_keys_hold()


@pytest.mark.django_db
def test_copies_carry_the_stacks_an_engine_run_recorded(manifest: dict) -> None:
    before = set(AutomationExecution.objects.values_list("pk", flat=True))
    demo.scale(40)
    copies = AutomationExecution.objects.exclude(pk__in=before)
    assert copies.count() == 40
    exemplar_stacks = {
        row["error_stack"]
        for (_, kind, _), (row, _) in exemplars._EXEMPLARS.items()
        if kind == Kind.AUTOMATION
    }
    assert {o.error_stack for o in copies} <= exemplar_stacks
    assert all(o.error_stack.startswith("Traceback (most recent call last):") for o in copies)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_command_adds_a_big_scale_beside_a_true_manifest(tmp_path: Path) -> None:
    out = StringIO()
    path = tmp_path / "manifest.json"
    call_command("seed_demo", scale=5000, manifest=str(path), stdout=out)
    assert "scale +5000 failed x 5 kinds" in out.getvalue()
    manifest = json.loads(path.read_text())
    validate(manifest)
    assert_items_true(manifest)
    for kind, (model, status, _) in FAILED.items():
        assert model.objects.filter(status=status).count() >= 5000, kind
        assert model.objects.filter(status=status, fingerprint="").count() == 0, kind
        for slug in TENANTS:
            assert model.objects.filter(status=status, tenant__slug=slug).count() >= 2500
    assert_foreign_keys_hold()
    assert not Job.objects.filter(status="failed").annotate(n=Count("events")).exclude(n=3).exists()


@pytest.mark.django_db(transaction=True)
def test_scaled_flaky_failures_succeed_when_retried_by_a_real_worker(run_worker) -> None:
    from executions import services
    from executions.tenancy import Actor

    call_command("seed_demo", scale=40, stdout=StringIO())
    acme = Tenant.objects.get(slug="acme")
    actor = Actor.for_user(get_user_model().objects.get(username="alice"), acme, source="cli")
    copies = timezone.now() - timedelta(minutes=4)  # older than the fresh manifest items
    picked = {}
    for kind, (model, status, when) in FAILED.items():
        candidates = model.objects.filter(tenant=acme, status=status, **{f"{when}__lt": copies})
        picked[kind] = next(o for o in candidates if failing_handler(kind, o) == "flaky")
    # Queued without waiting for the function's result: the worker runs them all below.
    new_ids = {
        kind: services.retry_one(actor, kind, o.pk, wait=False).new_id for kind, o in picked.items()
    }
    run_worker(hostname="web-01")
    assert FunctionExecution.objects.get(pk=new_ids[Kind.FUNCTION]).status == "success"
    assert AutomationExecution.objects.get(pk=picked[Kind.AUTOMATION].pk).status == "completed"
    assert Job.objects.get(pk=new_ids[Kind.JOB]).status == "completed"
    assert WorkflowExecution.objects.get(pk=picked[Kind.WORKFLOW].pk).status == "COMPLETED"
    run = Run.objects.get(pk=new_ids[Kind.RUN])
    assert run.status == "success" and run.source_run_id == picked[Kind.RUN].pk
    assert any(s.get("carriedOver") for s in run.node_states.values())


# What a process has loaded once it is up: the demo's modules and the registered handlers.
START_UP = """
import json, sys
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # the URLconf, and every view it names
import project.asgi, project.wsgi
import executions.management.commands.worker
{extra}
from executions import handlers
print(json.dumps({{
    "demo": sorted(m for m in sys.modules if m.split(".")[:2] == ["executions", "demo"]),
    "handlers": handlers.names(),
}}))
"""


def started(modules: str = "", extra: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k != "REDRIVE_HANDLER_MODULES"}
    if modules:
        env["REDRIVE_HANDLER_MODULES"] = modules
    done = subprocess.run(
        [sys.executable, "-c", START_UP.format(extra=extra)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_web_server_and_the_worker_load_no_demo_and_no_demo_handlers() -> None:
    assert started() == {"demo": [], "handlers": []}


def test_the_demo_and_its_handlers_are_loaded_where_the_demo_is() -> None:
    demo_handlers = sorted(
        ["echo", "fail", "flaky", "noop", "send_email", "sleep", *DEMO_OPERATION_TYPES]
    )
    # seed_demo (which up calls) loads the demo, and with it its handlers ...
    seeding = started(extra="import executions.management.commands.seed_demo")
    assert "executions.demo" in seeding["demo"]
    assert seeding["handlers"] == demo_handlers
    # ... and the worker `up` starts is told to load them.
    up_worker = started(modules="executions.demo.handlers")
    assert "executions.demo.handlers" in up_worker["demo"]
    assert up_worker["handlers"] == demo_handlers
