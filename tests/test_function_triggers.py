"""Seed 000 functions started by themselves, with real workers (issue 19): a retryPolicy retries a
failed execution up to maxRetries, each retry a new execution in its lineage, backoffMs apart;
a cron function fires once per tick however many workers run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions.kinds.functions import starting
from executions.models import Function, FunctionExecution, Tenant

pytestmark = pytest.mark.django_db(transaction=True)

ALWAYS_FAILS = "throw new RangeError('attempt ' + context.attempt + ' of ' + payload.id);"


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme-prod")


def lineage(first: FunctionExecution) -> list[FunctionExecution]:
    chain = [FunctionExecution.objects.get(pk=first.pk)]
    while (nxt := FunctionExecution.objects.filter(retry_of=chain[-1]).first()) is not None:
        chain.append(nxt)
    return chain


def test_a_retry_policy_retries_a_failure_up_to_max_retries_in_its_lineage(tenant, run_worker):
    function = Function.objects.create(
        tenant=tenant,
        name="flaky",
        code=ALWAYS_FAILS,
        retry_enabled=True,
        retry_max=2,
        retry_backoff_ms=0,
    )
    first = starting.start(function, {"id": "o-1"}, invoked_by="api_key")

    run_worker()  # runs the queue dry, the retries the worker itself queued included

    chain = lineage(first)
    assert [e.retry_count for e in chain] == [0, 1, 2]
    assert all(e.status == "failed" and e.error_class == "RangeError" for e in chain)
    assert [e.error_message for e in chain] == [f"attempt {n} of o-1" for n in (1, 2, 3)]
    assert all(e.payload == {"id": "o-1"} and e.invoked_by == "api_key" for e in chain)
    # Each names its retry; the last is final: maxRetries reached.
    assert [e.retried_by_id for e in chain] == [chain[1].pk, chain[2].pk, None]
    assert FunctionExecution.objects.filter(function=function).count() == 3


def test_without_a_retry_policy_a_failure_stays_failed(tenant, run_worker):
    function = Function.objects.create(tenant=tenant, name="flaky", code=ALWAYS_FAILS)
    first = starting.start(function, {"id": "o-2"}, invoked_by="manual")
    run_worker()
    assert [e.status for e in lineage(first)] == ["failed"]


def test_retries_wait_backoff_ms(tenant, worker_process, wait_until):
    function = Function.objects.create(
        tenant=tenant,
        name="flaky",
        code=ALWAYS_FAILS,
        retry_enabled=True,
        retry_max=1,
        retry_backoff_ms=1500,
    )
    first = starting.start(function, {"id": "o-3"}, invoked_by="manual")
    worker_process()

    def retried():
        chain = lineage(first)
        return chain if len(chain) == 2 and chain[1].final else None

    original, retry = wait_until(retried, timeout=60, message="the automatic retry")
    started = retry.finished_at - timedelta(milliseconds=retry.execution_time)
    assert started - original.finished_at >= timedelta(milliseconds=1500)


def test_a_cron_function_fires_once_per_tick_with_two_workers(tenant, worker_process, wait_until):
    function = Function.objects.create(
        tenant=tenant,
        name="every-minute",
        code="return {tick: true};",
        trigger={"type": "cron", "schedule": "minutely"},
    )
    env = {"REDRIVE_CRON_CHECK_MS": "20"}
    workers = [worker_process(env=env), worker_process(env=env)]
    runs = FunctionExecution.objects.filter(function=function)
    for tick in range(1, 4):
        # The tick has come (as if a minute had passed): both workers see it due.
        Function.objects.filter(pk=function.pk).update(
            next_fire_at=timezone.now() - timedelta(seconds=1)
        )
        wait_until(
            lambda n=tick: len(done := list(runs.all())) >= n and all(e.final for e in done),
            timeout=60,
            message=f"tick {tick} to run",
        )
        function.refresh_from_db()
        assert function.next_fire_at > timezone.now()
    assert runs.all().count() == 3
    assert {(e.status, e.invoked_by) for e in runs.all()} == {("success", "cron")}
    assert all(w.alive() for w in workers)
