"""Seed 003, defining and starting work with Cognite's own SDK (`cognite-sdk`), unchanged:
`client.workflows.upsert`, `.versions.upsert`, `.executions.run` / `.cancel` / `.retry` /
`.retrieve_detailed`, over HTTP to a live Redrive, with real workers running the tasks (function
tasks run the tenant's JavaScript functions in V8)."""

from __future__ import annotations

import pytest
from cognite.client.data_classes import (
    FunctionTaskParameters,
    WorkflowDefinitionUpsert,
    WorkflowTask,
    WorkflowUpsert,
    WorkflowVersionUpsert,
)
from cognite.client.data_classes.workflows import (
    UnknownWorkflowTaskOutput,
    UnknownWorkflowTaskParameters,
    WorkflowExecution,
    WorkflowVersion,
)
from cognite.client.data_classes.workflows import Workflow as WorkflowOut
from cognite.client.exceptions import CogniteAPIError, CogniteNotFoundError

from executions.kinds import KINDS
from executions.models import Function, FunctionExecution, Tenant, Workflow, WorkflowSession
from executions.models import WorkflowExecution as WorkflowExecutionRow

pytestmark = pytest.mark.django_db(transaction=True)

KINDS_BY_NAME = {k.name: k for k in KINDS}
BROKEN = 'throw new Error("transform is broken for " + payload.n);'
FIXED = "return {doubled: payload.n * 2};"


@pytest.fixture
def acme(manifest: dict) -> dict:
    return manifest["acme"]["workflows"]


@pytest.fixture
def tenant(acme) -> Tenant:
    return Tenant.objects.get(workflows_project=acme["project"])


@pytest.fixture
def alice(cognite, login, acme):
    return cognite(login("alice"), acme["project"])


@pytest.fixture
def functions(tenant) -> dict[str, Function]:
    return {
        "extract": Function.objects.create(
            tenant=tenant, name="wf-extract", code="return {n: payload.n};"
        ),
        "transform": Function.objects.create(tenant=tenant, name="wf-transform", code=BROKEN),
        "load": Function.objects.create(
            tenant=tenant, name="wf-load", code="return {loaded: payload.value};"
        ),
    }


def three_tasks(transform_ref: str = "wf-transform") -> WorkflowDefinitionUpsert:
    return WorkflowDefinitionUpsert(
        description="extract, transform, load",
        tasks=[
            WorkflowTask(
                "extract", FunctionTaskParameters("wf-extract", data={"n": "${workflow.input.n}"})
            ),
            WorkflowTask(
                "transform",
                FunctionTaskParameters(transform_ref, data={"n": "${extract.output.response.n}"}),
                depends_on=["extract"],
            ),
            WorkflowTask(
                "load",
                FunctionTaskParameters(
                    "wf-load", data={"value": "${transform.output.response.doubled}"}
                ),
                depends_on=["transform"],
            ),
        ],
    )


def define(client, transform_ref: str = "wf-transform") -> WorkflowVersion:
    workflow = client.workflows.upsert(WorkflowUpsert("sdk-etl", description="nightly"))
    assert isinstance(workflow, WorkflowOut) and workflow.external_id == "sdk-etl"
    assert workflow.description == "nightly" and isinstance(workflow.created_time, int)
    return client.workflows.versions.upsert(
        WorkflowVersionUpsert("sdk-etl", "1", three_tasks(transform_ref))
    )


def test_the_sdk_defines_runs_fixes_the_function_and_retries_only_the_failed_tasks(
    alice, acme, functions, run_worker
):
    version = define(alice)
    assert isinstance(version, WorkflowVersion) and version.version == "1"
    tasks = version.workflow_definition.tasks
    assert [t.external_id for t in tasks] == ["extract", "transform", "load"]
    # Cognite's defaults come back as the SDK sent them.
    assert (tasks[1].retries, tasks[1].timeout, tasks[1].on_failure) == (3, 3600, "abortWorkflow")
    assert tasks[2].depends_on == ["transform"]

    started = alice.workflows.executions.run("sdk-etl", "1", input={"n": 21})

    assert isinstance(started, WorkflowExecution) and started.status == "running"
    session = WorkflowSession.objects.get()  # the SDK made one and spent its nonce on the run
    assert session.user.username == "alice" and session.used_at is not None

    run_worker()

    failed = alice.workflows.executions.retrieve_detailed(started.id)
    assert failed.status == "failed"
    by_id = {t.external_id: t for t in failed.executed_tasks}
    assert by_id["extract"].status == "completed"
    assert by_id["extract"].output.response == {"n": 21}
    assert by_id["transform"].status == "failed"
    assert "transform is broken for 21" in by_id["transform"].reason_for_incompletion
    assert by_id["load"].status == "scheduled"
    assert "transform is broken for 21" in failed.reason_for_incompletion
    # retries=3: the broken function ran four times, each a function execution of its own.
    assert FunctionExecution.objects.filter(function=functions["transform"]).count() == 4
    extract_ended = by_id["extract"].end_time

    # The fix: the function's code (as its API or the admin saves it).
    Function.objects.filter(pk=functions["transform"].pk).update(code=FIXED, version=2)

    retried = alice.workflows.executions.retry(started.id)
    assert retried.id == started.id and retried.status == "running"

    run_worker()

    done = alice.workflows.executions.retrieve_detailed(started.id)
    assert done.status == "completed"
    by_id = {t.external_id: t for t in done.executed_tasks}
    assert by_id["extract"].end_time == extract_ended  # not run again
    assert FunctionExecution.objects.filter(function=functions["extract"]).count() == 1
    assert by_id["transform"].status == "completed"
    assert by_id["transform"].output.response == {"doubled": 42}
    assert by_id["transform"].output.function_id == functions["transform"].pk
    assert by_id["load"].status == "completed"
    assert by_id["load"].output.response == {"loaded": 42}
    # The console's detail page names each task's work.
    row = WorkflowExecutionRow.objects.get(pk=started.id)
    shown = [t["handler"] for t in KINDS_BY_NAME["workflow"].shown.extras(row)["tasks"]]
    assert shown == ["function wf-extract", "function wf-transform", "function wf-load"]


def test_a_function_task_names_its_function_by_id_too(alice, functions, run_worker):
    functions["transform"].code = FIXED
    functions["transform"].save()
    define(alice, transform_ref=functions["transform"].pk)

    started = alice.workflows.executions.run("sdk-etl", "1", input={"n": 5})
    run_worker()

    done = alice.workflows.executions.retrieve_detailed(started.id)
    assert done.status == "completed"
    assert {t.external_id: t.output.response for t in done.executed_tasks}["load"] == {"loaded": 10}


def test_cancel_terminates_a_running_execution_and_a_retry_finishes_it(
    alice, functions, run_worker
):
    functions["transform"].code = FIXED
    functions["transform"].save()
    define(alice)
    started = alice.workflows.executions.run("sdk-etl", "1", input={"n": 1})

    canceled = alice.workflows.executions.cancel(started.id, reason="wrong input")

    assert canceled.status == "terminated" and canceled.reason_for_incompletion == "wrong input"
    run_worker()  # its queued task finds it TERMINATED and runs nothing
    assert FunctionExecution.objects.filter(function__in=functions.values()).count() == 0
    with pytest.raises(CogniteAPIError) as again:
        alice.workflows.executions.cancel(started.id, reason="twice")
    assert again.value.code == 409
    assert again.value.message == (
        "Workflow execution is TERMINATED; only a RUNNING execution can be canceled"
    )

    alice.workflows.executions.retry(started.id)
    run_worker()
    assert alice.workflows.executions.retrieve_detailed(started.id).status == "completed"


def test_a_viewer_cannot_define_or_run(cognite, login, acme, alice, functions):
    define(alice)
    bob = cognite(login("bob"), acme["project"])

    for call in (
        lambda: bob.workflows.upsert(WorkflowUpsert("other")),
        lambda: bob.workflows.versions.upsert(WorkflowVersionUpsert("x", "1", three_tasks())),
        lambda: bob.workflows.executions.run("sdk-etl", "1"),
    ):
        with pytest.raises(CogniteAPIError) as err:
            call()
        assert err.value.code == 403
        assert err.value.message == "Missing permission workflowOrchestrationACL:WRITE"
    assert not WorkflowExecutionRow.objects.filter(workflow__external_id="sdk-etl").exists()


def test_an_unknown_function_is_a_400_naming_the_field(alice, functions):
    with pytest.raises(CogniteAPIError) as err:
        define(alice, transform_ref="no-such-function")

    assert err.value.code == 400
    assert err.value.message == (
        "items[0].workflowDefinition.tasks[1].parameters.function.externalId: "
        "no function named 'no-such-function'"
    )


def test_another_tenants_workflow_and_execution_are_404(cognite, login, manifest, alice):
    globex = manifest["globex"]["workflows"]
    Workflow.objects.create(
        tenant=Tenant.objects.get(workflows_project=globex["project"]),
        external_id="globex-only",
        version="1",
        tasks=[{"externalId": "a", "handler": "echo"}],
    )

    with pytest.raises(CogniteNotFoundError) as err:
        alice.workflows.executions.run("globex-only", "1")
    assert err.value.message == "Workflow version not found"
    assert not WorkflowExecutionRow.objects.filter(workflow__external_id="globex-only").exists()
    assert alice.workflows.versions.retrieve(("globex-only", "1")) is None  # a 404
    with pytest.raises(CogniteNotFoundError) as err:
        alice.workflows.executions.cancel(globex["failed"], reason="not mine")
    assert err.value.message == "Workflow execution not found"
    # and the other tenant's project itself
    alice_in_globex = cognite(login("alice"), globex["project"])
    with pytest.raises(CogniteNotFoundError) as err:
        alice_in_globex.workflows.upsert(WorkflowUpsert("sneaky"))
    assert err.value.message == "Project not found"


def test_redrives_handler_tasks_go_through_the_sdks_unknown_task_type(alice, run_worker):
    tasks = [
        WorkflowTask(
            "boom",
            UnknownWorkflowTaskParameters("handler", {"handler": {"name": "fail"}}),
            retries=0,
            on_failure="skipTask",
        ),
        WorkflowTask(
            "after",
            UnknownWorkflowTaskParameters(
                "handler", {"handler": {"name": "echo", "params": {"day": "${workflow.input.day}"}}}
            ),
            depends_on=["boom"],
        ),
    ]
    alice.workflows.versions.upsert(
        WorkflowVersionUpsert("ext", "1", WorkflowDefinitionUpsert(tasks=tasks))
    )
    started = alice.workflows.executions.run("ext", "1", input={"day": "2026-12-01"})
    run_worker()

    done = alice.workflows.executions.retrieve_detailed(started.id)
    assert done.status == "completed"
    by_id = {t.external_id: t for t in done.executed_tasks}
    assert by_id["boom"].status == "failed" and by_id["boom"].task_type == "handler"
    assert isinstance(by_id["after"].output, UnknownWorkflowTaskOutput)
    assert by_id["after"].output.output["response"]["params"] == {"day": "2026-12-01"}
    assert done.workflow_definition.tasks[0].on_failure == "skipTask"


def test_retrieve_reads_back_what_was_upserted_and_none_for_unknown(alice, functions):
    define(alice)

    workflow = alice.workflows.retrieve("sdk-etl")
    assert workflow.external_id == "sdk-etl" and workflow.description == "nightly"
    version = alice.workflows.versions.retrieve(("sdk-etl", "1"))
    assert [t.external_id for t in version.workflow_definition.tasks] == [
        "extract",
        "transform",
        "load",
    ]
    assert version.workflow_definition.tasks[0].parameters.data == {"n": "${workflow.input.n}"}
    # Unknown ids: Redrive's 404, which the SDK turns into None, as with CDF.
    assert alice.workflows.retrieve("nope") is None
    assert alice.workflows.versions.retrieve(("sdk-etl", "2")) is None
