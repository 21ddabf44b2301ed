"""The failure counts (PostgreSQL only; see models.FailureCount): the triggers that keep them, and
folding their deltas into FailureCount.

One statement-level trigger per kind's table and event appends one row per changed (tenant, kind,
status, triage state, fingerprint, source, hour) to FailureCountDelta: the failed rows its
statement wrote (+) and those it moved away (-: another status, hour, fingerprint...), grouped.
Append-only, so writers never wait on a shared counter. ENABLE ALWAYS: they also fire under
session_replication_role replica. Migration 0003 made the five first kinds' triggers (0018 made
them again, with the triage state); `install()` (run after every migrate) makes those of a kind
that has none yet, from its KIND, and counts what its table already holds.

`fold()` moves the deltas into FailureCount in one statement (DELETE ... RETURNING feeding an
upsert, in key order), so a delta is added exactly once even when two folds race: the second one's
DELETE skips the rows the first one took. The console folds before it reads the counts; workers
fold as they reap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection

from . import sets

FOLD = """
    WITH moved AS (
        DELETE FROM executions_failurecountdelta
        RETURNING tenant_id, kind, status, state, fingerprint, source, bucket, n, first_at,
            last_at, sample
    )
    INSERT INTO executions_failurecount AS fc
        (tenant_id, kind, status, state, fingerprint, source, bucket, n, first_at, last_at, sample)
    SELECT tenant_id, kind, status, state, fingerprint, source, bucket, sum(n), min(first_at),
        max(last_at), coalesce(min(nullif(sample, '')), '')
    FROM moved
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (tenant_id, kind, status, state, fingerprint, source, bucket) DO UPDATE SET
        n = fc.n + EXCLUDED.n,
        first_at = LEAST(fc.first_at, EXCLUDED.first_at),
        last_at = GREATEST(fc.last_at, EXCLUDED.last_at),
        sample = CASE WHEN fc.sample = '' THEN EXCLUDED.sample ELSE fc.sample END
"""


def enabled() -> bool:
    """Whether triggers keep the counts (PostgreSQL); elsewhere the rows are counted."""
    return sets.is_postgresql()


def fold() -> int:
    """Add every pending delta into FailureCount; returns how many counts changed."""
    if not enabled():
        return 0
    with connection.cursor() as cursor:  # one statement: atomic by itself
        cursor.execute(FOLD)
        return cursor.rowcount


class Counted(NamedTuple):
    """What the triggers of one kind's table count: its failed rows, by `source` and hour."""

    kind: str
    table: str
    time: str  # the column of when it failed
    source: str  # an SQL expression over the table: the failure's source (its name's key)
    statuses: tuple[str, ...]  # failed


EVENTS = {
    "insert": ("INSERT", "NEW TABLE AS new_rows"),
    "update": ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    "delete": ("DELETE", "OLD TABLE AS old_rows"),
}


# A failure's triage as counted: "regressed" is open.
STATE = "CASE WHEN triage = 'regressed' THEN 'open' ELSE triage END"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rows(counted: Counted, relation: str, sign: int) -> str:
    statuses = ", ".join(_literal(s) for s in counted.statuses)
    # Counted by triage state too (executions/triage.py): a failure still failed, and a record
    # that failed and was resolved by its own success (automations, workflows retry in place).
    return (
        f"SELECT tenant_id, status, {STATE} AS state, fingerprint, "  # noqa: S608 - code's names
        f"{counted.source} AS source, {counted.time} AS t, error_message, {sign} AS d "
        f"FROM {relation} WHERE status IN ({statuses}) OR triage = 'resolved'"
    )


def _append(counted: Counted, rows: str, into: str = "executions_failurecountdelta") -> str:
    """The INSERT of `rows`' counts, grouped by key and hour, into `into`."""
    return f"""
        INSERT INTO {into}
            (tenant_id, kind, status, state, fingerprint, source, bucket, n, first_at, last_at,
            sample)
        SELECT tenant_id, {_literal(counted.kind)}, status, state, fingerprint, source,
            date_trunc('hour', t, 'UTC'), sum(d), min(t) FILTER (WHERE d > 0),
            max(t) FILTER (WHERE d > 0),
            coalesce(left(min(error_message) FILTER (WHERE d > 0), 500), '')
        FROM ({rows}) AS changed
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        HAVING sum(d) <> 0
    """  # noqa: S608 - built from code's names


def create(cursor, counted: Counted) -> None:
    """`counted`'s trigger function and triggers, and the counts of what its table holds."""
    new, old = _rows(counted, "new_rows", 1), _rows(counted, "old_rows", -1)
    function = f"executions_failurecount_{counted.kind}"
    cursor.execute(f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN {_append(counted, new)};
            ELSIF TG_OP = 'UPDATE' THEN {_append(counted, new + " UNION ALL " + old)};
            ELSE {_append(counted, old)};
            END IF;
            RETURN NULL;
        END $$
    """)
    for event, (verb, referencing) in EVENTS.items():
        name = f"failurecount_{event}"
        cursor.execute(
            f"CREATE TRIGGER {name} AFTER {verb} ON {counted.table} REFERENCING {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
        cursor.execute(f"ALTER TABLE {counted.table} ENABLE ALWAYS TRIGGER {name}")
    cursor.execute(_append(counted, _rows(counted, counted.table, 1), "executions_failurecount"))


def drop(cursor, counted: Counted) -> None:
    for event in EVENTS:
        cursor.execute(f"DROP TRIGGER IF EXISTS failurecount_{event} ON {counted.table}")
    cursor.execute(f"DROP FUNCTION IF EXISTS executions_failurecount_{counted.kind}()")


def counted(kind) -> Counted:
    """What a kind's KIND (kinds/base.KindSpec) says its failure counts count."""
    meta = kind.model._meta
    return Counted(
        kind=str(kind.name),
        table=meta.db_table,
        time=meta.get_field(kind.time_field).column,
        source=kind.count_source,
        statuses=tuple(kind.failed_statuses),
    )


def install(kinds: Iterable) -> list[str]:
    """Give each of `kinds` whose table has no failure-count trigger yet its triggers, counting
    what the table holds; returns their names. Run after every migrate (apps.py), so a new kind
    is counted from its first migrate on."""
    if not enabled():
        return []
    tables = set(connection.introspection.table_names())
    # A kind whose app is not migrated (yet, or any more) has no table to count.
    wanted = [c for c in map(counted, kinds) if c.table in tables]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'failurecount_insert' AND c.relname = ANY(%s)",
            [[c.table for c in wanted]],
        )
        have = {table for (table,) in cursor.fetchall()}
        missing = [c for c in wanted if c.table not in have]
        for c in missing:
            create(cursor, c)
    return [c.kind for c in missing]
