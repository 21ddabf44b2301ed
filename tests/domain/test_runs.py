"""Seed 004's rule: a new run resuming from the failure point, outputs that succeeded carried over
and not executed again; only once per run."""

from __future__ import annotations

import pytest

from executions import services
from executions.errors import NotRetryable
from executions.kinds.runs import run as runs_run
from executions.models import Run


@pytest.mark.django_db(transaction=True)
def test_succeeded_nodes_are_carried_over_and_not_executed_again(
    handler_calls, items, admin, run_worker
):
    run_id = items.failed("run")
    original = Run.objects.get(pk=run_id)
    assert original.node_states["fetch"]["status"] == "success"
    assert original.node_states["transform"]["status"] == "failure"
    assert original.node_states["publish"]["status"] == "skipped"
    assert handler_calls.count("fetch") == 1

    outcome = services.retry_run(admin, run_id)
    run_worker()

    new = Run.objects.get(pk=outcome.new_id)
    assert (new.status, new.source_run_id) == ("success", run_id)
    assert new.workflow_definition == original.workflow_definition
    assert new.prop_values == original.prop_values
    assert new.execution_state["fetch"] == original.execution_state["fetch"]
    assert new.node_states["fetch"] == {"status": "success", "carriedOver": True}
    assert new.node_states["transform"]["status"] == "success"
    assert new.node_states["publish"]["status"] == "success"
    assert handler_calls.count("fetch") == 1  # the call counter: not re-run


@pytest.mark.django_db
def test_a_second_retry_is_a_conflict_naming_the_run_that_retried_it(items, admin):
    run_id = items.failed("run")
    first = services.retry_run(admin, run_id)

    with pytest.raises(NotRetryable) as conflict:
        services.retry_run(admin, run_id)

    assert conflict.value.retried_by == first.new_id
    assert str(conflict.value) == f"Run {run_id} was already retried by run {first.new_id}"
    assert Run.objects.filter(source_run=run_id).count() == 1


@pytest.mark.django_db
def test_cancelled_and_partial_runs_are_retryable_and_successful_ones_are_not(items, admin):
    cancelled, partial, success = items.failed("run"), items.failed("run"), items.finished("run")
    Run.objects.filter(pk=cancelled).update(status="cancelled")
    Run.objects.filter(pk=partial).update(status="partial")

    assert services.retry_run(admin, cancelled).obj.source_run_id == cancelled
    assert services.retry_run(admin, partial).obj.source_run_id == partial
    with pytest.raises(NotRetryable, match="only failure, cancelled or partial"):
        services.retry_run(admin, success)


@pytest.mark.django_db
def test_a_run_stays_retried_once_even_after_its_retry_failed(items, admin):
    # Unlike function executions and jobs (issue 16.3), seed 004 retries a run once.

    run_id = items.failed("run", handler="fail")
    first = services.retry_run(admin, run_id)
    runs_run.execute(first.new_id)
    assert Run.objects.get(pk=first.new_id).status == "failure"

    with pytest.raises(NotRetryable) as conflict:
        services.retry_run(admin, run_id)

    assert str(conflict.value) == f"Run {run_id} was already retried by run {first.new_id}"
    assert Run.objects.filter(source_run=run_id).count() == 1
