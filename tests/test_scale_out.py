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

import pytest
from django.contrib.auth.models import User

from executions.middleware import NoEmptyTraceback
from executions.models import HandlerCall, Job, Membership, Tenant, WorkerHeartbeat
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


def ran(job: Job) -> int:
    """How many times the counter handler ran for `job` (it counts under the original's id)."""
    return HandlerCall.objects.filter(key=str(job.retry_of_id or job.pk)).count()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["db", "rq"])
def test_an_idle_worker_runs_the_job_a_dead_worker_took_a_lease_after_the_death(
    backend, acme, worker_process, wait_until, redis_url, tmp_path
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
    wait_until(
        lambda: Job.objects.filter(pk=job.pk, status="completed").exists(),
        timeout=30,
        message="the idle worker to run the dead worker's job",
    )
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
    assert ran(job) == 1
    output = survivor.output()
    if backend == "db":
        assert "gave back task" in output
        assert DBTaskResult.objects.get().worker_ids[0] == dead_worker
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
