"""Failures over time: counts per minute, hour or day and kind, for the inbox's chart."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db.models import Count, Sum, Value
from django.db.models.functions import Trunc
from django.utils import timezone

from executions import kinds
from executions.filters import FailureFilter
from executions.models import Tenant

from . import rollup


@dataclass
class Bucket:
    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Series:
    unit: str  # "minute" | "hour" | "day"
    start: datetime
    end: datetime
    buckets: list[Bucket]

    @property
    def total(self) -> int:
        return sum(b.total for b in self.buckets)

    @property
    def peak(self) -> int:
        return max((b.total for b in self.buckets), default=0)


MAX_DAYS = 400
# The bucket that fits a window: (the longest window it is used for, the bucket's length).
UNITS = (
    ("minute", timedelta(hours=2), timedelta(minutes=1)),
    ("hour", timedelta(hours=48), timedelta(hours=1)),
    ("day", timedelta(days=MAX_DAYS), timedelta(days=1)),
)
DEFAULT_WINDOW = timedelta(hours=24)  # "any time" with nothing failed yet


def failures_over_time(tenant: Tenant, flt: FailureFilter, now: datetime | None = None) -> Series:
    """Failure counts per kind over the filter's window (from its first matching failure when it
    has no start; at most the last MAX_DAYS), per minute (windows up to 2 h), hour (up to 48 h)
    or day."""
    now = now or timezone.now()
    end = min(flt.until or now, now)
    start = flt.since or _first_failure(tenant, flt, end) or end - DEFAULT_WINDOW
    # A filter may end at the calendar's first day (0001-01-01): no window reaches before it.
    if end - datetime.min.replace(tzinfo=end.tzinfo) > timedelta(days=MAX_DAYS):
        start = max(start, end - timedelta(days=MAX_DAYS))
    start = min(start, end)
    unit, step = next((u, step) for u, longest, step in UNITS if end - start <= longest)
    first = _floor(start, unit)
    buckets: dict[datetime, Bucket] = {}
    t = first
    while t < end:
        buckets[t] = Bucket(t, {})
        t += step
    for kind, when, n in _counts_over_time(
        tenant, replace(flt, since=start, until=flt.until and end), unit
    ):
        bucket = buckets.get(when)
        if bucket is not None:
            bucket.counts[kind] = bucket.counts.get(kind, 0) + n
    return Series(unit=unit, start=start, end=end, buckets=list(buckets.values()))


def _floor(when: datetime, unit: str) -> datetime:
    if unit == "minute":
        return when.astimezone(timezone.UTC).replace(second=0, microsecond=0)
    return rollup.truncate(when, unit)


def _first_failure(tenant: Tenant, flt: FailureFilter, end: datetime) -> datetime | None:
    """When the oldest failure matching `flt` happened: each kind's first by its failed index."""
    firsts = [
        qs.filter(**{f"{kinds.get(kind).time_field}__lt": end})
        .order_by(kinds.get(kind).time_field)
        .values_list(kinds.get(kind).time_field, flat=True)
        .first()
        for kind, qs in flt.querysets(tenant).items()
    ]
    return min(filter(None, firsts), default=None)


def _counts_over_time(tenant: Tenant, flt: FailureFilter, unit: str):
    """(kind, bucket start, count) for the failures matching `flt`. The rollup holds hours: a
    chart per minute counts the rows (its window is at most two hours)."""
    counted, edges = rollup.counted(tenant, flt) if unit != "minute" else (None, [flt])
    if counted is not None:
        for r in (
            counted.order_by()
            .annotate(when=Trunc("bucket", unit, tzinfo=timezone.UTC))
            .values("kind", "when")
            .annotate(total=Sum("n"))
        ):
            yield r["kind"], r["when"], r["total"]
    per_edge = [
        qs.order_by()
        .annotate(k=Value(kind), when=Trunc(kinds.get(kind).time_field, unit, tzinfo=timezone.UTC))
        .values("k", "when")
        .annotate(total=Count("pk"))
        for edge in edges
        for kind, qs in edge.querysets(tenant).items()
    ]
    for r in rollup.union_all(per_edge):
        yield r["k"], r["when"], r["total"]
