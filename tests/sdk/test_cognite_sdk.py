"""Seed 003 with Cognite's own Python SDK (`cognite-sdk`), unchanged, pointed at Redrive:

    CogniteClient(ClientConfig(client_name=..., project=<tenant's workflows project>,
                               base_url=<Redrive>, credentials=Token(<JWT>)))

What the SDK really does (cognite/client/_api/workflows/executions.py, _api/iam/sessions.py,
_basic_api_client.py): `executions.retry(id)` first POSTs {"items": [{"tokenExchange": true}]} to
/api/v1/projects/{project}/sessions and reads items[0].nonce, then POSTs
{"authentication": {"nonce": ...}} to .../workflows/executions/{id}/retry; every JSON body is
gzip-compressed (Content-Encoding: gzip); `list(...)` POSTs {"filter", "limit"} to
.../workflows/executions/list; `retrieve_detailed(id)` GETs .../workflows/executions/{id}; an
error status is read as response.json()["error"]["message"] into a CogniteAPIError whose `code`
is the HTTP status (a 404 is its subclass CogniteNotFoundError, a 401 CogniteProjectAccessError).
"""

from __future__ import annotations

import logging
import uuid

import pytest
from cognite.client import global_config
from cognite.client.data_classes import ClientCredentials
from cognite.client.data_classes.workflows import (
    WorkflowExecution,
    WorkflowExecutionDetailed,
    WorkflowExecutionList,
)
from cognite.client.exceptions import (
    CogniteAPIError,
    CogniteNotFoundError,
    CogniteProjectAccessError,
)

from executions.models import Attempt, WorkflowSession, WorkflowTaskExecution
from executions.models import WorkflowExecution as WorkflowExecutionRow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme(manifest: dict) -> dict:
    return manifest["acme"]["workflows"]


@pytest.fixture
def alice(cognite, login, acme):
    return cognite(login("alice"), acme["project"])


def sdk_requests(caplog) -> list[logging.LogRecord]:
    """The SDK's own log of each successful request (method, URL, request headers)."""
    return [r for r in caplog.records if r.name == "cognite.client._basic_api_client"]


def test_retry_returns_the_same_execution_running_and_it_really_resumes(
    alice, acme, run_worker, caplog
):
    caplog.set_level(logging.DEBUG, logger="cognite.client")
    assert global_config.disable_gzip is False  # the SDK's default: bodies go out gzipped

    execution = alice.workflows.executions.retry(acme["failed"])

    assert isinstance(execution, WorkflowExecution)
    assert execution.id == acme["failed"]
    assert execution.status == "running"
    assert execution.workflow_external_id == "order-fulfilment" and execution.version == "1"
    assert execution.end_time is None and execution.reason_for_incompletion is None

    # Two requests went out, session first, both POSTs with gzip bodies.
    sent = [(r.getMessage(), r.headers) for r in sdk_requests(caplog)]
    assert [message.split(" ")[1:3] for message, _ in sent] == [
        ["POST", f"{alice.config.base_url}/api/v1/projects/acme-prod/sessions"],
        [
            "POST",
            f"{alice.config.base_url}/api/v1/projects/acme-prod/workflows/executions/"
            f"{acme['failed']}/retry",
        ],
    ]
    assert all(headers["content-encoding"] == "gzip" for _, headers in sent)

    # The session the SDK made is alice's, and its nonce is spent.
    session = WorkflowSession.objects.get()
    assert session.user.username == "alice" and session.type == "TOKEN_EXCHANGE"
    assert session.used_at is not None
    # The retried task runs as the session's identity, and the attempt records it.
    retried = WorkflowTaskExecution.objects.get(
        execution_id=acme["failed"], task_external_id="reserve-stock"
    )
    assert retried.status == "SCHEDULED" and retried.run_as == "user:alice"
    attempt = Attempt.objects.get(kind="workflow", object_id=acme["failed"])
    assert attempt.status == "FAILED"
    assert attempt.details["runAs"] == "user:alice"
    assert attempt.details["session"] == session.pk

    run_worker()

    detailed = alice.workflows.executions.retrieve_detailed(acme["failed"])
    assert detailed.status == "completed"
    tasks = {t.external_id: t.status for t in detailed.executed_tasks}
    # Resumed from the failure point: reserve-stock (flaky) now succeeds, ship-order runs after
    # it, the optional notify-analytics stays failed (optional tasks are not retried).
    assert tasks == {
        "validate-order": "completed",
        "reserve-stock": "completed",
        "ship-order": "completed",
        "notify-analytics": "failed",
    }
    assert WorkflowExecutionRow.objects.get(pk=acme["failed"]).attempt == 2


def test_retry_with_client_credentials_runs_as_that_api_key(cognite, login, manifest, acme):
    # client_credentials: the SDK sends {"clientId", "clientSecret"} to /sessions; Redrive's
    # client credentials are an API key of the tenant (clientId = its prefix).
    key = manifest["api_keys"]["dave"]
    prefix = key.split(".")[0]
    client = cognite(login("alice"), acme["project"])

    execution = client.workflows.executions.retry(
        acme["failed"], client_credentials=ClientCredentials(prefix, key)
    )

    assert execution.id == acme["failed"] and execution.status == "running"
    session = WorkflowSession.objects.get()
    assert session.type == "CLIENT_CREDENTIALS" and session.api_key.prefix == prefix
    task = WorkflowTaskExecution.objects.get(
        execution_id=acme["failed"], task_external_id="reserve-stock"
    )
    assert task.run_as == f"key:{prefix}"


def test_sessions_create_parses_and_the_nonce_is_single_use(alice, acme):
    session = alice.iam.sessions.create(session_type="TOKEN_EXCHANGE")
    assert isinstance(session.id, int) and session.status == "READY"
    assert session.type == "TOKEN_EXCHANGE" and len(session.nonce) >= 16

    retry = f"/api/v1/projects/{acme['project']}/workflows/executions/{acme['failed']}/retry"
    body = {"authentication": {"nonce": session.nonce}}
    first = alice.post(retry, json=body)
    assert first.status_code == 200 and first.json()["status"] == "RUNNING"

    # The same nonce again (the execution is failed again, so only the nonce can refuse it).
    WorkflowExecutionRow.objects.filter(pk=acme["failed"]).update(status="FAILED")
    with pytest.raises(CogniteAPIError) as replay:
        alice.post(retry, json=body)
    assert replay.value.code == 400
    assert replay.value.message == "authentication.nonce is not a valid, unused session nonce"


def test_a_nonce_of_another_tenant_is_refused(cognite, login, manifest, acme):
    globex = cognite(login("carol"), manifest["globex"]["workflows"]["project"])
    foreign_nonce = globex.iam.sessions.create().nonce
    alice = cognite(login("alice"), acme["project"])
    retry = f"/api/v1/projects/{acme['project']}/workflows/executions/{acme['failed']}/retry"

    with pytest.raises(CogniteAPIError) as err:
        alice.post(retry, json={"authentication": {"nonce": foreign_nonce}})

    assert err.value.code == 400 and "authentication.nonce" in err.value.message
    assert WorkflowExecutionRow.objects.get(pk=acme["failed"]).status == "FAILED"


def test_retrieve_detailed_parses_tasks_and_definition(alice, acme):
    detailed = alice.workflows.executions.retrieve_detailed(acme["failed"])

    assert isinstance(detailed, WorkflowExecutionDetailed)
    assert detailed.id == acme["failed"] and detailed.status == "failed"
    assert detailed.workflow_external_id == "order-fulfilment" and detailed.version == "1"
    assert isinstance(detailed.created_time, int) and detailed.end_time >= detailed.start_time
    assert detailed.input == {"orderId": "ord_4242"}
    assert [t.external_id for t in detailed.workflow_definition.tasks] == [
        "validate-order",
        "reserve-stock",
        "ship-order",
        "notify-analytics",
    ]
    tasks = {t.external_id: t for t in detailed.executed_tasks}
    assert tasks["validate-order"].status == "completed"
    assert tasks["reserve-stock"].status == "failed"
    assert "connection reset by peer" in tasks["reserve-stock"].reason_for_incompletion
    assert tasks["reserve-stock"].task_type == "function"
    assert tasks["reserve-stock"].input.external_id == "flaky"
    # dump() round-trips through the SDK's own serialisation.
    assert detailed.dump()["executedTasks"]


def test_list_parses_and_filters(alice, acme):
    failed = alice.workflows.executions.list(statuses=["FAILED"], limit=1000)
    assert isinstance(failed, WorkflowExecutionList)
    assert acme["failed"] in {e.id for e in failed}
    assert {e.status for e in failed} == {"failed"}
    assert acme["completed"] not in {e.id for e in failed}

    by_workflow = alice.workflows.executions.list(("nightly-report", "3"), limit=1000)
    assert acme["completed"] in {e.id for e in by_workflow}
    assert {(e.workflow_external_id, e.version) for e in by_workflow} == {("nightly-report", "3")}

    created = {e.id: e.created_time for e in failed}[acme["failed"]]
    newest = alice.workflows.executions.list(created_time_start=created, limit=2)
    assert len(newest) == 2
    assert all(isinstance(e.created_time, int) for e in newest)


def test_a_completed_execution_is_a_409_cognite_api_error(alice, acme):
    with pytest.raises(CogniteAPIError) as err:
        alice.workflows.executions.retry(acme["completed"])

    assert err.value.code == 409
    assert err.value.message == (
        "Workflow execution is COMPLETED; only FAILED, TIMED_OUT or TERMINATED executions "
        "can be retried"
    )
    assert err.value.x_request_id


def test_another_tenants_execution_is_a_404(alice, manifest):
    foreign = manifest["globex"]["workflows"]["failed"]

    with pytest.raises(CogniteNotFoundError) as err:
        alice.workflows.executions.retry(foreign)
    assert err.value.code == 404 and err.value.message == "Workflow execution not found"

    # retrieve_detailed too. (CDF answers 400 for an unknown id and the SDK then returns None;
    # Redrive answers 404 for an id it does not show you, like every endpoint, so it raises.)
    with pytest.raises(CogniteNotFoundError):
        alice.workflows.executions.retrieve_detailed(foreign)
    with pytest.raises(CogniteNotFoundError):
        alice.workflows.executions.retrieve_detailed(str(uuid.uuid4()))


def test_another_tenants_project_is_a_404(cognite, login, manifest):
    alice_in_globex = cognite(login("alice"), manifest["globex"]["workflows"]["project"])

    with pytest.raises(CogniteNotFoundError) as err:
        alice_in_globex.workflows.executions.retry(manifest["globex"]["workflows"]["failed"])

    assert err.value.code == 404 and err.value.message == "Project not found"


def test_a_viewer_token_is_a_403(cognite, login, acme):
    bob = cognite(login("bob"), acme["project"])

    with pytest.raises(CogniteAPIError) as err:
        bob.workflows.executions.retry(acme["failed"])

    assert err.value.code == 403
    assert err.value.message == "Missing permission workflowOrchestrationACL:WRITE"
    assert WorkflowExecutionRow.objects.get(pk=acme["failed"]).status == "FAILED"
    # Reading is allowed to a viewer.
    assert bob.workflows.executions.retrieve_detailed(acme["failed"]).status == "failed"


def test_a_bad_token_is_the_sdks_project_access_error(cognite, acme):
    client = cognite("not-a-jwt", acme["project"])

    # On a 401 the SDK asks /api/v1/token/inspect which projects the token may use; Redrive has
    # no such route (a JSON 404), so the error names none.
    with pytest.raises(CogniteProjectAccessError) as err:
        client.workflows.executions.retrieve_detailed(acme["failed"])

    assert err.value.project == "acme-prod" and err.value.maybe_projects is None


def test_an_unknown_path_is_a_cognite_error_in_cognites_shape(alice):
    # (GET .../workflows/nope is a route now: the workflow "nope", not found.)
    with pytest.raises(CogniteNotFoundError) as err:
        alice.get("/api/v1/projects/acme-prod/nope")

    assert err.value.code == 404
    assert err.value.message == "No API endpoint at GET /api/v1/projects/acme-prod/nope"
    with pytest.raises(CogniteNotFoundError) as err:
        alice.get("/api/v1/projects/acme-prod/workflows/nope")
    assert err.value.message == "Workflow not found"
