"""Folding the failure-count deltas into FailureCount (PostgreSQL only; see models.FailureCount).

The triggers of migration 0003 append one row per changed (tenant, kind, status, fingerprint,
source, hour) to FailureCountDelta, so writers never wait on a shared counter. `fold()` moves the
deltas into FailureCount in one statement (DELETE ... RETURNING feeding an upsert, in key order),
so a delta is added exactly once even when two folds race: the second one's DELETE skips the rows
the first one took. The console folds before it reads the counts; workers fold as they reap.
"""

from __future__ import annotations

from django.db import connection

from . import sets

FOLD = """
    WITH moved AS (
        DELETE FROM executions_failurecountdelta
        RETURNING tenant_id, kind, status, fingerprint, source, bucket, n, first_at, last_at, sample
    )
    INSERT INTO executions_failurecount AS fc
        (tenant_id, kind, status, fingerprint, source, bucket, n, first_at, last_at, sample)
    SELECT tenant_id, kind, status, fingerprint, source, bucket, sum(n), min(first_at),
        max(last_at), coalesce(min(nullif(sample, '')), '')
    FROM moved
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (tenant_id, kind, status, fingerprint, source, bucket) DO UPDATE SET
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
