"""The workers and queues page (/workers/): every worker's heartbeat and current work, each queue's
depth and oldest item; pausing a queue stops real workers from taking its tasks until resumed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from executions import queues as queue_control
from executions import services
from executions.models import AuditEvent, AutomationExecution, QueuePause, WorkerHeartbeat
from executions.tenancy import Actor
from tests.conftest import ROOT, worker_env

pytestmark = pytest.mark.django_db

SHOW_QUEUES = """
import json
from executions import queues
rows = queues.workers()
print(json.dumps({
    "queues": {
        q.name: {"depth": q.depth, "oldest": q.oldest is not None, "paused": q.pause is not None}
        for q in queues.queues(rows)
    },
    "workers": [[w.hostname, w.live, w.queues] for w in rows],
}))
"""


@pytest.fixture
def cast(cast):
    """The cast, without the tasks its failures left queued (they ran in this process)."""
    DBTaskResult.objects.all().delete()
    return cast


def staff(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def actor(cast, username: str) -> Actor:
    return Actor.for_user(cast.users[username], cast.acme, source="console")


def test_any_console_user_sees_workers_and_queues_with_depth_and_oldest_item(cast, login) -> None:
    WorkerHeartbeat.objects.create(
        worker_id="w-live", hostname="web-1", pid=11, queues=["default", "host-web-1"]
    )
    WorkerHeartbeat.objects.create(
        worker_id="w-dead",
        hostname="web-9",
        pid=12,
        seen_at=timezone.now() - timedelta(hours=1),
        queues=["default"],
    )
    # The cast's failures ran in this process: retrying two queues their tasks (default, host-_any).
    alice = actor(cast, "alice")
    services.retry_automation(alice, str(cast.automation.pk))
    services.retry_job(alice, str(cast.job.pk))
    oldest = DBTaskResult.objects.get(queue_name="default").enqueued_at
    DBTaskResult.objects.filter(queue_name="default").update(
        enqueued_at=oldest - timedelta(minutes=7)
    )

    found = {q.name: q for q in queue_control.queues(queue_control.workers())}
    assert found["default"].depth == 1
    assert found["default"].oldest_age >= timedelta(minutes=7)
    assert found["default"].served_by == 1  # the dead worker does not count
    assert found["host-_any"].depth == 1  # the job's retry, for any host
    assert found["host-web-1"].depth == 0 and found["host-web-1"].oldest is None

    page = login("bob").get("/workers/")  # a viewer: shared infrastructure, read-only
    assert page.status_code == 200
    html = page.content.decode()
    assert "web-1" in html and "web-9" in html and "stopped beating" in html
    assert re.search(r"enqueued <time [^>]*>7 min ago</time>", html)
    assert 'action="/workers/pause/"' not in html  # no pause button for a non-staff user
    assert str(cast.automation.pk) not in html  # never which tenant's item a task is for


def test_current_work_names_the_running_task_of_its_worker(cast) -> None:
    WorkerHeartbeat.objects.create(worker_id="w-busy", hostname="web-1", pid=11)
    services.retry_automation(actor(cast, "alice"), str(cast.automation.pk))
    task = DBTaskResult.objects.get()
    task.claim("w-busy")  # as django-tasks-db's worker does when it takes the task

    (row,) = queue_control.workers()
    assert [name for name, _ in row.current] == ["automations.run_automation_executions"]


def test_only_staff_may_pause_and_it_is_audited(cast, login) -> None:
    # alice is her tenant's admin, yet a pause would stop every tenant's work: refused.
    client = login("alice")
    assert client.post("/workers/pause/", {"queue": "default"}).status_code == 403
    assert not QueuePause.objects.exists()

    staff(cast.users["alice"])
    assert client.post("/workers/pause/", {"queue": "bad name!"}).status_code == 400
    response = client.post("/workers/pause/", {"queue": ""})
    assert response.status_code == 400 and b"queue" in response.content
    assert not QueuePause.objects.exists()

    assert client.post("/workers/pause/", {"queue": "default"}).status_code == 302
    pause = QueuePause.objects.get()
    assert (pause.queue_name, pause.paused_by) == ("default", "user:alice")
    html = client.get("/workers/").content.decode()
    assert "paused" in html and 'action="/workers/resume/"' in html
    assert client.post("/workers/resume/", {"queue": "default"}).status_code == 302
    assert not QueuePause.objects.exists()
    audit = list(
        AuditEvent.objects.filter(kind="queue").order_by("pk").values_list("action", "target_id")
    )
    assert audit == [("queue.pause", "default"), ("queue.resume", "default")]
    assert client.get("/workers/pause/").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_a_paused_queue_is_not_taken_by_a_real_worker_until_resumed(
    cast, worker_process, wait_until
) -> None:
    alice = staff(cast.users["alice"])
    me = Actor.for_user(alice, cast.acme, source="console")
    queue_control.set_paused(me, "default", True)
    worker = worker_process(hostname="web-1")
    # The worker says what it asks for: its own queues less the paused one.
    wait_until(
        lambda: any("host-web-1" in b.queues for b in WorkerHeartbeat.objects.all()),
        message="the worker's first look at the paused queues",
    )
    (beat,) = WorkerHeartbeat.objects.all()
    assert "default" not in beat.queues

    services.retry_automation(me, str(cast.automation.pk))  # the default queue: paused
    services.retry_job(me, str(cast.job.pk))  # host-_any: running
    wait_until(
        lambda: DBTaskResult.objects.filter(queue_name="host-_any", status="SUCCESSFUL").exists(),
        message="the job queue's task",
    )
    assert DBTaskResult.objects.get(queue_name="default").status == "READY", worker.output()
    assert AutomationExecution.objects.get(pk=cast.automation.pk).status == "pending"

    queue_control.set_paused(me, "default", False)
    wait_until(
        lambda: AutomationExecution.objects.get(pk=cast.automation.pk).status == "completed",
        message="the automation, once its queue is resumed",
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_paused_rq_queue_is_not_taken_by_a_real_rq_worker_until_resumed(
    worker_process, wait_until, redis_url
) -> None:
    import redis
    from django.contrib.auth.models import User

    from executions.models import Job, Membership, Tenant
    from tests.test_scale_out import failed_job, retry

    acme = Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme-prod")
    alice = User.objects.create_user("alice", is_staff=True)
    Membership.objects.create(user=alice, tenant=acme, role="admin")
    me = Actor.for_user(alice, acme, source="console")
    env = {"REDRIVE_TASKS": "rq", "REDIS_URL": redis_url}
    connection = redis.Redis.from_url(redis_url)
    queue_control.set_paused(me, "host-_any", True)
    worker_process("web-1", env=env)
    wait_until(
        lambda: [b.queues for b in WorkerHeartbeat.objects.all()] == [["default", "host-web-1"]],
        timeout=60,
        message="the RQ worker's first look at the paused queues",
    )

    paused = retry(failed_job(acme), env)  # for any host: the paused queue
    running = retry(failed_job(acme), env, target="web-1")
    wait_until(
        lambda: Job.objects.filter(pk=running.pk, status="completed").exists(),
        timeout=60,
        message="the job on the queue that is not paused",
    )
    assert Job.objects.get(pk=paused.pk).status == "unprocessed"
    assert connection.llen("rq:queue:host-_any") == 1  # still queued, not taken
    # What the workers page reads on RQ (RQ's own Queue and Worker API), in a process on RQ.
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHOW_QUEUES],
        cwd=ROOT,
        env=worker_env(env=env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    stats = json.loads(shown.strip().splitlines()[-1])
    assert stats["queues"]["host-_any"] == {"depth": 1, "oldest": True, "paused": True}
    assert stats["queues"]["host-web-1"]["paused"] is False
    assert stats["workers"] == [["web-1", True, ["default", "host-web-1"]]]

    queue_control.set_paused(me, "host-_any", False)
    wait_until(
        lambda: Job.objects.filter(pk=paused.pk, status="completed").exists(),
        timeout=60,
        message="the job, once its queue is resumed",
    )
