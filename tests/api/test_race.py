"""Two HTTP retries of the same item at the same moment: exactly one succeeds, the other gets the
seed's state error. Real commits (transaction=True) and two threads, each with its own database
connection."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection
from django.test import Client

from executions.kinds.jobs import run as jobs_run
from executions.models import FunctionExecution, Job, Run

from .conftest import fn_base, wf_base

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pg_only]


def race(requests: list) -> list:
    """Run each zero-argument callable in its own thread, released together."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = requests[i]()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def post(key: str, path: str, body=None):
    import json

    def call():
        return Client().generic(
            "POST",
            path,
            json.dumps(body).encode() if body is not None else b"",
            content_type="application/json",
            headers={"X-API-Key": key},
        )

    return call


def test_racing_run_retries_make_one_run(manifest):
    key, pk = manifest["api_keys"]["alice"], manifest["acme"]["runs"]["failure"]
    results = race([post(key, f"/v1/runs/{pk}/retry"), post(key, f"/v1/runs/{pk}/retry")])
    assert sorted(r.status_code for r in results) == [200, 409]
    assert Run.objects.filter(source_run=pk).count() == 1
    loser = next(r for r in results if r.status_code == 409).json()
    winner = next(r for r in results if r.status_code == 200).json()
    assert loser["message"] == f"Run {pk} was already retried by run {winner['data']['id']}"


def test_racing_job_retries_make_one_clone(manifest):
    key, pk = manifest["api_keys"]["alice"], manifest["acme"]["jobs"]["failed"]
    results = race([post(key, f"/job/{pk}/retry"), post(key, f"/job/{pk}/retry")])
    assert sorted(r.status_code for r in results) == [201, 400]
    assert Job.objects.filter(retry_of=pk).count() == 1
    clone = next(r for r in results if r.status_code == 201).json()["job_id"]
    loser = next(r for r in results if r.status_code == 400).json()
    # The loser's state error names the clone in flight (seed 002's shape).
    assert loser == {
        "error": f"Job was already retried as {clone}, which is still unprocessed",
        "details": f"already retried by {clone}",
        "code": 400,
    }


def test_racing_retries_of_a_job_cloned_before_make_one_new_clone(manifest):
    # Once the first clone is finished the job may be cloned again (issue 16.3): two such
    # retries at once still make one clone.
    key, pk = manifest["api_keys"]["alice"], manifest["acme"]["jobs"]["failed"]
    first = post(key, f"/job/{pk}/retry")().json()["job_id"]
    jobs_run.execute(first, "worker-9")
    assert Job.objects.get(pk=first).status in ("completed", "failed")
    path = f"/job/{pk}/retry"
    results = race([post(key, path, {"target_hostname": "web-01"}) for _ in range(2)])
    assert sorted(r.status_code for r in results) == [201, 400], [r.content for r in results]
    clone = next(r for r in results if r.status_code == 201).json()["job_id"]
    assert set(Job.objects.filter(retry_of=pk).values_list("pk", flat=True)) == {
        uuid.UUID(first),
        uuid.UUID(clone),
    }
    loser = next(r for r in results if r.status_code == 400).json()
    assert loser["error"] == f"Job was already retried as {clone}, which is still unprocessed"


def test_racing_automation_retries_reset_once(manifest):
    key, pk = manifest["api_keys"]["alice"], manifest["acme"]["automations"]["failed"]
    path = f"/api/v1/automation/executions/{pk}/retry"
    results = race([post(key, path), post(key, path)])
    assert sorted(r.status_code for r in results) == [200, 400]


def test_racing_function_retries_run_once(manifest, sync_worker):
    key, items = manifest["api_keys"]["alice"], manifest["acme"]
    path = f"{fn_base(items)}/retry/0"
    original = (
        FunctionExecution.objects.filter(function_id=items["functions"]["function_id"])
        .order_by("-executed_at", "-id")
        .first()
    )
    results = race([post(key, path), post(key, path)])
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 400], [r.content for r in results]
    assert FunctionExecution.objects.filter(retry_of=original).count() == 1
    # The loser names the winner's retry: still running, or made while the loser waited; or,
    # having read index 0 after the winner committed, it found the winner's retry there (the
    # log is newest first), still running in the worker.
    new = next(r for r in results if r.status_code == 200).json()["data"]["executionId"]
    loser = next(r for r in results if r.status_code == 400).json()
    assert loser["success"] is False
    assert loser["error"] in (
        f"Execution was already retried as {new}, which is still running",
        f"Execution was already retried as {new} by a concurrent request",
        "Cannot retry an execution that is still running",
    )


def session_nonce(key: str, items: dict) -> str:
    """A new session's nonce (POST /sessions), as Cognite's SDK gets one to run or retry with."""
    return (
        Client()
        .post(
            f"{wf_base(items)}/sessions",
            {"items": [{"tokenExchange": True}]},
            content_type="application/json",
            headers={"X-API-Key": key},
        )
        .json()["items"][0]["nonce"]
    )


def test_racing_workflow_retries_resume_once(manifest):
    key, items = manifest["api_keys"]["alice"], manifest["acme"]
    nonces = [session_nonce(key, items) for _ in range(2)]
    path = f"{wf_base(items)}/workflows/executions/{items['workflows']['failed']}/retry"
    results = race([post(key, path, {"authentication": {"nonce": n}}) for n in nonces])
    assert sorted(r.status_code for r in results) == [200, 409]


def test_racing_runs_with_one_nonce_start_one(manifest):
    from executions.models import Workflow, WorkflowExecution

    key, items = manifest["api_keys"]["alice"], manifest["acme"]
    workflow = Workflow.objects.filter(tenant__workflows_project=items["workflows"]["project"])[0]
    nonce = session_nonce(key, items)
    path = f"{wf_base(items)}/workflows/{workflow.external_id}/versions/{workflow.version}/run"
    before = WorkflowExecution.objects.filter(workflow=workflow).count()
    results = race([post(key, path, {"authentication": {"nonce": nonce}}) for _ in range(2)])
    assert sorted(r.status_code for r in results) == [201, 400]
    assert WorkflowExecution.objects.filter(workflow=workflow).count() == before + 1


def test_racing_same_idempotency_key_answers_the_same_run(manifest):
    key, pk = manifest["api_keys"]["alice"], manifest["acme"]["runs"]["failure"]

    def call():
        return Client().generic(
            "POST",
            f"/v1/runs/{pk}/retry",
            headers={"X-API-Key": key, "Idempotency-Key": "same-key-race"},
        )

    results = race([call, call])
    # One runs; the other gets 409 while it is in flight, or its response replayed once stored.
    first = next(
        r for r in results if r.status_code == 200 and not r.has_header("Idempotent-Replayed")
    )
    other = next(r for r in results if r is not first)
    if other.status_code == 200:
        assert other["Idempotent-Replayed"] == "true" and other.json() == first.json()
    else:
        assert other.status_code == 409, other.content
        assert other.json()["message"] == (
            'A request with Idempotency-Key "same-key-race" is still in progress; repeat it '
            "once it has finished"
        )
    assert list(Run.objects.filter(source_run=pk).values_list("pk", flat=True)) == [
        first.json()["data"]["id"]
    ]
