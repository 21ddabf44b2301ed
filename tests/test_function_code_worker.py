"""Functions' JavaScript run by a real worker process (issue 18): queued executions get their
result, or their error with class, stack and console logs; an endless loop times out and the
worker goes on with the next execution."""

from __future__ import annotations

import pytest
from django.db import transaction

from executions.kinds.functions import run as functions_run
from executions.models import Function, FunctionExecution, Tenant

pytestmark = pytest.mark.django_db(transaction=True)

CODE = """
console.log('charging', payload.amount);
if (payload.fail) throw new TypeError('declined: ' + payload.amount);
return {charged: payload.amount, attempt: context.attempt};
"""


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme")


def queue(function: Function, payload: dict) -> FunctionExecution:
    with transaction.atomic():
        return functions_run.invoke_function(function, payload)


def test_a_worker_runs_the_code_and_records_result_or_error(tenant, run_worker):
    function = Function.objects.create(tenant=tenant, name="charge", code=CODE, timeout_ms=5_000)
    ok = queue(function, {"amount": 3})
    failed = queue(function, {"amount": 4, "fail": True})

    run_worker()

    ok.refresh_from_db()
    failed.refresh_from_db()
    assert ok.status == "success" and ok.result == {"charged": 3, "attempt": 1}
    assert failed.status == "failed" and failed.error_message == "declined: 4"
    assert failed.error_class == "TypeError" and "function.js:3" in failed.error_stack
    assert [e["message"] for e in failed.logs] == ["charging 4"]


def test_an_endless_loop_times_out_and_the_worker_goes_on(tenant, run_worker):
    spin = Function.objects.create(
        tenant=tenant, name="spin", code="while (true) {}", timeout_ms=500
    )
    ok = Function.objects.create(tenant=tenant, name="ok", code="return payload", timeout_ms=5_000)
    looping = queue(spin, {})
    after = queue(ok, {"next": True})

    run_worker()

    looping.refresh_from_db()
    after.refresh_from_db()
    assert looping.status == "timeout" and "timed out after 500 ms" in looping.error_message
    assert after.status == "success" and after.result == {"next": True}
    # Queued after the loop, it ran after it: the same worker, its sandbox renewed.
    assert after.finished_at > looping.finished_at


def test_a_bulk_retry_runs_its_executions_in_batches_each_with_its_own_outcome(
    tenant, run_worker, monkeypatch
):
    from django.contrib.auth import get_user_model
    from django_tasks_db.models import DBTaskResult

    from executions.kinds import functions
    from executions.kinds.functions import retry as functions_retry
    from executions.models import Membership
    from executions.tenancy import Actor

    monkeypatch.setattr(functions_retry, "TASK_BATCH", 2)
    alice = get_user_model().objects.create_user("alice", password="alice-pass-2026")
    Membership.objects.create(user=alice, tenant=tenant, role="admin")
    function = Function.objects.create(tenant=tenant, name="charge", code=CODE, timeout_ms=5_000)
    payloads = [{"amount": 1}, {"amount": 2}, {"amount": 3, "fail": True}, {"amount": 4}, {}]
    originals = [
        FunctionExecution.objects.create(
            tenant=tenant, function=function, code=CODE, payload=p, status="failed"
        )
        for p in payloads
    ]
    actor = Actor.for_user(alice, tenant, source="cli")
    with transaction.atomic():
        retried = functions.KIND.rule.retry(actor, [o.pk for o in originals])
    # Five executions, two to a task: three tasks, not five.
    batches = [t.args_kwargs["args"][0] for t in DBTaskResult.objects.all()]
    assert sorted(len(b) for b in batches) == [1, 2, 2]

    run_worker()

    by_payload = {}
    for r in retried:
        new = FunctionExecution.objects.get(pk=r.new_id)
        by_payload[new.payload.get("amount")] = new
    for amount in (1, 2, 4):
        new = by_payload[amount]
        assert new.status == "success" and new.result == {"charged": amount, "attempt": 2}
        # Each execution's console is its own, though they ran one after another in one task.
        assert [e["message"] for e in new.logs] == [f"charging {amount}"]
        assert new.execution_time is not None and new.finished_at is not None
        assert new.lease_owner == "" and new.lease_expires_at is None
    failed = by_payload[3]
    assert failed.status == "failed" and failed.error_message == "declined: 3"
    assert failed.error_class == "TypeError" and [e["message"] for e in failed.logs] == [
        "charging 3"
    ]
    assert by_payload[None].status == "success" and by_payload[None].result == {"attempt": 2}
