"""No stuck work: a worker SIGKILLed mid-execution leaves nothing "running" once its lease expires,
and a worker that dies after taking a task but before the task claimed its work leaves nothing
pending for ever.

Stock django-tasks-db leaves such a task RUNNING forever (upstream django-tasks issue 46). Redrive's
worker holds a lease on every attempt and renews it; the reaper fails attempts whose lease expired
with "worker lost", and the fencing token drops the dead worker's late finish. Workers beat, and
the reaper gives back the tasks of a worker that stopped beating (executions/heartbeats.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from executions import filters, heartbeats, leases, reaper, services
from executions.kinds.automations import run as automations_run
from executions.kinds.functions import run as functions_run
from executions.kinds.jobs import run as jobs_run
from executions.models import (
    AutomationExecution,
    AutomationRule,
    BulkRetry,
    FunctionExecution,
    Job,
    JobEvent,
    Membership,
    Run,
    Tenant,
    WorkerHeartbeat,
    WorkflowTaskExecution,
)
from executions.reaper import reap_lost_attempts
from executions.tenancy import Actor
from tests.audit import retried_in
from tests.call_counter import HandlerCalls
from tests.locks import Background, inserts_held, lock_waiters

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_SECONDS = 2


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme")


def nothing_running() -> dict[str, int]:
    return {
        "function": FunctionExecution.objects.filter(status="running").count(),
        "automation": AutomationExecution.objects.filter(status="running").count(),
        "job": Job.objects.filter(status="processing").count(),
        "workflow task": WorkflowTaskExecution.objects.filter(status="IN_PROGRESS").count(),
        "run": Run.objects.filter(status="running").count(),
    }


def test_a_sigkilled_workers_automation_is_failed_as_worker_lost(
    tenant, worker_process, wait_until
):
    rule = AutomationRule.objects.create(
        tenant=tenant, name="slow", actions=[{"handler": "sleep", "params": {"seconds": 30}}]
    )
    with transaction.atomic():
        execution = automations_run.start_automation(rule, {})
    worker = worker_process(lease_seconds=LEASE_SECONDS)

    running = wait_until(
        lambda: AutomationExecution.objects.filter(pk=execution.pk, status="running").first(),
        timeout=30,
        message="the worker to start the automation",
    )
    # The process we are about to kill is the one holding the attempt ...
    assert f":{worker.pid}:" in running.lease_owner
    token = running.lease_token
    # ... and it is alive: it keeps renewing its lease.
    wait_until(
        lambda: AutomationExecution.objects.filter(
            pk=execution.pk, lease_expires_at__gt=running.lease_expires_at
        ).exists(),
        timeout=10,
        message="the lease to be renewed",
    )

    assert worker.kill() == -9  # SIGKILL: no handler, no cleanup, no goodbye
    killed_at = timezone.now()
    # Renewed a moment ago, its lease has not expired yet: a reaper must leave the attempt alone.
    expires = AutomationExecution.objects.get(pk=execution.pk).lease_expires_at
    assert expires > timezone.now()
    assert reaper.reap()["automation"] == 0
    assert AutomationExecution.objects.get(pk=execution.pk).status == "running"

    time.sleep(max((expires - timezone.now()).total_seconds(), 0) + 0.2)
    counts = {str(kind): n for kind, n in reaper.reap().items()}

    execution.refresh_from_db()
    print(
        f"\nSIGKILL test: worker pid {worker.pid} killed at {killed_at:%H:%M:%S.%f}, lease expired"
        f" {expires:%H:%M:%S.%f}, reaped {counts}; execution {execution.pk} -> {execution.status}"
        f" ({execution.error_message}); still running: {nothing_running()}; django-tasks-db row"
        f" left as {list(DBTaskResult.objects.values_list('status', flat=True))}"
    )
    assert counts["automation"] == 1
    assert execution.status == "failed"
    assert execution.error_message.startswith("worker lost")
    assert execution.completed_at is not None
    assert (execution.lease_owner, execution.lease_expires_at) == ("", None)
    assert nothing_running() == dict.fromkeys(nothing_running(), 0)

    # Fencing: the presumed-dead worker's late finish, with the token it claimed with, is dropped.
    late = leases.finish(
        AutomationExecution,
        execution.pk,
        token,
        running_status="running",
        status="completed",
        error_message=None,
        actions_successful=1,
    )
    assert late is False
    after = AutomationExecution.objects.get(pk=execution.pk)
    assert (after.status, after.error_message, after.actions_successful) == (
        "failed",
        execution.error_message,
        0,
    )
    # A second reap finds nothing more to do.
    assert not any(reaper.reap().values())


def test_a_second_workers_reaper_fails_the_lost_job(tenant, worker_process, wait_until):
    with transaction.atomic():
        job = jobs_run.create_job(
            tenant, {"type": "service.restart", "data": {"handler": "sleep", "seconds": 30}}
        )
    first = worker_process(hostname="web-1", lease_seconds=LEASE_SECONDS)
    wait_until(
        lambda: Job.objects.filter(pk=job.pk, status="processing").exists(),
        timeout=30,
        message="the first worker to take the job",
    )
    assert first.kill() == -9

    # Another machine's worker runs the reaper beside its own work.
    worker_process(hostname="web-2", lease_seconds=LEASE_SECONDS)
    wait_until(
        lambda: Job.objects.filter(pk=job.pk, status="failed").exists(),
        timeout=20,
        message="the second worker's reaper to fail the job",
    )

    job.refresh_from_db()
    assert job.error_message.startswith("worker lost")
    assert (job.revision, job.taken_by) == (3, "web-1")
    assert list(job.events.values_list("revision", "type", "data")) == [
        (1, "created", {"target_hostname": "_any"}),
        (2, "processing", {"hostname": "web-1"}),
        (3, "failed", {"error": leases.WORKER_LOST}),
    ]
    assert nothing_running() == dict.fromkeys(nothing_running(), 0)


def lost_job(tenant: Tenant) -> tuple[Job, int]:
    """A job a worker took (fencing token 1) whose lease has expired: the worker stopped
    renewing it, dead or stalled."""
    with transaction.atomic():
        job = jobs_run.create_job(tenant, {"type": "service.restart", "data": {"handler": "noop"}})
    Job.objects.filter(pk=job.pk).update(
        status="processing",
        revision=2,
        lease_owner="web-1:4242:dead",
        lease_token=1,
        lease_expires_at=timezone.now() - timedelta(seconds=5),
    )
    return job, 1


@pytest.mark.pg_only
def test_a_job_that_finishes_while_the_reaper_waits_for_it_keeps_its_result(tenant, wait_until):
    job, token = lost_job(tenant)
    with inserts_held(JobEvent):
        # Its stalled worker finishes after all: the fenced finish has updated the job and
        # waits (holding the job's row) to write its event.
        finish = Background(
            lambda: jobs_run.job_transition(
                job.pk, token, event="completed", status="completed", finished_at=timezone.now()
            ),
            name="finish",
        )
        wait_until(lambda: lock_waiters() == 1, timeout=30, message="the finish to wait")
        # The reaper read the job as processing with an expired lease; it waits for the row.
        reaping = Background(reaper.reap, name="reaper")
        wait_until(lambda: lock_waiters() == 2, timeout=30, message="the reaper to wait")
    assert finish.result() is True
    assert reaping.result()["job"] == 0

    job.refresh_from_db()
    assert (job.status, job.error_message, job.revision) == ("completed", None, 3)
    assert list(job.events.values_list("revision", "type")) == [(1, "created"), (3, "completed")]


@pytest.mark.pg_only
def test_two_reapers_racing_fail_a_lost_job_once_with_one_event(tenant, wait_until):
    job, _ = lost_job(tenant)
    with inserts_held(JobEvent):
        # The first reaper has failed the job and waits (holding its row) to write the event.
        first = Background(reaper.reap, name="first reaper")
        wait_until(lambda: lock_waiters() == 1, timeout=30, message="the first reaper to wait")
        # The second read the job as still lost; it waits for the row.
        second = Background(reaper.reap, name="second reaper")
        wait_until(lambda: lock_waiters() == 2, timeout=30, message="the second reaper to wait")
    assert sorted([first.result()["job"], second.result()["job"]]) == [0, 1]

    job.refresh_from_db()
    assert (job.status, job.error_message, job.revision) == ("failed", leases.WORKER_LOST, 3)
    assert list(job.events.values_list("revision", "type", "data")) == [
        (1, "created", {"target_hostname": "_any"}),
        (3, "failed", {"error": leases.WORKER_LOST}),
    ]


def test_the_keeper_gives_no_lease_back_to_an_attempt_that_finished_meanwhile(tenant):
    """The keeper renews from a snapshot of what it holds. An attempt that finishes between the
    snapshot and the renewal (its finish clears the expiry and keeps the token) must stay without
    a lease: a finished row with an expiry is a lease nobody holds."""
    rule = AutomationRule.objects.create(tenant=tenant, name="r", actions=[])
    execution = AutomationExecution.objects.create(tenant=tenant, automation_rule=rule)
    pending = AutomationExecution.objects.filter(pk=execution.pk, status="pending")
    won = leases.claim(pending, to_status="running", owner="test:1")
    assert str(execution.pk) in won
    try:
        # What the finish writes, while the keeper still lists the attempt as held.
        AutomationExecution.objects.filter(pk=execution.pk).update(
            status="failed", lease_owner="", lease_expires_at=None
        )
        leases.keeper.renew_now()
        execution.refresh_from_db()
        assert (execution.status, execution.lease_expires_at) == ("failed", None)
    finally:
        leases.keeper.release(AutomationExecution, execution.pk)


@pytest.mark.pg_only
@pytest.mark.parametrize("wait_for_disk", [True, False])
def test_a_claim_that_need_not_wait_for_the_disk_commits_without_the_flush_and_only_it(
    tenant, wait_for_disk
):
    rule = AutomationRule.objects.create(tenant=tenant, name="r", actions=[])
    execution = AutomationExecution.objects.create(tenant=tenant, automation_rule=rule)
    pending = AutomationExecution.objects.filter(pk=execution.pk, status="pending")
    seen: list[str] = []

    def setting_at_the_update(execute, sql, params, many, context):
        if sql.startswith("UPDATE"):
            raw = context["connection"].connection  # the same transaction, outside the wrapper
            seen.append(raw.execute("SHOW synchronous_commit").fetchone()[0])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(setting_at_the_update):
        won = leases.claim(pending, to_status="running", owner="o:1", wait_for_disk=wait_for_disk)
    leases.keeper.release(AutomationExecution, execution.pk)

    assert str(execution.pk) in won
    assert seen == ["on" if wait_for_disk else "off"]
    # SET LOCAL: the connection's next transactions wait for the disk again.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


# django-tasks-db sends task_started after it marked the task RUNNING under the worker's id (and
# committed), before the task's code runs: the moment before any lease exists.
DIE_WHEN_A_TASK_STARTS = """
from django.tasks.signals import task_started
task_started.connect(lambda **kwargs: os.kill(os.getpid(), signal.SIGKILL), weak=False)
"""

CUT_THE_CONNECTION_WHEN_THE_FIRST_TASK_STARTS = """
from django.db import connection
from django.tasks.signals import task_started
def cut(**kwargs):
    if not getattr(cut, "done", False):
        cut.done = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
task_started.connect(cut, weak=False)
"""


def counted_automations(tenant: Tenant, n: int) -> list[AutomationExecution]:
    rule = AutomationRule.objects.create(
        tenant=tenant, name="count", actions=[{"handler": "counter"}]
    )
    with transaction.atomic():  # one task each, enqueued on commit
        return [automations_run.start_automation(rule, {}) for _ in range(n)]


def ran_once_each(handler_calls: HandlerCalls, executions: list[AutomationExecution]) -> bool:
    calls = handler_calls.counts()
    return calls == Counter(f"{e.pk}:0" for e in executions)


def replacement_of(task: DBTaskResult) -> DBTaskResult:
    """The fresh task the reaper enqueued in place of a lost one (the lost one names it)."""
    task.refresh_from_db()
    return DBTaskResult.objects.get(pk=task.traceback.rpartition(heartbeats.GIVEN_BACK)[2].strip())


def test_a_task_whose_worker_died_before_it_ran_is_given_back_and_runs_once(
    handler_calls, tenant, worker_process, wait_until
):
    executions = counted_automations(tenant, 3)
    dying = worker_process(
        lease_seconds=LEASE_SECONDS, args=("--no-reaper",), hook=DIE_WHEN_A_TASK_STARTS
    )
    assert dying.process.wait(timeout=60) == -9
    # What the kill left: one task RUNNING under the dead worker's id, its execution never claimed.
    taken = DBTaskResult.objects.get(status="RUNNING")
    assert len(taken.worker_ids) == 1
    assert set(AutomationExecution.objects.values_list("status", flat=True)) == {"pending"}

    healthy = worker_process(lease_seconds=LEASE_SECONDS)
    wait_until(
        lambda: not AutomationExecution.objects.exclude(status="completed").exists(),
        timeout=60,
        message="every execution to complete, the lost one's task given back",
    )
    assert ran_once_each(handler_calls, executions)
    taken.refresh_from_db()
    [dead_id] = taken.worker_ids
    # Failed as lost, naming the fresh task (same arguments) that the healthy worker ran.
    assert taken.status == "FAILED"
    fresh = replacement_of(taken)
    assert (fresh.status, fresh.args_kwargs) == ("SUCCESSFUL", taken.args_kwargs)
    [healthy_id] = fresh.worker_ids
    assert WorkerHeartbeat.objects.filter(pk=healthy_id).exists()
    assert WorkerHeartbeat.objects.filter(pk=dead_id).exists()  # SIGKILL: it never said goodbye
    assert "gave back task" in healthy.output()


@pytest.mark.pg_only
def test_a_task_cut_off_by_a_lost_connection_before_it_ran_is_given_back(
    handler_calls, tenant, worker_process, wait_until
):
    executions = counted_automations(tenant, 3)
    worker = worker_process(
        lease_seconds=LEASE_SECONDS, hook=CUT_THE_CONNECTION_WHEN_THE_FIRST_TASK_STARTS
    )
    wait_until(
        lambda: not AutomationExecution.objects.exclude(status="completed").exists(),
        timeout=60,
        message="every execution to complete, the cut-off one's task given back",
    )
    assert ran_once_each(handler_calls, executions)
    assert worker.alive()
    assert "database connection lost; reconnecting" in worker.output()
    # The task that was cut off was replaced, and its replacement ran under the worker's new id.
    cut_off = DBTaskResult.objects.get(status="FAILED")
    [first_id] = cut_off.worker_ids
    [second_id] = replacement_of(cut_off).worker_ids
    assert first_id != second_id
    assert sorted(DBTaskResult.objects.values_list("status", "worker_ids")) == [
        ("FAILED", [first_id]),
        *[("SUCCESSFUL", [second_id])] * 3,
    ]


def test_only_the_tasks_of_workers_that_stopped_beating_are_given_back(settings):
    settings.REDRIVE_LEASE_SECONDS = LEASE_SECONDS

    def taken_by(*worker_ids: str) -> DBTaskResult:
        row = DBTaskResult.objects.get(pk=reap_lost_attempts.enqueue().id)
        for worker_id in worker_ids:
            row.claim(worker_id)
        return row

    ago = timezone.now() - timedelta(seconds=LEASE_SECONDS + 3)
    WorkerHeartbeat.objects.create(worker_id="alive", hostname="a", pid=1)
    WorkerHeartbeat.objects.create(worker_id="stale", hostname="b", pid=2, seen_at=ago)
    WorkerHeartbeat.objects.create(
        worker_id="long-gone", hostname="c", pid=3, seen_at=ago - timedelta(hours=1)
    )
    # Running far longer than a lease, but its worker beats: left alone.
    alive = taken_by("stale", "alive")
    DBTaskResult.objects.filter(pk=alive.pk).update(started_at=ago)
    stale = taken_by("alive", "stale")
    unknown = taken_by("never-seen")
    worn_out = taken_by(*[f"dead-{i}" for i in range(heartbeats.MAX_DELIVERIES)])

    assert heartbeats.redeliver_lost_tasks() == 3
    status = dict(DBTaskResult.objects.values_list("pk", "status"))
    replaced = {replacement_of(stale).pk, replacement_of(unknown).pk}
    assert status == {
        alive.pk: "RUNNING",
        stale.pk: "FAILED",
        unknown.pk: "FAILED",
        worn_out.pk: "FAILED",
        **dict.fromkeys(replaced, "READY"),
    }
    failed = DBTaskResult.objects.get(pk=worn_out.pk)
    assert failed.exception_class_path == "executions.heartbeats.WorkerLost"
    assert "stopped before finishing it (5 times)" in failed.traceback
    # A replacement lost again is one more delivery: the chain's fifth is failed, not replaced.
    task = replacement_of(stale)
    for delivery in range(2, heartbeats.MAX_DELIVERIES + 1):
        task.claim(f"gone-{delivery}")
        assert heartbeats.redeliver_lost_tasks() == 1
        task.refresh_from_db()
        assert task.status == "FAILED"
        if delivery < heartbeats.MAX_DELIVERIES:
            task = replacement_of(task)
    assert "stopped before finishing it (5 times)" in task.traceback
    assert list(DBTaskResult.objects.ready().values_list("pk", flat=True)) == [
        replacement_of(unknown).pk
    ]
    # Heartbeats unseen for an hour are pruned; a second round has nothing to do.
    assert heartbeats.prune() == 1
    assert set(WorkerHeartbeat.objects.values_list("pk", flat=True)) == {"alive", "stale"}
    assert heartbeats.redeliver_lost_tasks() == 0


# Batches of 10 that take 0.2 s each: a bulk retry of 200 is under way for seconds.
SLOW_BULK_BATCHES = """
import time
from executions import services
services.BULK_BATCH = 10
retry_batch = services._retry_audited
def slow(*args, **kwargs):
    time.sleep(0.2)
    return retry_batch(*args, **kwargs)
services._retry_audited = slow
"""


def test_a_bulk_retry_whose_worker_is_killed_resumes_under_another_and_retries_each_once(
    tenant, worker_process, wait_until
):
    from django.contrib.auth.models import User

    user = User.objects.create_user("alice")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    actions = [{"handler": "fail"}]  # retried items fail again: a second retry would show
    rule = AutomationRule.objects.create(tenant=tenant, name="failing", actions=actions)
    AutomationExecution.objects.bulk_create(
        AutomationExecution(
            tenant=tenant,
            automation_rule=rule,
            status="failed",
            error_message="boom",
            actions_total=1,
            execution_context={"actions": actions},
        )
        for _ in range(200)
    )
    bulk = services.start_bulk_retry(
        Actor.for_user(user, tenant, source="api"),
        {"filter": filters.parse({"kind": "automation"})},
    )
    first = worker_process(
        lease_seconds=LEASE_SECONDS, args=("--no-reaper",), hook=SLOW_BULK_BATCHES
    )
    wait_until(
        lambda: BulkRetry.objects.filter(pk=bulk.pk, status="running", done__gte=50).exists(),
        timeout=60,
        message="the bulk retry to be under way",
    )
    assert first.kill() == -9
    assert BulkRetry.objects.get(pk=bulk.pk).done < 200

    second = worker_process(lease_seconds=LEASE_SECONDS, hook=SLOW_BULK_BATCHES)
    wait_until(
        lambda: BulkRetry.objects.filter(pk=bulk.pk, status="finished").exists(),
        timeout=60,
        message="the given-back bulk retry to finish",
    )
    bulk.refresh_from_db()
    assert (bulk.done, bulk.failed) == (200, 0)
    audited = Counter(e.target_id for e in retried_in(bulk))
    assert len(audited) == 200
    assert set(audited.values()) == {1}
    assert "resumed after" in second.output()


def test_a_worker_that_stops_cleanly_leaves_no_heartbeat_behind(handler_calls, tenant, run_worker):
    executions = counted_automations(tenant, 2)
    run_worker()  # takes both tasks under its id, beats, and exits once the queue is empty
    assert ran_once_each(handler_calls, executions)
    ids = {i for ids in DBTaskResult.objects.values_list("worker_ids", flat=True) for i in ids}
    assert len(ids) == 1
    assert not WorkerHeartbeat.objects.exists()


def test_each_beat_moves_the_workers_last_seen_time_and_keeps_its_start():
    heartbeat = heartbeats.Heartbeat("web-1")
    heartbeat.beat()
    first = WorkerHeartbeat.objects.get(pk=heartbeat.worker_id)
    time.sleep(0.05)
    heartbeat.beat()
    again = WorkerHeartbeat.objects.get(pk=heartbeat.worker_id)
    assert again.seen_at > first.seen_at
    assert (again.started_at, again.hostname) == (first.started_at, "web-1")


def test_manage_py_retry_of_a_function_leaves_the_run_to_a_worker(
    tenant, process_env, worker_process, wait_until
):
    """The command queues the retry and waits for a worker: with none, it stops waiting after
    the function's timeout (nothing ran it, the command neither), and a worker started later
    runs it."""
    from django.contrib.auth import get_user_model

    from executions.models import Function
    from tests.conftest import ROOT

    alice = get_user_model().objects.create_user("alice", password="alice-pass-2026")
    Membership.objects.create(user=alice, tenant=tenant, role="admin")
    function = Function.objects.create(
        tenant=tenant, name="always fails", handler="fail", timeout_ms=1000
    )
    original = functions_run.invoke_function(function, {"order": 7}, queued=False)
    assert original.status == "failed"
    command = [sys.executable, "manage.py", "retry", "function", original.pk]
    command += ["--tenant", "acme", "--user", "alice"]

    alone = subprocess.run(
        command,
        cwd=ROOT,
        env=process_env(env={"REDRIVE_SYNC_WAIT_GRACE_MS": "0"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert alone.returncode == 1, alone.stdout + alone.stderr
    retry = FunctionExecution.objects.get(retry_of=original)
    assert f"Execution {retry.pk} is still running after 1 s" in alone.stderr
    assert (retry.status, retry.lease_token) == ("running", 0)  # queued, never taken

    worker_process()
    wait_until(
        lambda: FunctionExecution.objects.get(pk=retry.pk).status == "failed",
        message="the worker to run the queued retry",
    )
    retry.refresh_from_db()
    assert retry.lease_token == 1 and retry.error_message != leases.WORKER_LOST
    waited = subprocess.run(
        command, cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=120
    )
    assert waited.returncode == 0, waited.stdout + waited.stderr
    newest = FunctionExecution.objects.filter(retry_of=original).latest("executed_at")
    assert f"retried as {newest.pk} (failed)" in waited.stdout


# What RQ's worker does, as Python warns: the guard is what makes it safe.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_fork_waits_for_the_background_round_under_way():
    """RQ's worker forks a work-horse per job while its heartbeat and reaper threads run: a child
    forked while one of them is inside the database driver inherits the driver's locks held by
    nobody (SQLite's global mutexes) and hangs. A fork therefore waits for the round under way
    (leases.run_every): the child never starts in the middle of one."""
    in_round = threading.Event()
    leave = threading.Event()
    stop = threading.Event()

    def round_() -> None:
        in_round.set()
        leave.wait(30)
        in_round.clear()

    leases.run_every(0.01, round_, "test-round", stop)
    try:
        assert in_round.wait(30)
        read, write = os.pipe()
        about_to_fork = threading.Event()
        child: list[int] = []

        def fork() -> None:
            about_to_fork.set()
            pid = os.fork()
            if pid == 0:  # the child: say whether a round was under way, and leave at once
                os.write(write, b"1" if in_round.is_set() else b"0")
                os._exit(0)
            child.append(pid)

        forker = threading.Thread(target=fork)
        forker.start()
        assert about_to_fork.wait(30)
        # The round holds on: a fork not guarded by it would happen now, inside the round.
        forker.join(0.5)
        assert forker.is_alive()  # still waiting for the round
        leave.set()
        forker.join(30)
        assert os.read(read, 1) == b"0"
        os.waitpid(child[0], 0)
    finally:
        stop.set()
        leave.set()
