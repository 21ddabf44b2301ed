"""The SSRF guard and the time limit of HTTP work, through the kinds and real workers: an
automation action, a run node and a workflow task naming 127.0.0.1 fail with "host not allowed"
when REDRIVE_HTTP_ALLOW does not name it (and the server never hears of them); a redirect from an
allowed local server to a private address is refused before connecting; a request that outlives
its timeout is recorded as timed out, with the request and the limit in the message."""

from __future__ import annotations

import pytest
from django.db import transaction

from executions.kinds.automations import run as automations_run
from executions.kinds.runs import run as runs_run
from executions.kinds.workflows import run as workflows_run
from executions.models import AutomationRule, Tenant, Workflow

pytestmark = pytest.mark.django_db(transaction=True)

ALLOW_LOCAL = {"REDRIVE_HTTP_ALLOW": "127.0.0.1"}
METADATA = "http://169.254.169.254/latest/meta-data/"


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme")


@pytest.fixture
def server(http_server):
    return http_server()


def one_of_each(tenant, unit: dict, task_timeout: float | None = None):
    """An automation, a workflow execution and a run, each running `unit` (after a first unit
    that succeeds), queued for a worker."""
    rule = AutomationRule.objects.create(
        tenant=tenant, name="call", actions=[{"handler": "noop"}, unit]
    )
    task = {"externalId": "call", "type": "http", **unit, "dependsOn": ["first"]}
    if task_timeout:
        task["timeout"] = task_timeout
    workflow = Workflow.objects.create(
        tenant=tenant,
        external_id="call",
        version="1",
        tasks=[{"externalId": "first", "handler": "noop"}, task],
    )
    definition = {
        "nodes": {"root": {}, "call": {"type": "http", **unit, "dependsOn": ["root"]}},
        "triggerNodeIds": ["root"],
    }
    with transaction.atomic():
        automation = automations_run.start_automation(rule, {})
        flow = workflows_run.start_workflow(workflow)
        run = runs_run.start_run(tenant, definition, workflow_id="wf-call")
    return automation, flow, run


def settled(automation, flow, run):
    for obj in (automation, flow, run):
        obj.refresh_from_db()
    return automation, flow, flow.task_executions.get(task_external_id="call"), run


def test_a_loopback_address_not_named_in_the_allow_list_is_refused_by_every_kind(
    tenant, server, run_worker
):
    url = server.url("/json")
    automation, flow, run = one_of_each(tenant, {"url": url})

    run_worker()  # REDRIVE_HTTP_ALLOW is its default, `*`: public addresses only

    automation, flow, task, run = settled(automation, flow, run)
    refused = "host not allowed: 127.0.0.1"
    assert (automation.status, automation.failed_action_index) == ("failed", 1)
    assert automation.error_message == refused
    assert automation.logs[-1]["message"] == f"action 1 (GET {url}) failed: {refused}"
    assert (task.status, task.error_message) == ("FAILED", refused)
    assert (flow.status, flow.error_message) == ("FAILED", refused)
    assert (run.status, run.error_message) == ("failure", refused)
    assert run.node_states["call"]["error"] == refused
    # Refused before connecting: the server never saw a request.
    assert server.requests == []
    # The same failure is one error group in each kind.
    assert automation.fingerprint and run.fingerprint and flow.fingerprint


def test_a_redirect_from_an_allowed_server_to_a_private_address_is_refused(
    tenant, server, run_worker
):
    unit = {"url": server.url(f"/redirect?to={METADATA}")}
    automation, flow, run = one_of_each(tenant, unit)

    run_worker(env=ALLOW_LOCAL)

    automation, flow, task, run = settled(automation, flow, run)
    refused = "host not allowed: 169.254.169.254"
    assert (automation.status, automation.error_message) == ("failed", refused)
    assert (task.status, task.error_message) == ("FAILED", refused)
    assert (run.status, run.error_message) == ("failure", refused)
    # Each followed the allowed server's answer, and went no further.
    assert [r["path"] for r in server.requests] == [f"/redirect?to={METADATA}"] * 3


def test_a_request_that_outlives_its_timeout_is_recorded_as_timed_out(tenant, server, run_worker):
    url = server.url("/slow")
    automation, flow, run = one_of_each(tenant, {"url": url, "timeout": 1}, task_timeout=1)

    run_worker(env=ALLOW_LOCAL)

    automation, flow, task, run = settled(automation, flow, run)
    message = f"GET {url}: timed out after 1s"
    # Seed 001 retries only `failed` executions: a timed-out action fails the execution.
    assert (automation.status, automation.error_message) == ("failed", message)
    assert (task.status, task.error_message) == ("TIMED_OUT", message)
    assert flow.status == "TIMED_OUT"
    assert flow.reason_for_incompletion == f"Task call TIMED_OUT: {message}"
    assert (run.status, run.error_message) == ("failure", message)
    assert len(server.requests) == 3  # each was sent, and given up on at its limit
