"""An attempt the reaper fails ("worker lost") is a failure like a worker's own: it sends
`execution.failed` to the subscriptions that take it and is counted in its error group (a first
one sends `failure.new_group`), in the reaper's transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from executions import reaper
from executions.kinds.jobs import run as jobs_run
from executions.kinds.workflows import run as workflows_run
from executions.models import (
    AutomationExecution,
    AutomationRule,
    FailureGroup,
    Function,
    FunctionExecution,
    Job,
    OutboxEvent,
    Run,
    Workflow,
)
from executions.webhooks import subscriptions

pytestmark = pytest.mark.django_db


def _expired() -> dict:
    return {"lease_owner": "web-1:4242:dead", "lease_expires_at": timezone.now() - timedelta(1)}


def lost_attempts(tenant) -> dict[str, str]:
    """One running attempt per kind whose worker stopped renewing its lease: kind -> id."""
    function = Function.objects.create(tenant=tenant, name="charge", code="return 1")
    fn = FunctionExecution.objects.create(
        tenant=tenant, function=function, payload={}, status="running", **_expired()
    )
    rule = AutomationRule.objects.create(tenant=tenant, name="sync", actions=[])
    auto = AutomationExecution.objects.create(
        tenant=tenant, automation_rule=rule, status="running", **_expired()
    )
    run = Run.objects.create(
        tenant=tenant, workflow_id="wf", workflow_definition={}, status="running", **_expired()
    )
    with transaction.atomic():
        job = jobs_run.create_job(tenant, {"type": "service.restart", "data": {}})
    Job.objects.filter(pk=job.pk).update(status="processing", lease_token=1, **_expired())
    return {"function": str(fn.pk), "automation": str(auto.pk), "run": run.pk, "job": str(job.pk)}


def sent(name: str) -> list[dict]:
    return list(OutboxEvent.objects.filter(name=name).values_list("payload", flat=True))


def test_the_reapers_failures_send_execution_failed_and_join_their_group(
    allow_local, admin, tenant, receiver
):
    subscriptions.create(
        admin, {"url": receiver.url, "events": ["execution.failed", "failure.new_group"]}
    )
    lost = lost_attempts(tenant)

    counts = reaper.reap()

    assert {k: counts[k] for k in lost} == dict.fromkeys(lost, 1)
    failed = {(p["kind"], p["id"]): p for p in sent("execution.failed")}
    assert set(failed) == set(lost.items())
    assert all(p["error"].startswith("worker lost") for p in failed.values())
    # Counted in the one "worker lost" group (the same message in every kind), which is new:
    # one failure.new_group, for the first failure the reaper counted.
    (group,) = FailureGroup.objects.filter(tenant=tenant)
    assert {p["fingerprint"] for p in failed.values()} == {group.fingerprint}
    (new_group,) = sent("failure.new_group")
    assert (new_group["kind"], new_group["executionId"]) in set(lost.items())
    # A second round finds nothing: nothing is failed, or sent, twice.
    assert not any(reaper.reap().values())
    assert len(sent("execution.failed")) == len(lost)


def test_an_attempt_that_finished_before_the_reaper_looked_is_not_reaped(admin, tenant):
    lost = lost_attempts(tenant)
    FunctionExecution.objects.filter(pk=lost["function"]).update(
        status="success", lease_owner="", lease_expires_at=None
    )
    assert reaper.reap()["function"] == 0
    assert FunctionExecution.objects.get(pk=lost["function"]).status == "success"


def test_a_terminated_workflow_sends_execution_failed(allow_local, admin, tenant, receiver):
    subscriptions.create(admin, {"url": receiver.url, "events": ["execution.failed"]})
    workflow = Workflow.objects.create(
        tenant=tenant, external_id="nightly", version="1", tasks=[{"externalId": "a"}]
    )
    execution = workflows_run.new_execution(workflow)

    assert workflows_run.terminate_workflow(str(execution.pk), "stopped by hand")

    (event,) = sent("execution.failed")
    assert (event["kind"], event["id"], event["status"]) == (
        "workflow",
        str(execution.pk),
        "TERMINATED",
    )
    assert event["error"] == "stopped by hand"
