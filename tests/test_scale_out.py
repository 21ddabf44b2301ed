"""Scale-out keeps the README's promises (issue 23): on RQ, an idle worker runs the job a dead
worker had taken a lease after the death (not when RQ's own heartbeat of the job expires and an
idle worker's maintenance gets round to it, ~7 min); the jobs of a host that never comes back fail
with "no live worker for host <name>" after REDRIVE_HOST_GONE_SECONDS, on both backends, and run
elsewhere when retried; the console and the API say what an unprocessed job waits for.

Real Redis (the redis_url fixture), real worker processes, and a whole worker session killed with
SIGKILL: RQ's work-horse leaves the worker's process group, so killing the group alone would leave
the horse running, and its parent would requeue the job at once (another path, tested in
test_reliability.py)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from executions import heartbeats
from executions.kinds.jobs import run as jobs_run
from executions.middleware import NoEmptyTraceback
from executions.models import Job, JobEvent, Membership, Tenant, WorkerHeartbeat
from tests.call_counter import HandlerCalls
from tests.conftest import ROOT, worker_env

LEASE = 2  # seconds; workers beat and reap every third of it
GONE = 3  # REDRIVE_HOST_GONE_SECONDS for the workers of these tests
OPERATION = {"type": "service.restart", "data": {"handler": "counter"}}

# As the first task starts (in RQ's work-horse, or in the database backend's worker), before it
# claims anything: say so, then wait to be killed with the rest of the worker's session.
# django-tasks-rq sends django_tasks' signal, django-tasks-db Django's.
HOLD_THE_TASK = """
import pathlib
import django.tasks.signals, django_tasks.signals
def hold(**kwargs):
    pathlib.Path(os.environ["REDRIVE_TEST_MARKER"]).touch()
    signal.pause()
for signals in (django.tasks.signals, django_tasks.signals):
    signals.task_started.connect(hold, weak=False)
"""


@pytest.fixture
def acme(db) -> Tenant:
    tenant = Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme-prod")
    user = User.objects.create_user("alice")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    return tenant


def failed_job(tenant: Tenant) -> Job:
    return Job.objects.create(
        tenant=tenant,
        operation=OPERATION,
        operation_type=OPERATION["type"],
        status="failed",
        error_message="boom",
        target_hostname="web-0",
    )


def retry(job: Job, env: dict, target: str | None = None) -> Job:
    """Retry `job` as an operator would, from a shell, enqueued on the backend `env` names."""
    command = [sys.executable, "manage.py", "retry", "job", str(job.pk)]
    command += ["--tenant", "acme", "--user", "alice"]
    if target:
        command += ["--target-hostname", target]
    done = subprocess.run(
        command, cwd=ROOT, env=worker_env(env=env), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Job.objects.get(retry_of=job)


def ran(handler_calls: HandlerCalls, job: Job) -> int:
    """How many times the counter handler ran for `job` (it counts under the original's id)."""
    return handler_calls.count(str(job.retry_of_id or job.pk))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["db", "rq"])
def test_an_idle_worker_runs_the_job_a_dead_worker_took_a_lease_after_the_death(
    handler_calls, backend, acme, worker_process, wait_until, redis_url, tmp_path
):
    import redis
    from django_tasks_db.models import DBTaskResult
    from rq.registry import StartedJobRegistry

    env = {"REDRIVE_TASKS": backend, "REDIS_URL": redis_url}
    connection = redis.Redis.from_url(redis_url)
    job = retry(failed_job(acme), env)  # queued for any host
    marker = tmp_path / "taken"
    doomed = worker_process(
        "web-1",
        lease_seconds=LEASE,
        env={**env, "REDRIVE_TEST_MARKER": str(marker)},
        hook=HOLD_THE_TASK,
    )
    wait_until(marker.exists, timeout=60, message="the first worker to take the job")

    # What the death will leave: the job's task taken by web-1's worker, its work not claimed.
    assert Job.objects.get(pk=job.pk).status == "unprocessed"
    dead_worker = WorkerHeartbeat.objects.get(hostname="web-1").pk
    if backend == "rq":
        started = StartedJobRegistry("host-_any", connection=connection)
        [(rq_job_id, execution_id)] = started.get_job_and_execution_ids(cleanup=False)
        rq_gives_up_at = connection.zscore(started.key, f"{rq_job_id}:{execution_id}")
    else:
        assert DBTaskResult.objects.get(status="RUNNING").worker_ids == [dead_worker]

    survivor = worker_process("web-2", lease_seconds=LEASE, env=env)
    wait_until(
        lambda: WorkerHeartbeat.objects.filter(hostname="web-2").exists(),
        timeout=60,
        message="the second worker to start",
    )
    # Nothing for it to take: it idles (RQ: blocked on its queues).
    if backend == "rq":
        assert connection.llen("rq:queue:host-_any") == connection.llen("rq:queue:default") == 0
    else:
        assert not DBTaskResult.objects.filter(status="READY").exists()

    assert doomed.kill_session() == -9
    killed = time.time()
    try:
        wait_until(
            lambda: Job.objects.filter(pk=job.pk, status="completed").exists(),
            timeout=30,
            message="the idle worker to run the dead worker's job",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the survivor said:\n{survivor.output()[-4000:]}") from None
    recovered = time.time() - killed
    print(
        f"\n{backend}, idle survivor: the dead worker's job ran {recovered:.1f} s after the kill"
        f" (lease {LEASE} s)"
        + (
            f"; RQ's own heartbeat of it had {rq_gives_up_at - killed:.0f} s to go"
            if backend == "rq"
            else ""
        )
    )

    # By the heartbeats: a lease after the dead worker's last beat, at the next reaper round.
    assert recovered < LEASE + 2 * LEASE / 3 + 3
    job.refresh_from_db()
    assert job.taken_by == "web-2"
    assert ran(handler_calls, job) == 1
    output = survivor.output()
    if backend == "db":
        assert "gave back task" in output
        # The dead worker's task failed as lost, replaced by the task web-2 ran.
        assert DBTaskResult.objects.get(status="FAILED").worker_ids == [dead_worker]
        # The library marks the task done after the job's own commit: wait for that too.
        wait_until(
            lambda: DBTaskResult.objects.filter(status="SUCCESSFUL").exists(),
            timeout=30,
            message="the survivor's task to be marked successful",
        )
        assert DBTaskResult.objects.get(status="SUCCESSFUL").worker_ids[0] != dead_worker
        return
    assert killed + recovered < rq_gives_up_at - 30  # not by RQ's own expiry of the job
    assert "gave back 1 job(s) of queue host-_any: their worker stopped beating" in output
    # What the operator reads, instead of django-tasks' "ERROR ... state=FAILED / NoneType: None".
    assert (
        f"job {rq_job_id} of task run_job was abandoned by a dead worker ({dead_worker}); "
        "RQ runs it again (delivery 2 of 5)"
    ) in output
    assert "state=FAILED" not in output
    assert "NoneType: None" not in output


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["db", "rq"])
def test_the_jobs_of_a_host_that_never_returns_fail_and_run_elsewhere_when_retried(
    handler_calls, backend, acme, worker_process, wait_until, redis_url, client
):
    env = {
        "REDRIVE_TASKS": backend,
        "REDIS_URL": redis_url,
        "REDRIVE_LEASE_SECONDS": str(LEASE),
        "REDRIVE_HOST_GONE_SECONDS": str(GONE),
    }
    gone = worker_process("web-gone", lease_seconds=LEASE, env=env)
    worker_process("web-live", lease_seconds=LEASE, env=env)
    wait_until(
        lambda: WorkerHeartbeat.objects.filter(hostname__in=["web-gone", "web-live"]).count() == 2,
        timeout=60,
        message="both workers to start",
    )
    assert gone.kill_session() == -9
    last_seen = WorkerHeartbeat.objects.get(hostname="web-gone").seen_at

    stranded = retry(failed_job(acme), env, target="web-gone")
    wait_until(
        lambda: Job.objects.filter(pk=stranded.pk, status="failed").exists(),
        timeout=30,
        message="the job for web-gone to fail",
    )
    stranded.refresh_from_db()
    waited = (stranded.finished_at - max(stranded.created_at, last_seen)).total_seconds()
    print(f"\n{backend}: the job for a gone host failed {waited:.1f} s after (gone after {GONE} s)")
    assert stranded.error_message == "no live worker for host web-gone"
    assert waited >= GONE
    assert list(stranded.events.values_list("revision", "type", "data")) == [
        (1, "created", {"target_hostname": "web-gone", "retry_of": str(stranded.retry_of_id)}),
        (2, "failed", {"error": "no live worker for host web-gone"}),
    ]
    assert stranded.revision == 2
    assert ran(handler_calls, stranded) == 0

    # It is in the inbox, and a retry sends it to a host that lives.
    client.force_login(User.objects.get(username="alice"))
    assert "no live worker for host web-gone" in client.get(reverse("inbox")).content.decode()
    elsewhere = retry(stranded, env, target="web-live")
    wait_until(
        lambda: Job.objects.filter(pk=elsewhere.pk, status="completed").exists(),
        timeout=30,
        message="the retry to run on web-live",
    )
    elsewhere.refresh_from_db()
    assert elsewhere.taken_by == "web-live"
    assert ran(handler_calls, elsewhere) == 1


@pytest.mark.django_db
def test_the_reaper_fails_only_jobs_whose_host_has_had_no_live_worker_for_the_time(settings):
    settings.REDRIVE_LEASE_SECONDS = LEASE
    settings.REDRIVE_HOST_GONE_SECONDS = 60
    tenant = Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme-prod")
    now = timezone.now()
    long_ago = now - timedelta(seconds=61)
    WorkerHeartbeat.objects.create(worker_id="live", hostname="web-live", pid=1)
    WorkerHeartbeat.objects.create(
        worker_id="lost", hostname="web-lost", pid=2, seen_at=now - timedelta(seconds=30)
    )
    WorkerHeartbeat.objects.create(worker_id="gone", hostname="web-gone", pid=3, seen_at=long_ago)

    def job(host: str, created_at=long_ago, status: str = "unprocessed") -> Job:
        with transaction.atomic():
            job = jobs_run.create_job(tenant, OPERATION, host)
        Job.objects.filter(pk=job.pk).update(created_at=created_at, status=status)
        return job

    gone = job("web-gone")
    never_seen = job("web-typo")
    live = job("web-live")
    lost_a_while = job("web-lost")  # not live, but seen 30 s ago: not gone yet
    any_host = job("_any")
    just_queued = job("web-gone", created_at=now)  # its host gets the time from now on
    processing = job("web-gone", status="processing")

    assert jobs_run.fail_jobs_of_gone_hosts() == 2
    status = dict(Job.objects.values_list("pk", "status"))
    assert [status[j.pk] for j in (gone, never_seen)] == ["failed", "failed"]
    assert {status[j.pk] for j in (live, lost_a_while, any_host, just_queued)} == {"unprocessed"}
    assert status[processing.pk] == "processing"
    failed = Job.objects.get(pk=never_seen.pk)
    assert (failed.error_message, failed.revision) == ("no live worker for host web-typo", 2)
    assert failed.finished_at is not None and failed.fingerprint
    assert JobEvent.objects.filter(job=failed, type="failed").get().data == {
        "error": "no live worker for host web-typo"
    }
    assert jobs_run.fail_jobs_of_gone_hosts() == 0  # each job fails once
    # What the console and the API read: hosts without a live worker right now.
    hosts = ["web-live", "web-lost", "web-gone", "_any"]
    assert heartbeats.hosts_without_live_worker(hosts) == {"web-lost", "web-gone"}


def test_a_failure_logged_without_an_exception_has_no_empty_traceback():
    """django-tasks logs a FAILED task with logger.exception() also where no exception is being
    handled (a task RQ failed for a dead worker); the console handler's filter drops the
    "NoneType: None" the formatter would print."""
    record = logging.getLogger("django_tasks").makeRecord(
        "django_tasks", logging.ERROR, __file__, 1, "Task failed", (), (None, None, None)
    )
    assert NoEmptyTraceback().filter(record)
    assert logging.Formatter().format(record) == "Task failed"
    raised = ValueError("boom")
    real = logging.getLogger("x").makeRecord(
        "x", logging.ERROR, __file__, 1, "m", (), (ValueError, raised, None)
    )
    assert NoEmptyTraceback().filter(real)
    assert "ValueError: boom" in logging.Formatter().format(real)
