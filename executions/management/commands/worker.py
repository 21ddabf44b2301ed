"""`manage.py worker`: a Redrive worker.

It runs the configured django.tasks backend's own worker (django-tasks-db's `db_worker` loop, or an
RQ worker when REDRIVE_TASKS=rq) on the default queue plus the job queues for `_any` and this
worker's hostname, and beside it the reaper that fails attempts whose worker was lost.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, close_old_connections, connections

from executions import engine, failure_counts, leases
from executions.validation import HOSTNAME_RE

log = logging.getLogger("redrive.worker")


def start_reaper(every: float) -> threading.Event:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                close_old_connections()
                engine.reap()
                failure_counts.fold()  # keep the console's pending counts short
            except Exception:  # the database may be briefly gone; try again next round
                log.exception("reaper round failed")
                connections.close_all()

    threading.Thread(target=loop, name="reaper", daemon=True).start()
    return stop


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
            default=0.2,
            help="Seconds to wait when the queue is empty (db backend).",
        )
        parser.add_argument("--no-reaper", action="store_true", help="Do not run the reaper here.")

    def handle(
        self, *args, hostname: str | None, batch: bool, interval: float, no_reaper: bool, **options
    ) -> None:
        hostname = hostname or socket.gethostname()
        if not HOSTNAME_RE.match(hostname):
            raise CommandError(f"--hostname {hostname!r} is not a valid hostname")
        os.environ["REDRIVE_WORKER_HOSTNAME"] = hostname
        queues = ["default", engine.host_queue(engine.ANY_HOST), engine.host_queue(hostname)]
        if not no_reaper and not batch:
            start_reaper(max(settings.REDRIVE_LEASE_SECONDS / 3, 0.5))
        self.stdout.write(
            f"Redrive worker for host {hostname!r} on queues {', '.join(queues)} "
            f"({settings.REDRIVE_TASKS} backend)"
        )
        if settings.REDRIVE_TASKS == "rq":
            self._run_rq(queues, batch)
        else:
            self._run_db(queues, batch, interval)

    def _run_db(self, queues: list[str], batch: bool, interval: float) -> None:
        from django.utils.crypto import get_random_string
        from django_tasks_db.management.commands.db_worker import Worker

        worker = Worker(
            queue_names=queues,
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=get_random_string(32),
            excluded_queue_names=[],
        )
        worker.configure_signals()
        while True:
            try:
                worker.run()
                return
            except (OperationalError, InterfaceError):
                # The database went away (restart, failover, a terminated backend): reconnect
                # and go on. Attempts of the task that was cut off expire and are reaped.
                log.exception("database connection lost; reconnecting")
                leases.keeper.release_all()
                connections.close_all()
                time.sleep(1)

    def _run_rq(self, queues: list[str], batch: bool) -> None:
        import django_rq
        from django_tasks_rq.backend import Job

        worker = django_rq.get_worker(*queues, job_class=Job)
        worker.work(burst=batch, with_scheduler=False)
