"""The RQ (Redis) django.tasks backend, for many workers on many machines.

django-tasks-rq limits tasks to the queues named in RQ_QUEUES; Redrive's job queues are made per
target host (`host-<name>`), so this backend accepts any queue name (settings.RQ_QUEUES maps every
name to the same Redis).

Its queues give every job retries (RedeliveringQueue), RQ's counterpart of the database backend's
given-back tasks (executions/heartbeats.py): RQ requeues a job at once when its work-horse dies.
A job whose whole worker died (the worker and its work-horse) stays in the queue's started
registry; RQ itself calls it abandoned only once its heartbeat there expires (60 to 90 s after the
worker's death) and some worker's maintenance looks (an idle RQ 3 worker looks only every
`worker_ttl - 15` s). Redrive's workers beat in the database like on the database backend, under
their RQ worker name, so the reaper knows a lease after the death that the worker is gone and has
RQ handle its started jobs as abandoned right then (give_back_abandoned_jobs).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import cache

from django_rq.queues import DjangoRQ
from django_tasks_rq.backend import RQBackend, failed_callback
from rq import Retry
from rq.exceptions import AbandonedJobError, DequeueTimeout
from rq.executions import Execution
from rq.job import Callback
from rq.registry import StartedJobRegistry
from rq.timeouts import TimerDeathPenalty

log = logging.getLogger("redrive.rq")

# RQ's maintenance (registry clean-ups) every minute, RQ's default being ten. An idle worker
# blocks on its queues for `worker_ttl - 15` s before it looks again: this TTL makes that a
# minute too, so an idle worker keeps the interval (RQ 3's default TTL of 420 s made it ~7 min).
MAINTENANCE_SECONDS = 60
WORKER_TTL = MAINTENANCE_SECONDS + 15


class RedriveRQBackend(RQBackend):
    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        self.queues = set()  # any queue: job queues are created per target host

    def enqueue(self, task, args, kwargs):
        # RQ's schedule keeps whole seconds, dropping the fraction: a task deferred to 12.7 s
        # would be queued at 12 s. Round up, so it never runs before its run_after.
        if task.run_after is not None and task.run_after.microsecond:
            at = task.run_after.replace(microsecond=0) + timedelta(seconds=1)
            task = task.using(run_after=at)
        return super().enqueue(task, args, kwargs)


class RedeliveringQueue(DjangoRQ):
    """Every job may run up to MAX_DELIVERIES times. Running a task again is safe: each claims its
    work with a conditional UPDATE, so what a dead worker had claimed (failed as "worker lost"
    once its lease expires) does not run again, and the rest runs once. No interval: a job given
    back runs again at once, as on the database backend."""

    def create_job(self, *args, retry: Retry | None = None, on_failure=None, **kwargs):
        from .heartbeats import MAX_DELIVERIES

        if getattr(on_failure, "func", None) is failed_callback:
            on_failure = Callback(job_failed, timeout=getattr(on_failure, "timeout", None))
        return super().create_job(
            *args,
            retry=retry or Retry(max=MAX_DELIVERIES - 1),
            on_failure=on_failure,
            **kwargs,
        )


# The queues this worker process saw paused (executions/queues.follow_pauses sets it), and how
# long at most an idle worker blocks on Redis before it looks again, so a pause takes within that.
paused_here: frozenset[str] = frozenset()
PAUSE_WAIT_SECONDS = 1


class PausingQueue(RedeliveringQueue):
    """The worker's queue class: it asks Redis only for the queues not paused."""

    @classmethod
    def dequeue_any(cls, queues, timeout, connection, **kwargs):
        wanted = [q for q in queues if q.name not in paused_here]
        if timeout is not None:
            timeout = min(timeout, PAUSE_WAIT_SECONDS)
        if not wanted:
            if timeout is None:  # a burst worker: nothing it may take
                return None
            time.sleep(timeout)
            raise DequeueTimeout(timeout, [q.key for q in queues])
        return super().dequeue_any(wanted, timeout, connection, **kwargs)


def connection():
    """The Redis connection of the queues (the same for every queue name)."""
    return _queue("default").connection


def job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """The failure callback of Redrive's RQ jobs, in place of django-tasks-rq's.

    RQ calls it for a job that raised, and for a job it found abandoned by a dead worker: there
    django-tasks-rq would log `ERROR ... state=FAILED` with an empty traceback although RQ runs
    the job again. Say what happened instead; the task has not finished, so no task_finished
    signal (a work-horse that died is requeued the same way, without a callback)."""
    if issubclass(exc_type, AbandonedJobError):
        from .heartbeats import MAX_DELIVERIES

        left = job.retries_left or 0
        delivery = MAX_DELIVERIES - left
        task = job.func_name.rpartition(".")[2]
        if left > 0:
            log.warning(
                "job %s of task %s was abandoned by a dead worker (%s); RQ runs it again "
                "(delivery %s of %s)",
                job.id,
                task,
                job.worker_name,
                delivery + 1,
                MAX_DELIVERIES,
            )
            return
        log.error(
            "job %s of task %s was abandoned by a dead worker (%s) on its last delivery "
            "(%s of %s); RQ fails it",
            job.id,
            task,
            job.worker_name,
            delivery,
            MAX_DELIVERIES,
        )
    failed_callback(job, connection, exc_type, exc_value, traceback)


def give_back_abandoned_jobs(queue_names: list[str]) -> int:
    """Have RQ handle as abandoned (requeued, or failed after MAX_DELIVERIES) every job of these
    queues started by a worker whose heartbeat stopped a lease ago. Returns how many.

    RQ would do the same once the job's own heartbeat expired; this marks the dead worker's
    executions expired now and runs RQ's clean-up of the started registry, under the queue's
    maintenance lock (the one RQ's own maintenance takes, so the two never requeue a job twice).
    Only workers with a heartbeat row count as dead: anything else is left to RQ."""
    from .heartbeats import stopped_workers

    dead = set(stopped_workers().values_list("pk", flat=True))
    if not dead:  # the usual round: one small query, nothing asked of Redis
        return 0
    started: dict[str, tuple[DjangoRQ, StartedJobRegistry, list[Execution]]] = {}
    for name in queue_names:
        queue = _queue(name)
        # The timer death penalty: the failure callbacks run in this (the reaper's) thread,
        # where RQ's default, a SIGALRM, cannot be set.
        registry = StartedJobRegistry(
            queue=queue, job_class=queue.job_class, death_penalty_class=TimerDeathPenalty
        )
        executions = [
            Execution(execution_id, job_id, queue.connection)
            for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False)
        ]
        with queue.connection.pipeline() as pipeline:
            for execution in executions:
                pipeline.hgetall(execution.key)
            found = pipeline.execute()
        for execution, data in zip(executions, found, strict=True):
            # Without its hash (expired with RQ's heartbeat of it) RQ's own clean-up finds it.
            if data:
                execution.restore(data)
        if executions:
            started[name] = (queue, registry, executions)
    handled = 0
    for name, (queue, registry, executions) in started.items():
        abandoned = [e for e in executions if e.worker_name in dead]
        if not abandoned or not queue.acquire_maintenance_lock():
            continue
        try:
            with queue.connection.pipeline() as pipeline:
                for execution in abandoned:
                    # An expiry of now: RQ's clean-up below takes the job as abandoned.
                    registry.add_execution(execution, pipeline=pipeline, ttl=0, xx=True)
                pipeline.execute()
            registry.cleanup()
        finally:
            queue.release_maintenance_lock()
        handled += len(abandoned)
        log.warning(
            "gave back %s job(s) of queue %s: their worker stopped beating", len(abandoned), name
        )
    return handled


@cache
def _queue(name: str) -> DjangoRQ:
    """A queue of this process's reaper, kept: django_rq makes a Redis client per call."""
    import django_rq
    from django_tasks_rq.backend import Job

    return django_rq.get_queue(name, job_class=Job)
