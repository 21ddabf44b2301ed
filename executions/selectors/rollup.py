"""The failure-count rollup (FailureCount, kept by triggers on PostgreSQL; see
executions/failure_counts.py) as the inbox count, the groups and the chart read it: whole hours
from the rollup, the partial hours at a filter's edges from the executions."""

from __future__ import annotations

import operator
from dataclasses import replace
from datetime import datetime, timedelta
from functools import reduce

from django.db.models import Q, QuerySet
from django.utils import timezone

from executions import failure_counts, kinds
from executions.filters import FailureFilter
from executions.models import FailureCount, Tenant

HOUR = timedelta(hours=1)


def counted(tenant: Tenant, flt: FailureFilter) -> tuple[QuerySet | None, list[FailureFilter]]:
    """Split `flt` into the FailureCount rows that answer it for whole hours and the filters of
    the partial hours at its edges, which the executions answer. (None, [flt]) where the rollup
    cannot answer: not PostgreSQL (no triggers keep it; see executions/failure_counts.py), a text
    search, a status that is not a failure, or less than an hour's window."""
    if not failure_counts.enabled() or flt.q or flt.extra:
        return None, [flt]
    per_kind: list[Q] = []
    for kind in flt.kinds:
        meta = kinds.get(kind)
        statuses = [s for s in flt.statuses if s in meta.all_statuses]
        if flt.statuses and not statuses:
            continue  # none of the asked statuses is one of this kind's
        if not set(statuses) <= set(meta.failed_statuses):
            return None, [flt]
        cond = Q(kind=kind, status__in=statuses or meta.failed_statuses)
        if flt.state in ("open", "ignored"):
            cond &= Q(state=flt.state)
        elif flt.state == "resolved":
            cond = Q(kind=kind, state="resolved") & (cond if statuses else Q())
        elif not statuses:
            cond |= Q(kind=kind, state="resolved")
        if flt.name:
            cond &= _named(tenant, kind, flt.name)
        per_kind.append(cond)
    if not per_kind:
        return FailureCount.objects.none(), []
    lo = ceil_hour(flt.since) if flt.since else None
    hi = truncate(flt.until, "hour") if flt.until else None
    if lo and hi and lo >= hi:
        return None, [flt]
    failure_counts.fold()  # what the triggers appended since the last read
    qs = FailureCount.objects.filter(reduce(operator.or_, per_kind), tenant=tenant)
    if flt.fingerprint:
        qs = qs.filter(fingerprint=flt.fingerprint)
    edges = []
    if lo:
        qs = qs.filter(bucket__gte=lo)
        if lo != flt.since:
            edges.append(replace(flt, until=lo))
    if hi:
        qs = qs.filter(bucket__lt=hi)
        if hi != flt.until:
            edges.append(replace(flt, since=hi))
    return qs, edges


def ceil_hour(when: datetime) -> datetime:
    floor = truncate(when, "hour")
    return floor if floor == when else floor + HOUR


def _named(tenant: Tenant, kind: str, name: str) -> Q:
    """The sources whose name holds `name` (the name filter matches a part of a name)."""
    lookup = kinds.get(kind).shown.name_lookup()
    if lookup is None:
        return Q(source__icontains=name)
    model, attr = lookup
    named = model.objects.filter(tenant=tenant, **{f"{attr}__icontains": name})
    return Q(source__in=[str(pk) for pk in named.values_list("pk", flat=True)])


def source_names(rows: list[dict]) -> dict[tuple[str, str], str]:
    """(kind, source) -> the name shown for it, one query per kind that needs one."""
    wanted: dict[str, set[str]] = {}
    for r in rows:
        wanted.setdefault(r["kind"], set()).add(r["source"])
    names: dict[tuple[str, str], str] = {}
    for kind, sources in wanted.items():
        lookup = kinds.get(kind).shown.name_lookup()
        if lookup is None:
            names.update({(kind, source): source for source in sources})
            continue
        model, attr = lookup
        for pk, name in model.objects.filter(pk__in=sources).values_list("pk", attr):
            names[(kind, str(pk))] = name
    return names


def truncate(when: datetime, unit: str) -> datetime:
    when = when.astimezone(timezone.UTC)
    if unit == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def union_all(querysets: list[QuerySet]):
    """The rows of several querysets of the same shape, in one query."""
    if len(querysets) < 2:
        return querysets[0] if querysets else []
    return querysets[0].union(*querysets[1:], all=True)
