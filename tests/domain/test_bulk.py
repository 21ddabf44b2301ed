"""Bulk retry: a preview that counts right, set-based batches with progress, cancellation between
batches with nothing half-done, and the background task path through a real worker."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import pytest
from django.utils import timezone

from executions import filters, kinds, services
from executions.fingerprints import fingerprint
from executions.kinds.functions import run as functions_run
from executions.kinds.jobs import run as jobs_run
from executions.models import (
    Attempt,
    AuditEvent,
    AutomationExecution,
    AutomationRule,
    BulkRetry,
    Function,
    FunctionExecution,
    Job,
    Run,
    Workflow,
    WorkflowExecution,
    WorkflowTaskExecution,
)
from tests.audit import retried_in

from .conftest import MODELS

ERROR = "connection reset by peer (attempt 1; succeeds after 1)"


def failed_rows(tenant, kind: str, n: int, **extra) -> None:
    """n failed items of `kind`, inserted set-based (the shape the engine leaves behind)."""
    now = timezone.now()
    common = {
        "tenant": tenant,
        "error_message": ERROR,
        "error_stack": "Traceback…",
        "fingerprint": fingerprint(kind, "flaky", "ConnectionResetError", ERROR),
    }
    if kind == "automation":
        actions = [{"handler": "flaky"}]
        rule = AutomationRule.objects.create(tenant=tenant, name="bulk rule", actions=actions)
        AutomationExecution.objects.bulk_create(
            (
                AutomationExecution(
                    automation_rule=rule,
                    status="failed",
                    actions_total=1,
                    actions_failed=1,
                    failed_action_index=0,
                    updated_at=now,
                    execution_context={"actions": actions},
                    **common,
                    **extra,
                )
                for _ in range(n)
            ),
            batch_size=2000,
        )
    elif kind == "function":
        function = Function.objects.create(tenant=tenant, name="bulk fn", handler="flaky")
        FunctionExecution.objects.bulk_create(
            (
                FunctionExecution(
                    function=function, handler="flaky", status="failed", payload={}, **common
                )
                for _ in range(n)
            ),
            batch_size=2000,
        )
    elif kind == "job":
        op = extra.pop("op", "package.install")
        Job.objects.bulk_create(
            (
                Job(
                    operation={"type": op, "data": {"handler": "flaky"}},
                    operation_type=op,
                    status="failed",
                    updated_at=now,
                    **common,
                )
                for _ in range(n)
            ),
            batch_size=2000,
        )
    elif kind == "workflow":
        workflow = Workflow.objects.create(
            tenant=tenant,
            external_id="bulk",
            version="1",
            tasks=[{"externalId": "t", "handler": "flaky"}],
        )
        executions = WorkflowExecution.objects.bulk_create(
            (
                WorkflowExecution(workflow=workflow, status="FAILED", updated_at=now, **common)
                for _ in range(n)
            ),
            batch_size=2000,
        )
        WorkflowTaskExecution.objects.bulk_create(
            (
                WorkflowTaskExecution(
                    execution=e, task_external_id="t", status="FAILED", attempts=1
                )
                for e in executions
            ),
            batch_size=2000,
        )
    elif kind == "run":
        definition = {
            "triggerNodeIds": ["root"],
            "nodes": {
                "root": {"type": "trigger"},
                "a": {"handler": "flaky", "dependsOn": ["root"]},
            },
        }
        Run.objects.bulk_create(
            (
                Run(
                    workflow_id="bulk",
                    workflow_definition=definition,
                    status="failure",
                    node_states={"root": {"status": "success"}, "a": {"status": "failure"}},
                    execution_state={"root": {}},
                    **common,
                )
                for _ in range(n)
            ),
            batch_size=2000,
        )


@pytest.mark.django_db
def test_the_preview_counts_what_will_and_will_not_be_retried_and_why(tenant, operator):
    failed_rows(tenant, "automation", 3)
    AutomationExecution.objects.filter(pk=AutomationExecution.objects.first().pk).update(
        status="completed"
    )
    failed_rows(tenant, "job", 2)
    failed_rows(tenant, "job", 1, op="command.exec")
    flt = filters.parse({"kind": ["automation", "job"], "status": ["failed", "completed"]})

    preview = services.preview_retry(operator, {"filter": flt})

    assert preview["kinds"]["automation"] == {
        "will_retry": 2,
        "not_retryable": {"status is completed": 1},
    }
    assert preview["kinds"]["job"]["will_retry"] == 2
    assert preview["kinds"]["job"]["not_retryable"] == {"needs permission command:execute": 1}
    assert (preview["total"], preview["will_retry"], preview["not_retryable"]) == (6, 4, 2)


@pytest.mark.django_db
def test_a_bulk_retry_retries_again_what_a_final_retry_left_and_skips_retries_in_flight(
    items, admin
):
    # Issue 16.3 in the set-based path: a function execution or job whose retry failed is
    # retried again; one whose retry is still in flight is skipped, and said why.
    from django.db import transaction

    from executions import kinds

    again, busy = {}, {}
    for kind in ("function", "job"):
        again[kind], busy[kind] = items.failed(kind, "fail"), items.failed(kind, "fail")
        first = services.retry_one(admin, kind, again[kind], wait=False)
        if kind == "job":
            jobs_run.execute(first.new_id, "test-host")
        else:  # run here, as a worker would (the bulk path is what this test is about)
            functions_run.execute(first.new_id)
        assert MODELS[kind].objects.get(pk=first.new_id).status == "failed"
        with transaction.atomic():  # queued, never run: in flight
            kinds.get(kind).rule.retry(admin, [busy[kind]])
    selection = {"ids": {kind: [again[kind], busy[kind]] for kind in again}}

    preview = services.preview_retry(admin, selection)
    bulk = services.retry_many(admin, selection)

    assert preview["kinds"]["function"] == {
        "will_retry": 1,
        "not_retryable": {"retry still running": 1},
    }
    assert preview["kinds"]["job"] == {
        "will_retry": 1,
        "not_retryable": {"retry still in flight": 1},
    }
    assert (bulk.done, bulk.failed) == (2, 0)
    for kind in ("function", "job"):
        assert MODELS[kind].objects.filter(retry_of=again[kind]).count() == 2
        latest = MODELS[kind].objects.get(pk=again[kind]).retried_by
        assert latest.status in MODELS[kind].IN_FLIGHT and latest.retry_of_id == (
            MODELS[kind].objects.get(pk=again[kind]).pk
        )
        assert MODELS[kind].objects.filter(retry_of=busy[kind]).count() == 1


@pytest.mark.django_db
def test_ten_thousand_mixed_items_retry_through_retry_many(tenant, admin, capsys):
    plan = {"automation": 4000, "function": 2000, "job": 2000, "workflow": 1000, "run": 1000}
    for kind, n in plan.items():
        failed_rows(tenant, kind, n)

    started = time.perf_counter()
    bulk = services.retry_many(admin, {"filter": filters.parse({})})
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nretry_many: 10,000 mixed items in {elapsed:.2f}s")

    assert (bulk.status, bulk.total, bulk.done, bulk.failed) == ("finished", 10000, 10000, 0)
    # (Kinds with no failed items, such as webhook deliveries here, are listed with 0.)
    assert {k: v["retried"] for k, v in bulk.summary["kinds"].items() if v["retried"]} == plan
    assert AutomationExecution.objects.filter(status="pending", attempt=2).count() == 4000
    assert Attempt.objects.filter(kind="automation").count() == 4000
    assert (
        FunctionExecution.objects.filter(retry_of__isnull=False, status="running").count() == 2000
    )
    assert Job.objects.filter(retry_of__isnull=False, status="unprocessed").count() == 2000
    assert WorkflowExecution.objects.filter(status="RUNNING").count() == 1000
    assert WorkflowTaskExecution.objects.filter(status="SCHEDULED", max_attempts=2).count() == 1000
    assert Run.objects.filter(source_run__isnull=False, status="running").count() == 1000
    assert len(retried_in(bulk)) == 10000
    assert services.preview_retry(admin, {"filter": filters.parse({})})["will_retry"] == 0


@pytest.mark.django_db
def test_cancel_stops_between_batches_with_nothing_half_done(tenant, admin, monkeypatch):
    # Every kind's first batch the same size, automations' too.
    same = tuple(dataclasses.replace(kind, first_batch=None) for kind in kinds.KINDS)
    monkeypatch.setattr(kinds, "KINDS", same)
    failed_rows(tenant, "automation", 4 * services.FIRST_BATCH)
    bulk = BulkRetry.objects.create(tenant=tenant, actor=admin.label, source="api")
    answers = []

    def cancel_after_first_batch(done: int, failed: int) -> None:
        answers.append(services.cancel_bulk_retry(admin, bulk.pk))

    result = services.retry_many(
        admin,
        {"filter": filters.parse({"kind": "automation"})},
        bulk,
        progress=cancel_after_first_batch,
    )

    # The first batch of a kind is FIRST_BATCH items; the cancel came after it.
    first = services.FIRST_BATCH
    assert [(a.outcome, a.message) for a in answers] == [
        ("requested", "Cancel requested: the bulk retry stops after its current batch")
    ]
    assert (result.status, result.done, result.failed) == ("cancelled", first, 0)
    assert AutomationExecution.objects.filter(status="pending").count() == first
    assert Attempt.objects.count() == len(retried_in(result)) == first
    assert AutomationExecution.objects.filter(status="failed").count() == 3 * first


class WorkerKilled(BaseException):
    """Stands in for a SIGKILL between two batches: nothing after it runs."""


def test_a_bulk_retry_cut_off_by_its_workers_death_resumes_where_it_stopped(
    tenant, admin, monkeypatch
):
    monkeypatch.setattr(services, "BULK_BATCH", 10)
    failed_rows(tenant, "automation", 35)
    selection = {"filter": filters.parse({"kind": "automation"})}
    bulk = services.plan_bulk_retry(admin, selection)

    def killed_after_two_batches(done: int, failed: int) -> None:
        if done == 20:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        services.retry_many(admin, selection, bulk, progress=killed_after_two_batches)
    bulk.refresh_from_db()
    assert (bulk.status, bulk.done) == ("running", 20)
    # Meanwhile five of the retried items ran and failed again: they were retried once already.
    retried_first = [e.target_id for e in retried_in(bulk)][:5]
    AutomationExecution.objects.filter(pk__in=retried_first).update(status="failed")
    # A retry_many that is not resuming leaves a running bulk alone.
    assert services.retry_many(admin, selection, bulk).done == 20

    services.run_bulk_retry(str(bulk.pk))  # the given-back task

    bulk.refresh_from_db()
    assert (bulk.status, bulk.done, bulk.failed) == ("finished", 35, 0)
    assert bulk.summary["kinds"] == {"automation": {"retried": 35, "failed": 0}}
    audited = Counter(e.target_id for e in retried_in(bulk))
    assert len(audited) == 35 and set(audited.values()) == {1}
    assert Attempt.objects.count() == 35
    assert set(
        AutomationExecution.objects.filter(pk__in=retried_first).values_list("status", flat=True)
    ) == {"failed"}
    assert AutomationExecution.objects.filter(status="pending").count() == 30
    # Given back once more (or run late), a finished bulk stays as it is.
    services.run_bulk_retry(str(bulk.pk))
    assert BulkRetry.objects.get(pk=bulk.pk).done == 35
    assert len(retried_in(bulk)) == 35


@pytest.mark.django_db(transaction=True)
def test_a_bulk_retry_runs_in_the_background_and_the_work_really_reruns(items, admin, run_worker):
    ids = [items.failed("automation") for _ in range(5)]
    flt = filters.parse({"kind": "automation"})

    bulk = services.start_bulk_retry(admin, {"filter": flt})
    assert (bulk.status, bulk.total) == ("pending", 5)
    run_worker()  # runs the bulk task, then the executions it queued

    bulk.refresh_from_db()
    assert (bulk.status, bulk.done, bulk.skipped) == ("finished", 5, 0)
    assert set(AutomationExecution.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "completed"
    }


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_batches_run_on_several_connections_and_every_item_is_retried_once(
    tenant, admin, monkeypatch, settings
):
    import threading

    from django.db import connection
    from django_tasks_db.models import DBTaskResult

    from executions.models import OutboxEvent

    failed_rows(tenant, "automation", 1007)
    monkeypatch.setattr(services, "BULK_BATCH", 100)
    settings.REDRIVE_BULK_CONNECTIONS = 2
    threads = set()
    retry_audited = services._retry_audited

    def recording(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return retry_audited(*args, **kwargs)

    monkeypatch.setattr(services, "_retry_audited", recording)

    def connections() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    before = connections()
    bulk = services.retry_many(admin, {"filter": filters.parse({"kind": "automation"})})

    assert (bulk.status, bulk.done, bulk.failed) == ("finished", 1007, 0)
    assert len(threads) == 2, threads  # the batch threads, not this one
    assert AutomationExecution.objects.filter(status="pending", attempt=2).count() == 1007
    assert Attempt.objects.count() == OutboxEvent.objects.count() == 1007
    assert len(retried_in(bulk)) == 1007
    # Each batch's task rows came from its own statement: every item in exactly one task.
    tasks = [t.args_kwargs["args"][0] for t in DBTaskResult.objects.all()]
    queued = [pk for args in tasks for pk in args]
    every = AutomationExecution.objects.values_list("pk", flat=True)
    assert sorted(queued) == sorted(str(pk) for pk in every)
    assert max(map(len, tasks)) <= 250
    # The batch threads closed their connections.
    assert connections() == before


def test_on_several_connections_the_last_batches_shrink_so_the_connections_finish_together(
    monkeypatch,
):
    """A bulk lasts as long as its slowest connection: a full-size last batch on one connection
    while the other has nothing left is time lost."""
    monkeypatch.setattr(services, "TAIL_BATCH", 100)
    todo = {"automation": [f"{i:05}" for i in range(1500)], "job": [f"{i:05}" for i in range(500)]}

    def sizes(connections: int) -> list[tuple[str, int, bool]]:
        per_kind = {kind: services._BatchSize(500) for kind in todo}
        batches = services._batches(todo, per_kind, connections)
        return [(b.kind, len(b.keys), b.last) for b in batches]

    a, j = "automation", "job"
    assert sizes(2) == [
        (a, 500, False),
        (a, 500, False),
        (a, 500, False),
        (j, 250, False),  # half of the 500 left
        (j, 125, False),
        (j, 100, False),  # never below TAIL_BATCH
        (j, 25, True),
    ]
    assert sizes(1) == [(a, 500, False)] * 3 + [(j, 500, True)]


@pytest.mark.django_db
def test_each_batch_yields_every_started_batch_and_stops_when_asked():
    from executions import sets

    started = []

    def work(batch):
        started.append(batch)
        return sum(batch)

    batches = iter([[1], [2], [3], [4], [5]])
    results = list(sets.each_batch(work, batches, 2, stop=lambda batch: len(started) >= 2))
    assert sorted(results) == sorted(sum(b) for b in started)
    assert 2 <= len(started) < 5
    assert list(sets.each_batch(work, iter([[1], [2]]), 1, stop=lambda batch: False)) == [1, 2]

    def failing(batch):
        if batch == [2]:
            raise ValueError("batch 2")
        return sum(batch)

    done = []
    with pytest.raises(ValueError, match="batch 2"):
        for result in sets.each_batch(
            failing, iter([[1], [2], [3], [4]]), 2, stop=lambda batch: False
        ):
            done.append(result)
    assert sorted(done) == [1, 3, 4]  # the other batches still ran and were reported


# --- the plan is fixed when the bulk is planned (issue 16.9) -------------------------------------


def test_a_resumed_bulk_retries_only_what_was_planned_never_its_own_clones(
    tenant, admin, monkeypatch
):
    """Function executions are retried as clones, new failed rows if they fail again: a resume
    that matched the filter again would retry them (X -> X' -> X''), and failures that came
    after the bulk was planned."""
    monkeypatch.setattr(services, "BULK_BATCH", 10)
    failed_rows(tenant, "function", 35)
    planned = set(FunctionExecution.objects.values_list("pk", flat=True))
    selection = {"filter": filters.parse({"kind": "function"})}
    bulk = services.plan_bulk_retry(admin, selection)
    later = FunctionExecution.objects.create(
        tenant=tenant,
        function=Function.objects.get(),
        handler="flaky",
        status="failed",
        payload={},
        error_message=ERROR,
    )

    def killed_after_two_batches(done: int, failed: int) -> None:
        if done == 20:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        services.retry_many(admin, selection, bulk, progress=killed_after_two_batches)
    # Meanwhile the clones it made ran and failed again.
    clones = FunctionExecution.objects.filter(retry_of__isnull=False)
    assert clones.count() == 20
    clones.update(status="failed")

    services.run_bulk_retry(str(bulk.pk))  # the given-back task

    bulk.refresh_from_db()
    assert (bulk.status, bulk.total, bulk.done, bulk.failed) == ("finished", 35, 35, 0)
    audited = Counter(e.target_id for e in retried_in(bulk))
    assert set(audited) == planned and set(audited.values()) == {1}
    assert (
        set(
            FunctionExecution.objects.filter(retry_of__isnull=False).values_list(
                "retry_of", flat=True
            )
        )
        == planned
    )  # one clone each, and no clone of a clone
    assert not FunctionExecution.objects.filter(retry_of=later).exists()


# --- one item conflicting with a concurrent single retry (issue 16.9) ----------------------------


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_an_item_retried_concurrently_fails_alone_and_the_rest_of_its_batch_is_retried(
    tenant, admin, settings, wait_until
):
    from tests.locks import Background, inserts_held, lock_waiters

    settings.REDRIVE_BULK_CONNECTIONS = 1
    failed_rows(tenant, "job", 5)
    jobs = [str(pk) for pk in Job.objects.order_by("pk").values_list("pk", flat=True)]
    target = jobs[2]
    selection = {"filter": filters.parse({"kind": "job"})}
    bulk = services.plan_bulk_retry(admin, selection)

    with inserts_held(AuditEvent):
        # The single retry locks the job and creates its clone, then waits at its audit row.
        single = Background(lambda: services.retry_job(admin, target), name="single-retry")
        wait_until(lambda: lock_waiters() == 1, timeout=30, message="the single retry to wait")
        # The bulk's batch of all five waits for that job's row lock.
        running = Background(lambda: services.retry_many(admin, selection, bulk), name="bulk")
        wait_until(lambda: lock_waiters() == 2, timeout=30, message="the batch to wait")
    # Released: the single retry commits first, then the batch gets the job.
    clone = single.result().new_id
    running.result()

    bulk.refresh_from_db()
    assert (bulk.status, bulk.done, bulk.failed) == ("finished", 4, 1)
    assert bulk.summary["kinds"] == {"job": {"retried": 4, "failed": 1}}
    assert bulk.summary["failures"] == [
        {
            "kind": "job",
            "id": target,
            "reason": f"Job was already retried as {clone}, which is still unprocessed",
        }
    ]
    audited = Counter(e.target_id for e in retried_in(bulk))
    assert audited == Counter(pk for pk in jobs if pk != target)
    clones = Counter(
        str(pk)
        for pk in Job.objects.filter(retry_of__isnull=False).values_list("retry_of", flat=True)
    )
    assert clones == Counter(jobs)  # every job retried once: four by the bulk, one alone


# --- cancel (issue 16.9) -------------------------------------------------------------------------


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_a_cancel_answers_at_once_and_no_batch_starts_after_it(
    tenant, admin, monkeypatch, settings, wait_until
):
    """Two connections, two batches under way (their transactions open, waiting at their history
    rows) and more batches in line: the cancel answers meanwhile, and only those two finish."""
    from tests.locks import Background, inserts_held, lock_waiters

    monkeypatch.setattr(services, "BULK_BATCH", 100)
    settings.REDRIVE_BULK_CONNECTIONS = 2
    failed_rows(tenant, "automation", 1000)
    selection = {"filter": filters.parse({"kind": "automation"})}
    bulk = services.plan_bulk_retry(admin, selection)

    with inserts_held(Attempt):
        running = Background(lambda: services.retry_many(admin, selection, bulk), name="bulk")
        wait_until(lambda: lock_waiters() == 2, timeout=30, message="two batches under way")
        cancel = Background(lambda: services.cancel_bulk_retry(admin, bulk.pk), name="cancel")
        wait_until(
            cancel.finished.is_set,
            timeout=30,
            message="the cancel to answer while two batches hold their transactions open",
        )
    running.result()

    bulk.refresh_from_db()
    assert (bulk.status, bulk.done, bulk.failed) == ("cancelled", 200, 0)
    assert len(retried_in(bulk)) == 200
    assert AutomationExecution.objects.filter(status="pending").count() == 200
    answer = cancel.result()
    assert (answer.outcome, answer.message) == (
        "requested",
        "Cancel requested: the bulk retry stops after its current batch",
    )


@pytest.mark.django_db
def test_a_cancel_after_the_bulk_finished_says_it_came_too_late(tenant, admin):
    failed_rows(tenant, "automation", 3)
    bulk = services.retry_many(admin, {"filter": filters.parse({"kind": "automation"})})

    answer = services.cancel_bulk_retry(admin, bulk.pk)

    assert (answer.outcome, answer.message) == (
        "too_late",
        "Cancel came too late: the bulk retry had already finished",
    )
    bulk.refresh_from_db()
    assert (bulk.status, bulk.done, bulk.cancel_requested) == ("finished", 3, False)


@pytest.mark.django_db
def test_a_cancel_after_the_last_batch_started_says_it_came_too_late(tenant, admin):
    failed_rows(tenant, "automation", 3)  # one batch, so the first is the last
    selection = {"filter": filters.parse({"kind": "automation"})}
    bulk = services.plan_bulk_retry(admin, selection)
    answers = []

    def cancel_after_the_batch(done: int, failed: int) -> None:
        answers.append(services.cancel_bulk_retry(admin, bulk.pk))

    result = services.retry_many(admin, selection, bulk, progress=cancel_after_the_batch)

    assert [(a.bulk.status, a.outcome, a.message) for a in answers] == [
        (
            "running",
            "too_late",
            "Cancel came too late: the bulk retry had already started its last batch",
        )
    ]
    assert (result.status, result.done, result.cancel_requested) == ("finished", 3, False)
