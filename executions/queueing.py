"""Queueing work for the workers: what the kinds and the bulk retry import to define and enqueue
their django.tasks tasks. It imports nothing of Redrive's but the leases, so each task can live
with the code it runs (executions/kinds/<kind>/run.py, services.py) and no module needs to import
a task module that imports it back."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import weakref
from collections.abc import Callable
from functools import partial, wraps

from django.db import connections, router, transaction
from django.tasks import task
from django_tasks_db.backend import DatabaseBackend

from . import leases


def worker_task(fn: Callable):
    """A django.tasks task that, when it ends (or raises), holds no attempt: a worker runs one
    task at a time."""

    @wraps(fn)
    def releasing_leases(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            leases.keeper.release_all()

    return task()(releasing_leases)


def worker_hostname() -> str:
    return os.environ.get("REDRIVE_WORKER_HOSTNAME") or socket.gethostname()


def host_queue(hostname: str) -> str:
    """The django.tasks queue a job for `hostname` goes to (queue names are at most 32 chars)."""
    name = f"host-{hostname}"
    if len(name) > 32:
        name = "host-" + hashlib.sha1(hostname.encode(), usedforsecurity=False).hexdigest()[:27]
    return name


def enqueue_on_commit(task, *args, queue_name: str | None = None) -> None:
    """Enqueue a django.tasks task so that it exists exactly when the surrounding transaction
    commits. With the database backend the task row is written in that very transaction (it
    commits or rolls back with it, and no crash between commit and enqueue can lose it); other
    backends (Redis) enqueue from an on_commit hook."""
    target = task.using(queue_name=queue_name) if queue_name else task
    if transaction.get_connection().in_atomic_block and isinstance(
        target.get_backend(), DatabaseBackend
    ):
        target.enqueue(*args)
    else:
        transaction.on_commit(partial(target.enqueue, *args))


# An idle worker waits on this channel (PostgreSQL): every task enqueued on the database backend
# notifies it when its transaction commits (NOTIFY is transactional), so a worker takes the task
# at once instead of at its next look (issue 18: a synchronous retry waits for it).
WAKE_CHANNEL = "redrive_tasks"


def _tasks_connection():
    from django_tasks_db.models import DBTaskResult

    return connections[router.db_for_write(DBTaskResult)]


class _Notified:
    """Registered with on_commit by first_in_transaction: Django holds it until that transaction
    (or the savepoint it was registered in) commits or rolls back, then drops it."""

    def __call__(self) -> None:
        pass


_markers = threading.local()


def first_in_transaction(what: str, using: str | None = None) -> bool:
    """Whether the current transaction has not done `what` yet (and from now on it has). Outside
    a transaction: always True. A savepoint rolled back forgets what was done inside it."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return True
    key = (connection.alias, what)
    done = getattr(_markers, "done", None)
    if done is None:
        done = _markers.done = {}
    marker = done.get(key)
    if marker is not None and marker() is not None:
        return False
    new = _Notified()
    transaction.on_commit(new, using=connection.alias)
    done[key] = weakref.ref(new)
    return True


def wake_workers(sender, **kwargs) -> None:
    """django.tasks' task_enqueued signal (connected in apps.py): wake the idle workers. Once
    per transaction: a bulk enqueues dozens of tasks in one, and each NOTIFY is a round trip."""
    if not issubclass(sender, DatabaseBackend):
        return
    connection = _tasks_connection()
    if connection.vendor != "postgresql":
        return
    if not first_in_transaction("wake", connection.alias):
        return  # this transaction notifies already
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [WAKE_CHANNEL])


def run_woken(worker) -> None:
    """Run a django-tasks-db Worker until it stops, through its public run(): in batch mode it
    returns once the queue is empty, and then this waits for a wake (LISTEN, on the worker's own
    connection) instead of sleeping, at most `worker.interval`: tasks deferred (run_after) or
    given back by the reaper send no wake. Without PostgreSQL, or for --batch, plain run()."""
    connection = _tasks_connection()
    if worker.batch or connection.vendor != "postgresql":
        worker.run()
        return
    worker.batch = True
    listening = None
    try:
        while worker.running:
            if connection.connection is None or connection.connection is not listening:
                # A new session (first, or Django reconnected in run()): listen, then look.
                with connection.cursor() as cursor:
                    cursor.execute(f'LISTEN "{WAKE_CHANNEL}"')
                listening = connection.connection
            worker.run()
            if worker.running and connection.connection is listening:
                # Wakes that came while run() worked wait in psycopg's backlog: none is missed.
                for _ in listening.notifies(timeout=worker.interval, stop_after=1):
                    pass
    finally:
        worker.batch = False
