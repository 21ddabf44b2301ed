"""The read side, by concept: the inbox (rows, the cross-kind merge, its cursor, counts), the
groups by error fingerprint, the chart of failures over time, the detail page and the audit.
The console and `GET /api/failures` both read through these; writes live in `services`. What
each kind shows is its package's (executions/kinds/<kind>/shown.py)."""

from __future__ import annotations

from executions.kinds.shown import Shown, log_lines, pretty

from .audit import audit_events
from .chart import MAX_DAYS, Bucket, Series, failures_over_time
from .cursor import Cursor
from .detail import Detail, TimelineEntry, detail
from .groups import Group, group_by_fingerprint
from .inbox import (
    COUNT_CAP,
    MAX_LIMIT,
    Page,
    Row,
    fill_attempts,
    inbox,
    is_active,
    matching_count,
    retried_by,
    row,
    waiting_for_host,
)

__all__ = [
    "COUNT_CAP",
    "MAX_DAYS",
    "MAX_LIMIT",
    "Bucket",
    "Cursor",
    "Detail",
    "Group",
    "Page",
    "Row",
    "Series",
    "Shown",
    "TimelineEntry",
    "audit_events",
    "detail",
    "failures_over_time",
    "fill_attempts",
    "group_by_fingerprint",
    "inbox",
    "is_active",
    "log_lines",
    "matching_count",
    "pretty",
    "retried_by",
    "row",
    "waiting_for_host",
]
