"""Failures over time: counts per hour or per day and kind, for the inbox's chart."""

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
    unit: str  # "hour" | "day"
    start: datetime
    end: datetime
    buckets: list[Bucket]

    @property
    def total(self) -> int:
        return sum(b.total for b in self.buckets)

    @property
    def peak(self) -> int:
        return max((b.total for b in self.buckets), default=0)


MAX_DAYS = 90


def failures_over_time(tenant: Tenant, flt: FailureFilter, now: datetime | None = None) -> Series:
    """Failure counts per hour (windows up to 48 h; the last 24 h when the filter has no start) or
    per day (longer windows, at most the last MAX_DAYS), per kind, following the filter."""
    now = now or timezone.now()
    end = min(flt.until or now, now)
    start = flt.since or end - timedelta(hours=24)
    if end - start > timedelta(days=MAX_DAYS):
        start = end - timedelta(days=MAX_DAYS)
    unit = "hour" if end - start <= timedelta(hours=48) else "day"
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    first = rollup.truncate(start, unit)
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


def _counts_over_time(tenant: Tenant, flt: FailureFilter, unit: str):
    """(kind, bucket start, count) for the failures matching `flt`."""
    counted, edges = rollup.counted(tenant, flt)
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
