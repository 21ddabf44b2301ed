"""Staged bulk retry (issue 20 §3, executions/staged.py): a canary, a pace, an automatic stop, and
steps that re-enqueue themselves with run_after; a worker dying mid-bulk loses nothing. On RQ the
same, through RQ's scheduler in the workers (without it the first deferred step never ran and the
bulk stayed in `waiting` for good)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from django_tasks_db.models import DBTaskResult

from executions import filters, leases, services, staged
from executions.errors import InvalidInput
from executions.models import AutomationExecution, BulkRetry
from tests.audit import retried_in
from tests.conftest import ROOT, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def start(admin, n_items: int, items, handler: str = "fail", **options) -> BulkRetry:
    for _ in range(n_items):
        items.failed("automation", handler)
    flt = filters.parse({"kind": "automation"})
    return services.start_bulk_retry(admin, {"filter": flt}, options=options)


def step(bulk: BulkRetry) -> BulkRetry:
    """Run the bulk's next step here (what a worker runs), and read it back."""
    bulk.refresh_from_db()
    staged.step(str(bulk.pk), bulk.staged["seq"])
    bulk.refresh_from_db()
    return bulk


def finish(pks, n_ok: int) -> None:
    """The worker's part, in short: of those of `pks` still pending, the first n_ok succeed and
    the rest fail again."""
    pks = sorted(
        AutomationExecution.objects.filter(pk__in=pks, status="pending").values_list(
            "pk", flat=True
        )
    )
    AutomationExecution.objects.filter(pk__in=pks[:n_ok]).update(status="completed")
    AutomationExecution.objects.filter(pk__in=pks[n_ok:]).update(status="failed")


def retried_by(bulk: BulkRetry) -> list[str]:
    return [e.target_id for e in retried_in(bulk)]


def test_a_canary_short_of_its_success_rate_stops_the_bulk(items, admin):
    bulk = start(admin, 12, items, canary={"size": 5, "minSuccessRate": 0.9}, reason="dns fixed")
    assert (bulk.stage, bulk.status) == ("canary", "pending")
    bulk = step(bulk)
    assert (bulk.stage, bulk.done) == ("waiting", 5)
    canary = retried_by(bulk)
    assert len(canary) == 5
    assert staged.progress(bulk)["pending"] == 5
    # Still running: it waits, and retries nothing more.
    bulk = step(bulk)
    assert (bulk.stage, bulk.done, staged.progress(bulk)["pending"]) == ("waiting", 5, 5)
    finish(canary, 3)
    bulk = step(bulk)
    progress = staged.progress(bulk)
    assert (bulk.stage, bulk.status, bulk.done) == ("stopped", "finished", 5)
    assert (progress["succeeded"], progress["failedAgain"], progress["pending"]) == (3, 2, 0)
    assert "3 of 5 succeeded (60%)" in progress["stoppedBecause"]
    assert {i["id"] for i in progress["failedAgainItems"]} == set(sorted(canary)[3:])
    assert bulk.summary["staged"]["failedAgain"] == 2
    # The rest was never retried, and every audit row has the bulk's reason.
    assert AutomationExecution.objects.filter(status="failed").count() == 12 - 3
    assert {e.details.get("reason") for e in retried_in(bulk)} == {"dns fixed"}
    # A step that comes late changes nothing.
    staged.step(str(bulk.pk), bulk.staged["seq"])
    assert BulkRetry.objects.get(pk=bulk.pk).done == 5


def test_a_canary_that_succeeds_lets_the_rest_go_at_the_rate(items, admin):
    bulk = start(admin, 12, items, canary={"size": 4, "minSuccessRate": 0.75}, ratePerSecond=3)
    bulk = step(bulk)  # 3 of the canary (the rate's chunk)
    assert (bulk.stage, bulk.done) == ("canary", 3)
    bulk = step(bulk)
    assert (bulk.stage, bulk.done) == ("waiting", 4)
    finish(retried_by(bulk), 3)
    bulk = step(bulk)
    assert bulk.stage == "rest" and bulk.done == 4
    bulk = step(bulk)
    assert (bulk.stage, bulk.done) == ("rest", 7)
    # The next step is deferred by the pace: 3 items at 3 per second.
    queued = (
        DBTaskResult.objects.filter(task_path__endswith="staged_step")
        .order_by("-enqueued_at")
        .first()
    )
    assert queued is not None and queued.args_kwargs["args"] == [str(bulk.pk), bulk.staged["seq"]]
    delay = (queued.run_after - queued.enqueued_at).total_seconds()
    assert 0.5 < delay <= 1.5
    # The pace keeps its own timeline: the next chunk's step is due a second after this one's
    # was due, however early or late this one ran (here: at once, by hand).
    bulk = step(bulk)
    assert (bulk.stage, bulk.done) == ("rest", 10)
    later = DBTaskResult.objects.filter(task_path__endswith="staged_step").latest("enqueued_at")
    assert later.run_after - queued.run_after == timedelta(seconds=1)
    while bulk.done < 12:
        bulk = step(bulk)
    assert bulk.status == "running"  # waits for the outcomes of what it retried
    finish(retried_by(bulk), 12)
    bulk = step(bulk)
    progress = staged.progress(bulk)
    assert (bulk.stage, bulk.status) == ("finished", "finished")
    assert (progress["succeeded"], progress["failedAgain"], progress["pending"]) == (12 - 1, 1, 0)
    assert sorted(retried_by(bulk)) == sorted(set(retried_by(bulk)))


def test_it_stops_when_too_many_retried_items_fail_again(items, admin):
    bulk = start(admin, 10, items, ratePerSecond=2, stopWhenFailedAgainRate=0.5)
    assert bulk.stage == "rest"
    bulk = step(bulk)
    finish(retried_by(bulk), 1)  # 1 of 2 failed again: 50%, not more
    bulk = step(bulk)
    assert (bulk.stage, bulk.done) == ("rest", 4)
    first = retried_by(bulk)
    AutomationExecution.objects.filter(pk__in=first, status="pending").update(status="failed")
    bulk = step(bulk)  # 3 of 4 failed again: 75%
    progress = staged.progress(bulk)
    assert (bulk.stage, bulk.status, bulk.done) == ("stopped", "finished", 4)
    assert "3 of 4 retried items failed again (75%)" in progress["stoppedBecause"]
    assert AutomationExecution.objects.exclude(pk__in=first).filter(status="failed").count() == 6


def test_a_cancel_stops_a_staged_bulk_before_its_next_step(items, admin):
    bulk = start(admin, 6, items, ratePerSecond=2)
    bulk = step(bulk)
    services.cancel_bulk_retry(admin, bulk.pk)
    bulk = step(bulk)
    assert (bulk.status, bulk.stage, bulk.done) == ("cancelled", "stopped", 2)


def test_an_unstaged_bulk_keeps_its_path_and_a_reason(items, admin, run_worker):
    bulk = start(admin, 3, items, handler="flaky", reason="retry all")
    assert bulk.stage == "" and staged.progress(bulk) == {}
    run_worker()
    bulk.refresh_from_db()
    assert (bulk.status, bulk.done) == ("finished", 3)
    reasons = {e.details.get("reason") for e in retried_in(bulk)}
    assert reasons == {"retry all"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"canary": 5}, "canary"),
        ({"canary": {"minSuccessRate": 0.5}}, "canary.size"),
        ({"canary": {"size": 0}}, "canary.size"),
        ({"canary": {"size": 2.5}}, "canary.size"),
        ({"canary": {"size": True}}, "canary.size"),
        ({"canary": {"size": 3, "minSuccessRate": 1.5}}, "canary.minSuccessRate"),
        ({"canary": {"size": 3, "extra": 1}}, "canary"),
        ({"ratePerSecond": 0}, "ratePerSecond"),
        ({"ratePerSecond": "fast"}, "ratePerSecond"),
        ({"stopWhenFailedAgainRate": -0.1}, "stopWhenFailedAgainRate"),
        ({"reason": "r" * 501}, "reason"),
    ],
)
def test_bad_options_name_their_field(body, field):
    with pytest.raises(InvalidInput) as caught:
        staged.clean_options(body)
    assert caught.value.field == field


def test_a_staged_bulk_runs_through_real_workers_and_survives_one_dying(
    items, admin, worker_process, wait_until
):
    bulk = start(
        admin,
        8,
        items,
        handler="flaky",
        canary={"size": 2, "minSuccessRate": 1},
        ratePerSecond=2,
    )
    first = worker_process(lease_seconds=2)
    wait_until(
        lambda: BulkRetry.objects.get(pk=bulk.pk).done >= 4,
        timeout=60,
        message="the canary passed and the rest started",
    )
    first.kill()
    at_death = BulkRetry.objects.get(pk=bulk.pk)
    assert at_death.status == "running" and at_death.done < 8
    worker_process(lease_seconds=2)
    wait_until(
        lambda: BulkRetry.objects.get(pk=bulk.pk).status == "finished",
        timeout=90,
        message="the bulk finished on the second worker",
    )
    bulk.refresh_from_db()
    progress = staged.progress(bulk)
    # What the killed worker was running when it died failed as "worker lost" (counted as failed
    # again, and retryable): the kill lands between items or in one, as it happens. Every other
    # item succeeded: the work really ran.
    lost = AutomationExecution.objects.exclude(status="completed")
    assert set(lost.values_list("status", "error_message")) <= {("failed", leases.WORKER_LOST)}
    assert (bulk.stage, bulk.done, progress["succeeded"], progress["failedAgain"]) == (
        "finished",
        8,
        8 - lost.count(),
        lost.count(),
    )
    assert lost.count() <= at_death.done  # only what was retried before the kill
    # Each item retried exactly once.
    targets = retried_by(bulk)
    assert len(targets) == len(set(targets)) == 8


# --- on RQ ---------------------------------------------------------------------------------------

# Start a staged bulk of every failed automation as alice, in a process on the backend its
# environment names (this test process runs on the database backend); prints the bulk's id.
START_BULK = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()
from django.contrib.auth.models import User
from executions import filters, services
from executions.models import Tenant
from executions.tenancy import Actor
user, tenant = User.objects.get(username="alice"), Tenant.objects.get(slug="acme")
actor = Actor.for_user(user, tenant, source="api")
selection = {"filter": filters.parse({"kind": "automation"})}
print(services.start_bulk_retry(actor, selection, options=json.loads(sys.argv[1])).pk)
"""


def start_on_rq(env: dict, **options) -> BulkRetry:
    done = subprocess.run(
        [sys.executable, "-c", START_BULK, json.dumps(options)],
        cwd=ROOT,
        env=worker_env(env=env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return BulkRetry.objects.get(pk=done.stdout.strip())


def step_jobs(redis_url: str) -> int:
    """How many staged_step tasks RQ has run (finished or failed) on the default queue."""
    import redis
    from rq import Queue
    from rq.job import Job as RQJob

    queue = Queue("default", connection=redis.Redis.from_url(redis_url))
    ids = queue.finished_job_registry.get_job_ids() + queue.failed_job_registry.get_job_ids()
    jobs = RQJob.fetch_many(ids, connection=queue.connection)
    return sum(1 for job in jobs if job and job.func_name.endswith("staged_step"))


def retry_times(bulk: BulkRetry) -> list[tuple[datetime, str]]:
    return sorted((e.created_at, e.target_id) for e in retried_in(bulk))


@pytest.mark.slow
@pytest.mark.pg_only
def test_on_rq_a_canary_goes_first_then_the_rest_at_the_rate(
    items, admin, worker_process, wait_until, redis_url
):
    env = {"REDRIVE_TASKS": "rq", "REDIS_URL": redis_url}
    for _ in range(8):
        items.failed("automation", "flaky")
    worker_process(env=env)
    bulk = start_on_rq(env, canary={"size": 2, "minSuccessRate": 1}, ratePerSecond=2)
    wait_until(
        lambda: BulkRetry.objects.get(pk=bulk.pk).status == "finished",
        timeout=90,
        message="the staged bulk to finish on RQ",
    )
    bulk.refresh_from_db()
    progress = staged.progress(bulk)
    assert (bulk.stage, bulk.done, progress["succeeded"], progress["failedAgain"]) == (
        "finished",
        8,
        8,
        0,
    )
    times = retry_times(bulk)
    assert len({target for _, target in times}) == 8  # each item retried once
    canary, rest = times[:2], times[2:]
    # The rest started only once the canary's retries had succeeded...
    canary_done = AutomationExecution.objects.filter(pk__in=[t for _, t in canary])
    assert set(canary_done.values_list("status", flat=True)) == {"completed"}
    assert rest[0][0] > max(canary_done.values_list("completed_at", flat=True))
    # ... at 2 per second: three chunks of two, none sooner than the pace allows (RQ's schedule
    # counts whole seconds: a step must not run before its run_after).
    chunks = [at for at, _ in rest][::2]
    for k, at in enumerate(chunks):
        assert (at - chunks[0]).total_seconds() >= k - 0.3
    # Steps waited in RQ's schedule rather than running back to back (a busy loop).
    assert step_jobs(redis_url) <= 25


@pytest.mark.slow
@pytest.mark.pg_only
@pytest.mark.parametrize(
    ("options", "because"),
    [
        ({"canary": {"size": 2, "minSuccessRate": 0.5}}, "Canary: 0 of 2 succeeded"),
        ({"ratePerSecond": 2, "stopWhenFailedAgainRate": 0.5}, "retried items failed again"),
    ],
)
def test_on_rq_a_staged_bulk_stops_itself(
    items, admin, worker_process, wait_until, redis_url, options, because
):
    env = {"REDRIVE_TASKS": "rq", "REDIS_URL": redis_url}
    for _ in range(10):
        items.failed("automation", "fail")
    worker_process(env=env)
    bulk = start_on_rq(env, **options)
    wait_until(
        lambda: BulkRetry.objects.get(pk=bulk.pk).status == "finished",
        timeout=90,
        message="the staged bulk to stop itself on RQ",
    )
    bulk.refresh_from_db()
    progress = staged.progress(bulk)
    assert bulk.stage == "stopped" and because in progress["stoppedBecause"]
    assert 2 <= bulk.done < 10 and progress["failedAgain"] == bulk.done
    # What was not retried is still failed, never attempted again.
    retried = {t for _, t in retry_times(bulk)}
    untouched = AutomationExecution.objects.exclude(pk__in=retried)
    assert untouched.count() == 10 - bulk.done
    assert set(untouched.values_list("status", flat=True)) == {"failed"}
    assert step_jobs(redis_url) <= 25
