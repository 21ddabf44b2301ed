"""Failures grouped by error fingerprint, read from the failure-count rollup where it answers
the filter (see rollup.py) and from the executions for the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Max, Min, Q, Sum, TextField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from executions import kinds
from executions.filters import FailureFilter
from executions.models import Tenant

from . import rollup


@dataclass
class Group:
    fingerprint: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    sample: str = ""
    by_kind: dict[str, Group] = field(default_factory=dict)  # the same, per kind

    @property
    def sorted_names(self) -> list[str]:
        return sorted(self.names)

    def add(self, kind: str, n: int, first, last, sample: str | None, name: str | None) -> None:
        self.count += n
        self.first_seen = min(filter(None, (self.first_seen, first)), default=None)
        self.last_seen = max(filter(None, (self.last_seen, last)), default=None)
        self.kinds[kind] = self.kinds.get(kind, 0) + n
        if name:
            self.names.add(str(name))
        self.sample = self.sample or (sample or "")


def group_by_fingerprint(
    tenant: Tenant, flt: FailureFilter, limit: int | None = 100
) -> list[Group]:
    """One entry per error fingerprint: how many, first and last seen, which kinds and names, and a
    sample message; the biggest groups first (`limit` of them; None: all)."""
    groups: dict[str, Group] = {}

    def add(kind: str, fp: str, *values) -> None:
        group = groups.setdefault(fp, Group(fp))
        group.add(kind, *values)
        group.by_kind.setdefault(kind, Group(fp)).add(kind, *values)

    counted, edges = rollup.counted(tenant, flt)
    if counted is not None:
        rows = list(
            counted.order_by()
            .values("kind", "fingerprint", "source")
            .annotate(
                total=Sum("n"),
                first=Min("first_at", filter=Q(n__gt=0)),
                last=Max("last_at", filter=Q(n__gt=0)),
                sample_text=Max("sample"),
            )
            .filter(total__gt=0)
        )
        names = rollup.source_names(rows)
        for r in rows:
            add(
                r["kind"],
                r["fingerprint"],
                r["total"],
                r["first"],
                r["last"],
                r["sample_text"],
                names.get((r["kind"], r["source"])),
            )
    # Per name too: a group lists every name it spans, not one of them.
    per_edge = [
        qs.order_by()
        .annotate(k=Value(kind), shown_name=Cast(kinds.get(kind).name_field, TextField()))
        .values("k", "fingerprint", "shown_name")
        .annotate(
            total=Count("pk"),
            first=Min(kinds.get(kind).time_field),
            last=Max(kinds.get(kind).time_field),
            sample_text=Max("error_message"),
        )
        for edge in edges
        for kind, qs in edge.querysets(tenant).items()
    ]
    for r in rollup.union_all(per_edge):
        add(
            r["k"],
            r["fingerprint"],
            r["total"],
            r["first"],
            r["last"],
            r["sample_text"],
            r["shown_name"],
        )
    found = biggest_first(groups.values())[:limit]
    _summaries(tenant, flt, [g for g in found if not g.sample])
    return found


def _summaries(tenant: Tenant, flt: FailureFilter, groups: list[Group]) -> None:
    """A group without a message shows what its kind shows for such a failure (a run's
    summary, say): its last failure of a kind it spans, read by the failed index at its time."""
    for group in groups:
        for kind, part in group.by_kind.items():
            field = kinds.get(kind).time_field
            failed = flt.queryset(kind, tenant).filter(fingerprint=group.fingerprint)
            # (The counts' last time may be of a failure that has since changed: then the
            # newest of the rest, still by the index.)
            obj = failed.filter(**{field: part.last_seen}).first() or (
                failed.order_by(f"-{field}").first()
            )
            text = kinds.get(kind).shown.error(obj) if obj is not None else ""
            if text:
                group.sample = group.by_kind[kind].sample = text
                break


def biggest_first(groups) -> list[Group]:
    return sorted(groups, key=sort_key)


def sort_key(group: Group) -> tuple[int, float]:
    """The biggest first; among equals, the most recent."""
    return (-group.count, -(group.last_seen or _EPOCH).timestamp())


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.UTC)
