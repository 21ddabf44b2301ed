"""The events Redrive emits, end to end with a real worker: a bulk retry of two failed
automation executions (one succeeds on retry, one fails again) sends the seed's
automation.execution.retried for each, retry.finished with each outcome, execution.failed for
the one that failed again, and bulk_retry.finished."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from executions import filters, services
from executions.models import AutomationExecution, AutomationRule

from .conftest import WORKER_ENV, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = [
    "automation.execution.retried",
    "retry.finished",
    "execution.failed",
    "bulk_retry.finished",
]


def failed(tenant, name: str, handler: str) -> AutomationExecution:
    actions = [{"handler": handler}]  # the demo's noop, or fail
    rule = AutomationRule.objects.create(tenant=tenant, name=name, actions=actions)
    return AutomationExecution.objects.create(
        tenant=tenant,
        automation_rule=rule,
        status="failed",
        error_message="first failure",
        execution_context={"actions": actions},
        actions_total=1,
    )


def test_a_bulk_retry_sends_every_event(allow_local, admin, tenant, receiver, worker_process):
    ok, again = failed(tenant, "ok", "noop"), failed(tenant, "again", "fail")
    from executions.webhooks import subscriptions

    _, secret = subscriptions.create(admin, {"url": receiver.url, "events": EVENTS})
    worker_process(env=WORKER_ENV)
    services.start_bulk_retry(admin, {"filter": filters.parse({"kind": "automation"})})
    wait_for(lambda: len(receiver.unique()) >= 6, 60, "six events")
    got = [Webhook(secret).verify(r.body, r.headers) for r in receiver.unique()]
    by_type: dict[str, list] = {}
    for event in got:
        by_type.setdefault(event["type"], []).append(event["data"])
    retried = by_type["automation.execution.retried"]
    assert {d["executionId"] for d in retried} == {str(ok.pk), str(again.pk)}
    assert set(retried[0]) == {"executionId", "tenantId", "userId"}
    outcomes = {d["id"]: d["outcome"] for d in by_type["retry.finished"]}
    assert outcomes == {str(ok.pk): "succeeded", str(again.pk): "failed"}
    assert [d["id"] for d in by_type["execution.failed"]] == [str(again.pk)]
    (bulk,) = by_type["bulk_retry.finished"]
    assert (bulk["status"], bulk["retried"], bulk["failed"]) == ("finished", 2, 0)
