"""Leases: how a worker holds an attempt, and how a dead worker's attempt is found and failed.

claim()   one conditional UPDATE moves rows into their running status, bumps `lease_token` (the
          fencing token) and stamps this worker as owner with an expiry;
Keeper    a daemon thread in the worker process that renews the expiry of everything it holds;
finish()  the closing UPDATE requires the token it claimed with: if the attempt was reaped (or
          claimed again) meanwhile, the late result is dropped instead of overwriting the newer one;
fail_lost()  fails the attempts whose lease expired with "worker lost" (each kind's reap), so they
          reach the inbox, their events sent and their triage counted like any failure;
run_every()  the daemon-thread loop the keeper, the workers' heartbeat and the reaper run in.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.db.models import F, Model, Q
from django.utils import timezone

log = logging.getLogger("redrive.leases")

REAP_BATCH = 10_000  # per round: the rest waits a third of a lease
WORKER_LOST = "worker lost: the worker running this attempt stopped renewing its lease"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_seconds() -> int:
    return settings.REDRIVE_LEASE_SECONDS


def renewal_seconds() -> float:
    """How often leases are renewed, workers beat and the reaper looks: a third of the lease."""
    return max(lease_seconds() / 3, 0.5)


def lease_expiry(extra_seconds: float = 0):
    return timezone.now() + timedelta(seconds=lease_seconds() + extra_seconds)


class Keeper:
    """Renews the leases this process holds, every third of the lease time."""

    def __init__(self) -> None:
        self._held: dict[tuple[type[Model], str], int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, model: type[Model], pk, token: int) -> None:
        with self._lock:
            self._held[(model, str(pk))] = token
            if self._thread is None or not self._thread.is_alive():
                self._thread = run_every(renewal_seconds(), self.renew_now, "lease-keeper")

    def release(self, model: type[Model], pk) -> None:
        with self._lock:
            self._held.pop((model, str(pk)), None)

    def release_all(self) -> None:
        """Stop renewing everything: a task that raised half-way must let its unfinished
        attempts expire, so the reaper fails them instead of leaving them running forever."""
        with self._lock:
            self._held.clear()

    def renew_now(self) -> int:
        with self._lock:
            held = list(self._held.items())
        renewed = 0
        expires = lease_expiry()
        for (model, pk), token in held:
            # Only a lease that still exists: an attempt that finished after the snapshot above
            # (its finish clears the expiry and keeps the token) must not get one back.
            renewed += model.objects.filter(
                pk=pk, lease_token=token, lease_expires_at__isnull=False
            ).update(lease_expires_at=expires)
        return renewed


keeper = Keeper()


# Held by a round of run_every, and by a fork (RQ's worker forks a work-horse per job while its
# heartbeat and reaper threads run): a child forked while another thread is inside a database
# driver inherits that driver's locks held by nobody (SQLite's global mutexes) and hangs on its
# first query. So a fork waits for the round under way, and no round starts during a fork.
_rounds = threading.Lock()
os.register_at_fork(
    before=_rounds.acquire, after_in_parent=_rounds.release, after_in_child=_rounds.release
)


def run_every(
    seconds: float, fn: Callable[[], object], name: str, stop: threading.Event | None = None
) -> threading.Thread:
    """Run `fn` every `seconds` in a daemon thread until `stop` is set (the keeper, the
    heartbeat, the reaper). Each round runs on a short database connection of its own, so an
    idle thread holds none; a round that fails (a database blip) is logged and the next retries."""
    stop = stop or threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            with _rounds:
                try:
                    close_old_connections()
                    fn()
                except Exception:
                    log.exception("%s round failed", name)
                finally:
                    connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


def new_owner() -> str:
    return f"{worker_name()}:{uuid.uuid4().hex[:8]}"[:64]


def claim(
    queryset,
    *,
    status_field: str = "status",
    to_status: str,
    owner: str,
    extra=None,
    grace_seconds: float = 0,
    wait_for_disk: bool = True,
) -> dict[str, int]:
    """Claim every row of `queryset` (already filtered to claimable states) for `owner`.

    Returns {pk: fencing token} of the rows this call won; rows another worker won are absent.
    wait_for_disk=False (PostgreSQL): the commit does not wait for its WAL flush. Only a crash of
    the database server can lose such a claim, and that crash ends the claimer's connection too:
    its finish fails, its task is given back and the work is claimed and run again.
    """
    model = queryset.model
    values = _claim_values(status_field, to_status, owner, grace_seconds, extra)
    with transaction.atomic():
        _commit_without_flush(wait_for_disk)
        claimed = queryset.update(**values)
        if not claimed:
            return {}
        # Our UPDATE holds the row locks until commit, so this read sees exactly what we won.
        # The expiry it wrote narrows the read to each kind's (status, lease_expires_at) index:
        # by status alone it visited every row in that status, a queued backlog included, so a
        # claim cost grew with the queue (bench/README.md, start).
        mine = {"lease_owner": owner, status_field: to_status}
        if isinstance(values["lease_expires_at"], datetime):
            mine["lease_expires_at"] = values["lease_expires_at"]
        won = dict(model.objects.filter(**mine).values_list("pk", "lease_token"))
    for pk, token in won.items():
        keeper.hold(model, pk, token)
    return {str(pk): token for pk, token in won.items()}


def claim_one(
    model: type[Model],
    pk,
    token: int,
    *,
    from_status: str,
    to_status: str,
    owner: str,
    grace_seconds: float = 0,
    wait_for_disk: bool = True,
) -> int | None:
    """claim() for one row its caller read at `token` in `from_status`: the token it wins is
    token + 1, so nothing is read back (a statement less on a synchronous retry's path). None:
    another worker won it, or it is no longer in `from_status`."""
    values = _claim_values("status", to_status, owner, grace_seconds, None)
    with transaction.atomic():
        _commit_without_flush(wait_for_disk)
        claimed = model.objects.filter(pk=pk, status=from_status, lease_token=token).update(
            **values
        )
    if not claimed:
        return None
    keeper.hold(model, pk, token + 1)
    return token + 1


def _claim_values(status_field, to_status, owner, grace_seconds, extra) -> dict:
    return {
        status_field: to_status,
        "lease_owner": owner,
        "lease_token": F("lease_token") + 1,
        "lease_expires_at": lease_expiry(grace_seconds),
        **(extra or {}),
    }


def _commit_without_flush(wait_for_disk: bool) -> None:
    """Inside the claim's transaction: wait_for_disk=False lets its commit skip the WAL flush."""
    if not wait_for_disk and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def finish(
    model: type[Model],
    pk,
    token: int,
    *,
    running_status: str,
    notify: str = "",
    **values,
) -> bool:
    """The fenced closing UPDATE. False means the attempt was reaped or re-claimed meanwhile.
    `notify`: a channel told when it commits (PostgreSQL), for whoever waits for this attempt."""
    keeper.release(model, pk)
    # The finish and what it settles (a success resolves its chain) commit together.
    with transaction.atomic():
        updated = model.objects.filter(pk=pk, lease_token=token, status=running_status).update(
            lease_owner="", lease_expires_at=None, **values
        )
        if updated:
            became_final(model, [(pk, values)])
            if notify and connection.vendor == "postgresql":
                # In the transaction, so sent at its commit: no round trip of its own after it.
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_notify(%s, '')", [notify])
    if not updated:
        log.warning("dropped a late result for %s %s (token %s)", model.__name__, pk, token)
    return bool(updated)


class Finisher:
    """Writes the fenced finishes of a batch together: one transaction (one commit) per group of
    results instead of one per execution, flushed often enough that the console sees progress."""

    def __init__(
        self,
        model: type[Model],
        *,
        running_status: str,
        max_rows: int = 100,
        max_seconds: float = 0.5,
    ) -> None:
        self.model = model
        self.running_status = running_status
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.pending: list[tuple] = []
        self.last_flush = time.monotonic()

    def __enter__(self) -> Finisher:
        return self

    def __exit__(self, *exc) -> None:
        self.flush()

    def add(self, pk, token: int, **values) -> None:
        self.pending.append((pk, token, values))
        if len(self.pending) >= self.max_rows or (
            time.monotonic() - self.last_flush >= self.max_seconds
        ):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            if connection.vendor == "postgresql":
                self._flush_set_based()
            else:
                with transaction.atomic():  # one commit for the batch
                    for pk, token, values in self.pending:
                        finish(self.model, pk, token, running_status=self.running_status, **values)
            self.pending = []
        self.last_flush = time.monotonic()

    def _flush_set_based(self) -> None:
        """One fenced UPDATE per shape of result: `UPDATE t SET ... FROM jsonb_to_recordset(...)
        WHERE t.pk = r.pk AND t.lease_token = r.token AND t.status = <running>`."""
        groups: dict[tuple[str, ...], list[tuple]] = {}
        for pk, token, values in self.pending:
            keeper.release(self.model, pk)
            groups.setdefault(tuple(sorted(values)), []).append((pk, token, values))
        meta = self.model._meta
        quote = connection.ops.quote_name
        pk_type = meta.pk.db_type(connection)
        done: set[str] = set()
        with transaction.atomic(), connection.cursor() as cursor:
            for names, rows in groups.items():
                fields = [meta.get_field(n) for n in names]
                record = ", ".join(
                    [f"pk {pk_type}", "token bigint"]
                    + [f"{quote(f.column)} {f.db_type(connection)}" for f in fields]
                )
                assignments = ", ".join(
                    [f"{quote(f.column)} = r.{quote(f.column)}" for f in fields]
                    + [f"{quote('lease_owner')} = ''", f"{quote('lease_expires_at')} = NULL"]
                )
                documents = [
                    {
                        "pk": str(pk),
                        "token": token,
                        **{
                            f.column: _json_value(values[n])
                            for n, f in zip(names, fields, strict=True)
                        },
                    }
                    for pk, token, values in rows
                ]
                table = quote(meta.db_table)
                cursor.execute(
                    f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - names from _meta
                    f"FROM jsonb_to_recordset(%s::jsonb) AS r({record}) "
                    f"WHERE t.{quote(meta.pk.column)} = r.pk AND t.lease_token = r.token "
                    f"AND t.status = %s RETURNING t.{quote(meta.pk.column)}",
                    [json.dumps(documents), self.running_status],
                )
                done.update(str(pk) for (pk,) in cursor.fetchall())
                if cursor.rowcount != len(rows):
                    log.warning(
                        "dropped %s late results for %s",
                        len(rows) - cursor.rowcount,
                        self.model.__name__,
                    )
            # A late result (reaped or claimed again meanwhile) was dropped: it ended nothing.
            final = [(pk, values) for pk, _, values in self.pending if str(pk) in done]
            if final:
                became_final(self.model, final)


def became_final(model: type[Model], rows: list[tuple]) -> None:
    """Attempts that became final (`rows`: pk, the values written): their events (webhooks) and
    their triage (a success resolves its chain, a failure counts), in the finishing transaction."""
    from . import triage  # both import the kinds, which import this module
    from .webhooks import finals

    finals.finished(model, rows)
    triage.settled(model, [pk for pk, _ in rows])


def fail_lost(model: type[Model], expired: Q, **values) -> int:
    """The reaper's part for a kind whose lost attempt simply fails: the attempts `expired`
    selects get `values`, and become final like any other (events, triage). Returns how many."""
    with transaction.atomic():
        # Locked (PostgreSQL), or under SQLite's write lock (IMMEDIATE): each is still expired.
        pks = list(
            model.objects.filter(expired)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:REAP_BATCH]
        )
        if pks:
            model.objects.filter(pk__in=pks).update(**values)
            became_final(model, [(pk, values) for pk in pks])
    return len(pks)


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).strip()
