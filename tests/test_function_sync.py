"""Seed 000's synchronous retry runs the function in a worker, never in the web server.

The request queues the new execution and waits for a real `manage.py worker` to finish it: it
answers the worker's result; with no worker (or one too slow) it answers 504 with the execution
id and the execution goes on; a worker SIGKILLed mid-function is failed as "worker lost" by the
reaper, and the waiting request answers that failure.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from executions import leases, services
from executions.kinds.functions import run as functions_run
from executions.models import Function, FunctionExecution, Tenant

pytestmark = pytest.mark.django_db(transaction=True)

# Fails its first attempt, so that it can be retried; the retry doubles the payload.
FLAKY = """
if (context.attempt === 1) throw new Error("first attempt fails");
return {doubled: payload.n * 2};
"""
# Fails its first attempt; the retry runs for 60 s (outlives the test).
FLAKY_THEN_BUSY = """
if (context.attempt === 1) throw new Error("first attempt fails");
const end = Date.now() + 60000;
while (Date.now() < end) {}
return {done: true};
"""
# A handler that only the worker has (registered by its hook): it says which process ran it.
WHOAMI = """
from executions.handlers import handler
handler("test.whoami")(lambda ctx: {"pid": os.getpid(), "attempt": ctx.attempt})
"""


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme-prod")


@pytest.fixture
def api_key(tenant) -> str:
    _, secret = services.create_api_key(tenant, name="script", permissions=["functions:retry"])
    return secret


def failed_execution(tenant: Tenant, **definition) -> FunctionExecution:
    """A failed execution of a new function (run here, by the test, as its fixture)."""
    function = Function.objects.create(tenant=tenant, name="fn", **definition)
    execution = FunctionExecution.objects.create(
        tenant=tenant,
        function=function,
        **function.definition(),
        payload={"n": 7},
        status="failed",
        error_message="first attempt fails",
    )
    return execution


def retry(key: str, execution: FunctionExecution, headers: dict | None = None):
    project = execution.tenant.functions_project_id
    path = (
        f"/api/functions/projects/{project}/functions/{execution.function_id}"
        f"/executions/{execution.pk}/retry"
    )
    return Client().post(
        path, content_type="application/json", headers={"X-API-Key": key, **(headers or {})}
    )


def test_the_retry_answers_the_result_the_worker_recorded(tenant, api_key, worker_process):
    worker_process()
    original = failed_execution(tenant, code=FLAKY)

    response = retry(api_key, original)

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["success"], data["result"], data["error"]) == (True, {"doubled": 14}, None)
    new = FunctionExecution.objects.get(pk=data["executionId"])
    assert (new.status, new.retry_of_id, new.retry_count) == ("success", original.pk, 1)


def test_an_idle_worker_takes_a_queued_retry_at_once_not_at_its_next_look(
    tenant, api_key, worker_process
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (the enqueue wakes the worker with NOTIFY)")
    worker_process(args=("--interval", "5"))  # looks at the queue every 5 s on its own
    original = failed_execution(tenant, code=FLAKY)
    # The first retry may be taken by the worker's first look. Right after running it, the worker
    # looks once more, finds nothing and waits: up to its 5 s but for a wake.
    assert retry(api_key, original).status_code == 200

    started = time.monotonic()
    response = retry(api_key, original)
    took = time.monotonic() - started

    assert response.status_code == 200, response.content
    assert response.json()["data"]["result"] == {"doubled": 14}
    assert took < 2.5, f"the idle worker took the retry after {took:.2f} s"


def test_the_function_runs_in_the_worker_process(tenant, api_key, worker_process):
    # The handler exists only in the worker: run in the web process, it would fail as unknown.
    worker = worker_process(hook=WHOAMI)
    original = failed_execution(tenant, handler="test.whoami")

    response = retry(api_key, original)

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["success"] is True
    assert data["result"] == {"pid": worker.pid, "attempt": 2}


def test_with_no_worker_it_answers_504_with_the_execution_id_and_the_execution_goes_on(
    tenant, api_key, worker_process, settings, wait_until
):
    settings.REDRIVE_SYNC_WAIT_GRACE_MS = 0  # wait the function's timeout only
    original = failed_execution(tenant, code=FLAKY, timeout_ms=500)
    key = {"Idempotency-Key": "retry-once"}

    response = retry(api_key, original, key)

    assert response.status_code == 504, response.content
    body = response.json()
    new_id = FunctionExecution.objects.get(retry_of=original).pk
    assert body == {
        "success": False,
        "error": f"Execution {new_id} is still running after 0.5 s; it goes on in a worker: "
        "read its result from the execution later",
        "executionId": new_id,
    }
    # Queued, never taken: nothing ran it, not the web server either.
    new = FunctionExecution.objects.get(pk=new_id)
    assert (new.status, new.lease_token) == ("running", 0)

    worker_process()
    wait_until(
        lambda: FunctionExecution.objects.get(pk=new_id).status == "success",
        message="the worker to run the queued retry",
    )
    # The same request again (its key) answers that retry's result; it retries nothing more.
    again = retry(api_key, original, key)
    assert again.status_code == 200, again.content
    assert again.json()["data"]["executionId"] == new_id
    assert again.json()["data"]["result"] == {"doubled": 14}
    assert FunctionExecution.objects.filter(retry_of=original).count() == 1


def test_a_worker_killed_mid_function_gives_the_waiting_request_worker_lost(
    tenant, api_key, worker_process, wait_until
):
    original = failed_execution(tenant, code=FLAKY_THEN_BUSY)
    doomed = worker_process(lease_seconds=2)
    answered: list = []

    def request() -> None:
        try:
            answered.append(retry(api_key, original))
        finally:
            connection.close()  # this thread's

    waiting = threading.Thread(target=request)
    waiting.start()
    try:
        # Taken by the worker and renewed once (its first expiry includes the function's timeout).
        wait_until(
            lambda: FunctionExecution.objects.filter(
                retry_of=original,
                lease_token=1,
                lease_owner__contains=f":{doomed.pid}:",
                lease_expires_at__lt=timezone.now() + timedelta(seconds=10),
            ).exists(),
            message="the worker to take the retry and renew its lease",
        )
        doomed.kill_session()
        worker_process(lease_seconds=2)  # its reaper fails the lost attempt
        waiting.join(timeout=60)
        assert not waiting.is_alive(), "the request still waits"
    finally:
        waiting.join(timeout=120)

    (response,) = answered
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["success"], data["error"]) == (False, leases.WORKER_LOST)
    assert FunctionExecution.objects.get(pk=data["executionId"]).status == "failed"


def test_invoking_a_function_snapshots_its_definition(tenant):
    function = Function.objects.create(
        tenant=tenant,
        name="fn",
        code="return 1;",
        environment={"TOKEN": {"value": "s3cret", "secret": True}},
        memory_mb=32,
        timeout_ms=1234,
        version=3,
    )
    execution = functions_run.invoke_function(function, {}, queued=True)
    assert execution.definition() == function.definition()
    assert function.definition()["function_version"] == 3
