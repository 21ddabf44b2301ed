"""Deterministic races on PostgreSQL, without sleeps: another connection holds a table so that a
transaction stops at a known statement (its INSERT into that table), and the test waits until
the sessions it expects are waiting for locks before it lets them go."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import Model


@contextmanager
def inserts_held(model: type[Model]) -> Iterator[None]:
    """While inside, INSERTs into `model`'s table wait (reads and other tables go on): another
    connection holds the table in SHARE mode until the block ends."""
    locked, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
                locked.set()
                release.wait(120)
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread
            errors.append(exc)
            locked.set()
        finally:
            connection.close()

    holder = threading.Thread(target=hold, name="table-lock")
    holder.start()
    locked.wait(60)
    if errors:
        raise errors[0]
    try:
        yield
    finally:
        release.set()
        holder.join(120)


def lock_waiters() -> int:
    """How many sessions on the test database are waiting for a lock right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


class Background:
    """fn() in a thread of its own (so on a database connection of its own, closed after)."""

    def __init__(self, fn: Callable[[], Any], name: str = "background") -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except BaseException as exc:  # noqa: BLE001 - raised by result()
            self.error = exc
        finally:
            connection.close()
            self.finished.set()

    def result(self, timeout: float = 120) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.thread.name} did not finish in {timeout}s"
        if self.error is not None:
            raise self.error
        return self.value
