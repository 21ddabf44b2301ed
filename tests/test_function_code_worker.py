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
