"""Workers' heartbeats: which workers, and so which hosts, are alive; and the queued tasks a dead
worker had taken, given back to the queue (database backend; RQ's counterpart is
`rq_backend.give_back_abandoned_jobs`).

Every `manage.py worker` beats, on either backend: one row per worker, under the id it takes queued
tasks with (django-tasks-db's worker id, or the RQ worker's name), stamped with the database's clock
every third of the lease time. A worker is live while its last beat is younger than a lease; a
host is live while one of its workers is (`hosts_without_live_worker`, what the console and the
API read) and gone once none has beaten for REDRIVE_HOST_GONE_SECONDS (`live_workers(within=...)`,
what the reaper reads, kinds/jobs/run.fail_jobs_of_gone_hosts).

django-tasks-db marks a task RUNNING under the worker's id, and commits, before the task's code
runs. A worker killed in between (or one whose database connection died there) leaves that task
RUNNING for ever and its executions pending, with no lease for the reaper to find: the lease is
taken by the task's first statement. The reaper fails each task RUNNING under an id that stopped
beating a lease ago (the library's own set_failed) and, in the same transaction, enqueues a fresh
task with the same arguments through django.tasks: only the libraries' public API, no edit of
their rows. Running a task again is safe: each task claims its work with a conditional UPDATE, so
what the dead worker had claimed is not run again (its lease expires and the reaper fails it as
"worker lost") and the rest runs once. After MAX_DELIVERIES deliveries (the failed task names the
one that replaced it, so the chain is counted) no fresh task is enqueued.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now
from django.utils.crypto import get_random_string
from django_tasks_db.models import DBTaskResult

from . import leases
from .models import Job, WorkerHeartbeat

log = logging.getLogger("redrive.heartbeats")

MAX_DELIVERIES = 5
LOST = "worker lost: the worker that took this task stopped before finishing it"


class WorkerLost(Exception):
    pass


class Heartbeat:
    """This process's heartbeat. `worker_id` is the id its task worker takes tasks with."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.worker_id = get_random_string(32)
        self._ids = [self.worker_id]
        self._stop = threading.Event()

    def beat(self) -> None:
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={"seen_at": Now()},
            create_defaults={
                "hostname": self.hostname[:255],
                "pid": os.getpid(),
                "started_at": Now(),
                "seen_at": Now(),
            },
        )

    def new_identity(self) -> str:
        """Take a new id (after the task under way was cut off by a lost database connection):
        the old one stops beating, so the reaper gives back the task left RUNNING under it."""
        self.worker_id = get_random_string(32)
        self._ids.append(self.worker_id)
        return self.worker_id

    def start(self) -> None:
        leases.run_every(leases.renewal_seconds(), self.beat, "heartbeat", self._stop)

    def stop(self) -> None:
        """On a clean exit: nothing is left RUNNING under our ids, so no row is needed."""
        self._stop.set()
        try:
            WorkerHeartbeat.objects.filter(pk__in=self._ids).delete()
        except Exception:  # the database may be gone; the rows go stale and are pruned
            log.warning("could not remove this worker's heartbeat", exc_info=True)


def live_workers(within: float | None = None):
    """The heartbeats of workers that beat in the last `within` seconds (default: a lease)."""
    seconds = leases.lease_seconds() if within is None else within
    return WorkerHeartbeat.objects.filter(seen_at__gte=Now() - timedelta(seconds=seconds))


def stopped_workers():
    """The heartbeats of workers that have not beaten for a lease: dead, or cut off."""
    return WorkerHeartbeat.objects.filter(
        seen_at__lt=Now() - timedelta(seconds=leases.lease_seconds())
    )


def no_live_worker(hostname: str) -> str:
    return f"no live worker for host {hostname}"


def hosts_without_live_worker(hostnames: Iterable[str]) -> set[str]:
    """Which of these hosts have no live worker (`_any` always has one): one query, none for
    an empty set."""
    wanted = set(hostnames) - {Job.ANY_HOST}
    if not wanted:
        return set()
    live = live_workers().filter(hostname__in=wanted).values_list("hostname", flat=True)
    return wanted - set(live)


def waiting_for_host(jobs: Iterable[Job]) -> dict:
    """{job pk: "no live worker for host <name>"} for the unprocessed ones among `jobs` whose
    target host has no live worker: what they wait for. One query for all their hosts."""
    waiting = [j for j in jobs if j.status == Job.Status.UNPROCESSED]
    gone = hosts_without_live_worker(j.target_hostname for j in waiting)
    return {j.pk: no_live_worker(j.target_hostname) for j in waiting if j.target_hostname in gone}


def prune() -> int:
    """Forget workers unseen for an hour, or for longer than a host may be gone (the reaper
    reads how long ago a host was seen)."""
    keep = max(3600, settings.REDRIVE_HOST_GONE_SECONDS)
    deleted, _ = WorkerHeartbeat.objects.filter(
        seen_at__lt=Now() - timedelta(seconds=keep)
    ).delete()
    return deleted


def redeliver_lost_tasks() -> int:
    """Fail every task RUNNING under a worker id that has not beaten for a lease and enqueue a
    fresh one in its place (none after MAX_DELIVERIES). Returns how many were handled."""
    alive = set(live_workers().values_list("pk", flat=True))
    running = DBTaskResult.objects.running().values_list("pk", "worker_ids", "started_at")
    handled = 0
    for pk, worker_ids, started_at in running:
        if worker_ids and worker_ids[-1] in alive:
            continue
        with transaction.atomic():
            task = DBTaskResult.objects.running().filter(pk=pk, started_at=started_at).get_locked()
            if task is None:  # finished or handled meanwhile
                continue
            deliveries = len(worker_ids) + _earlier_deliveries(pk)
            if deliveries >= MAX_DELIVERIES:
                task.set_failed(WorkerLost(f"{LOST} ({deliveries} times)"))
                log.warning("failed task %s %s: lost %s times", pk, task.task_path, deliveries)
            else:
                lost = task.task_result
                fresh = lost.task.enqueue(*lost.args, **lost.kwargs)
                task.set_failed(WorkerLost(f"{LOST}; {GIVEN_BACK}{fresh.id}"))
                log.warning(
                    "gave back task %s %s (taken by %s) as task %s",
                    pk,
                    task.task_path,
                    worker_ids,
                    fresh.id,
                )
        handled += 1
    return handled


# How a failed task names the fresh one that replaced it (read back by _earlier_deliveries).
GIVEN_BACK = "given back as task "


def _earlier_deliveries(pk) -> int:
    """How many lost tasks this one replaces, following the failed tasks that name their
    replacement (a rare path: only after a worker died)."""
    count = 0
    while count < MAX_DELIVERIES:
        pk = (
            DBTaskResult.objects.failed()
            .filter(traceback__contains=f"{GIVEN_BACK}{pk}")
            .values_list("pk", flat=True)
            .first()
        )
        if pk is None:
            break
        count += 1
    return count
