"""`manage.py worker`: a Redrive worker.

It runs the configured django.tasks backend's own worker (django-tasks-db's `db_worker` loop, or an
RQ worker with RQ's scheduler when REDRIVE_TASKS=rq) on the default queue plus the job queues for
`_any` and this worker's hostname, beats (executions/heartbeats.py), and beside it runs the
reaper: it fails attempts whose worker was lost, gives back the tasks a dead worker had taken (on
RQ: has RQ take them as abandoned, executions/rq_backend.py), and fails the jobs of hosts gone for
good.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from functools import partial

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, connections

from executions import failure_counts, heartbeats, leases, queueing, reaper, triage
from executions import queues as queue_control
from executions.kinds.functions.starting import fire_due_cron
from executions.kinds.jobs.run import ANY_HOST, fail_jobs_of_gone_hosts
from executions.validation import HOSTNAME_RE
from executions.work import command

log = logging.getLogger("redrive.worker")

# How long an idle worker waits between looks at the queue. On PostgreSQL an enqueue wakes it at
# once (queueing.run_woken), so this bounds only what sends no wake (a deferred task, one the
# reaper gives back); each look costs ~0.1% of a core per look/s (bench/README.md, "Sync retry").
# On SQLite each look takes the database's write lock, so it looks less often.
IDLE_INTERVAL = {"postgresql": 0.2, "other": 0.2}


def follow_pauses(worker, queues: list[str], heartbeat: heartbeats.Heartbeat) -> None:
    """Ask the backend only for the queues not paused (the console's workers page pauses them):
    django-tasks-db's Worker reads `queue_names` on each look; on RQ, PausingQueue reads
    `rq_backend.paused_here`."""
    if settings.REDRIVE_TASKS == "rq":
        from executions import rq_backend

        def apply(asked: list[str]) -> None:
            rq_backend.paused_here = frozenset(queues) - frozenset(asked)
    else:

        def apply(asked: list[str]) -> None:
            worker.queue_names = asked

    queue_control.follow_pauses(queues, heartbeat, apply)


def reaper_round(queues: list[str]) -> None:
    reaper.reap()
    if settings.REDRIVE_TASKS == "rq":
        from executions import rq_backend

        rq_backend.give_back_abandoned_jobs(queues)
    else:
        heartbeats.redeliver_lost_tasks()
    fail_jobs_of_gone_hosts()
    heartbeats.prune()
    failure_counts.fold()  # keep the console's pending counts short
    triage.lapse_ignores()  # ignores until a date end on time, not at the next failure


class Command(BaseCommand):
    help = "Run a Redrive worker (tasks, host jobs and the lost-attempt reaper)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--hostname",
            default=None,
            help="Take jobs targeted at this host (and at _any). Default: this machine's name.",
        )
        parser.add_argument("--batch", action="store_true", help="Run what is queued, then exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds to wait when the queue is empty (db backend). Default: "
            f"{IDLE_INTERVAL['postgresql']} on PostgreSQL, {IDLE_INTERVAL['other']} otherwise.",
        )
        parser.add_argument("--no-reaper", action="store_true", help="Do not run the reaper here.")
        parser.add_argument(
            "--allow-commands",
            action="store_true",
            help="Run command.exec jobs (programs on this host). Off by default.",
        )
        parser.add_argument(
            "--command-env",
            type=lambda raw: frozenset(n.strip() for n in raw.split(",") if n.strip()),
            default=frozenset(),
            metavar="NAME,NAME",
            help="Environment variables a command's env may set (none by default).",
        )

    def handle(
        self,
        *args,
        hostname: str | None,
        batch: bool,
        interval: float | None,
        no_reaper: bool,
        **options,
    ) -> None:
        hostname = hostname or socket.gethostname()
        if not HOSTNAME_RE.match(hostname):
            raise CommandError(f"--hostname {hostname!r} is not a valid hostname")
        command.configure(allowed=options["allow_commands"], env_names=options["command_env"])
        os.environ["REDRIVE_WORKER_HOSTNAME"] = hostname
        queues = ["default", queueing.host_queue(ANY_HOST), queueing.host_queue(hostname)]
        if not no_reaper and not batch:
            leases.run_every(leases.renewal_seconds(), partial(reaper_round, queues), "reaper")
        if not batch:
            # Every worker looks; a conditional UPDATE lets one of them fire each tick.
            leases.run_every(settings.REDRIVE_CRON_CHECK_MS / 1000, fire_due_cron, "cron")
        self.stdout.write(
            f"Redrive worker for host {hostname!r} on queues {', '.join(queues)} "
            f"({settings.REDRIVE_TASKS} backend)"
        )
        if settings.REDRIVE_TASKS == "rq":
            self._run_rq(queues, batch, hostname)
        else:
            self._run_db(queues, batch, interval, hostname)

    def _run_db(
        self, queues: list[str], batch: bool, interval: float | None, hostname: str
    ) -> None:
        from django_tasks_db.management.commands.db_worker import Worker

        if interval is None:
            vendor = connections["default"].vendor
            interval = IDLE_INTERVAL.get(vendor, IDLE_INTERVAL["other"])

        heartbeat = heartbeats.Heartbeat(hostname)
        worker = Worker(
            queue_names=queues,
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=heartbeat.worker_id,
            excluded_queue_names=[],
        )
        worker.configure_signals()
        heartbeat.start()
        follow_pauses(worker, queues, heartbeat)
        try:
            while True:
                try:
                    heartbeat.beat()  # before the first task taken under this id
                    queueing.run_woken(worker)  # worker.run(), woken when a task is enqueued
                    return
                except (OperationalError, InterfaceError):
                    # The database went away (restart, failover, a terminated backend): reconnect
                    # and go on. Attempts of the task that was cut off expire and are reaped; the
                    # task itself stays RUNNING under this id, so take a new one and let the
                    # reaper give that task back once the old id's heartbeat is a lease old.
                    log.exception("database connection lost; reconnecting")
                    leases.keeper.release_all()
                    connections.close_all()
                    worker.worker_id = heartbeat.new_identity()
                    time.sleep(1)
        finally:
            heartbeat.stop()

    def _run_rq(self, queues: list[str], batch: bool, hostname: str) -> None:
        import django_rq
        from django_tasks_rq.backend import Job

        from executions import rq_backend

        # The RQ worker is named by its heartbeat's id: the reaper tells from the beats which
        # worker of a started job is dead (rq_backend.give_back_abandoned_jobs).
        heartbeat = heartbeats.Heartbeat(hostname)
        worker = django_rq.get_worker(
            *queues,
            job_class=Job,
            queue_class=rq_backend.PausingQueue,
            name=heartbeat.worker_id,
            maintenance_interval=rq_backend.MAINTENANCE_SECONDS,
            worker_ttl=rq_backend.WORKER_TTL,
        )
        heartbeat.beat()
        follow_pauses(worker, queues, heartbeat)
        connections.close_all()  # the work-horses fork from this thread: no connection to share
        heartbeat.start()
        try:
            # RQ's scheduler moves the tasks deferred with run_after (a staged bulk's next step,
            # a webhook's or a function's retry after its backoff) to their queue when due: one
            # worker's scheduler process holds the queues' lock, another takes over when it dies.
            worker.work(burst=batch, with_scheduler=True)
        finally:
            heartbeat.stop()
