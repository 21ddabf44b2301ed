"""The read side: the failures inbox across the five kinds, failures grouped by fingerprint, the
failures-over-time chart, and what a detail page shows. The console and `GET /api/failures` both
read through these functions; writes live in `services.py`.

Everything here is tenant-scoped by its first argument and never counts a whole table per page:
the inbox is keyset-paginated (each kind walks its partial index `(tenant, time DESC, pk DESC)
WHERE status in failed statuses`, the five short lists are merged in Python), and "how many match"
is read from the failure counts (see `_counted`) or, where they cannot answer, capped at
`COUNT_CAP`.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import json
import operator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Min, Model, Q, QuerySet, Sum, TextField, Value
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.db.models.functions import Cast, Trunc
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import failure_counts, heartbeats, validation
from .errors import InvalidInput
from .filters import KINDS, FailureFilter
from .models import (
    Attempt,
    AuditEvent,
    AutomationExecution,
    FailureCount,
    Kind,
    Run,
    Tenant,
    WorkflowExecution,
)
from .tenancy import get_for_tenant

KIND_ORDER: tuple[str, ...] = tuple(KINDS)
KIND_LABELS = {
    Kind.FUNCTION: "Function execution",
    Kind.AUTOMATION: "Automation execution",
    Kind.JOB: "Job",
    Kind.WORKFLOW: "Workflow execution",
    Kind.RUN: "Run",
}
COUNT_CAP = 1_000
MAX_LIMIT = 200

# Statuses in which an attempt is not final yet (the console polls those rows).
ACTIVE_STATUSES: dict[str, tuple[str, ...]] = {
    Kind.FUNCTION: ("running",),
    Kind.AUTOMATION: ("pending", "running"),
    Kind.JOB: ("unprocessed", "processing"),
    Kind.WORKFLOW: ("RUNNING",),
    Kind.RUN: ("running", "waiting"),
}
# Kinds whose retry clones the item (a new row linked by retry_of / source_run); the others
# retry in place and keep their history in Attempt rows.
CLONE_PARENT: dict[str, str] = {
    Kind.FUNCTION: "retry_of",
    Kind.JOB: "retry_of",
    Kind.RUN: "source_run",
}
# Columns the inbox needs per kind (the heavy JSON and stack columns stay in the database).
_ROW_FIELDS: dict[str, tuple[str, ...]] = {
    Kind.FUNCTION: (
        "id",
        "tenant_id",
        "status",
        "executed_at",
        "finished_at",
        "error_message",
        "fingerprint",
        "retry_count",
        "retry_of_id",
        "function__id",
        "function__name",
    ),
    Kind.AUTOMATION: (
        "execution_id",
        "tenant_id",
        "status",
        "updated_at",
        "error_message",
        "fingerprint",
        "attempt",
        "failed_action_index",
        "automation_rule__id",
        "automation_rule__name",
    ),
    Kind.JOB: (
        "job_id",
        "tenant_id",
        "status",
        "updated_at",
        "error_message",
        "fingerprint",
        "operation_type",
        "target_hostname",
        "retry_of_id",
    ),
    Kind.WORKFLOW: (
        "id",
        "tenant_id",
        "status",
        "updated_at",
        "error_message",
        "reason_for_incompletion",
        "fingerprint",
        "attempt",
        "workflow__id",
        "workflow__external_id",
        "workflow__version",
    ),
    Kind.RUN: (
        "id",
        "tenant_id",
        "status",
        "started_at",
        "error_message",
        "summary",
        "fingerprint",
        "workflow_id",
        "source_run_id",
    ),
}
_RELATED: dict[str, tuple[str, ...]] = {
    Kind.FUNCTION: ("function", "retried_by"),
    Kind.AUTOMATION: ("automation_rule",),
    Kind.JOB: ("retried_by",),
    Kind.WORKFLOW: ("workflow",),
    Kind.RUN: ("retried_by",),
}


def _retried_by_fields(kind: str) -> tuple[str, ...]:
    meta = KINDS[kind]
    pk = meta.model._meta.pk.name
    fields = (f"retried_by__{pk}", "retried_by__status", f"retried_by__{meta.time_field}")
    if kind == Kind.JOB:  # what the clone waits for (see waiting_for_host)
        fields += ("retried_by__target_hostname",)
    return fields


# --- rows -----------------------------------------------------------------------------------


def name_of(kind: str, obj: Model) -> str:
    if kind == Kind.FUNCTION:
        return obj.function.name
    if kind == Kind.AUTOMATION:
        return obj.automation_rule.name
    if kind == Kind.JOB:
        return obj.operation_type
    if kind == Kind.WORKFLOW:
        return obj.workflow.external_id
    return obj.workflow_id


def error_of(kind: str, obj: Model) -> str:
    if obj.error_message:
        return obj.error_message
    if kind == Kind.WORKFLOW:
        return obj.reason_for_incompletion or ""
    if kind == Kind.RUN:
        return obj.summary or ""
    return ""


def retried_by(kind: str, obj: Model) -> Model | None:
    """The item a clone-kind item was retried as (cached when selected with select_related)."""
    if kind not in CLONE_PARENT:
        return None
    try:
        return obj.retried_by
    except type(obj).retried_by.RelatedObjectDoesNotExist:
        return None


def is_active(kind: str, status: str) -> bool:
    return status in ACTIVE_STATUSES[kind]


@dataclass
class Row:
    """One failure in the inbox (or the item a console row shows after a retry)."""

    kind: str
    obj: Model
    attempts: int = 1
    reason: str | None = None  # why the viewer cannot retry it (set by the caller, per actor)
    urls: dict[str, str] = field(default_factory=dict)  # set by the caller (the console)
    waiting: str | None = None  # what it (or its retry) waits for, see waiting_for_host()

    @property
    def id(self) -> str:
        return str(self.obj.pk)

    @property
    def name(self) -> str:
        return name_of(self.kind, self.obj)

    @property
    def status(self) -> str:
        return self.obj.status

    @property
    def error_message(self) -> str:
        return error_of(self.kind, self.obj)

    @property
    def fingerprint(self) -> str:
        return self.obj.fingerprint

    @property
    def when(self) -> datetime:
        return getattr(self.obj, KINDS[self.kind].time_field)

    @property
    def new_attempt(self) -> Model | None:
        return retried_by(self.kind, self.obj)

    @property
    def active(self) -> bool:
        """Still changing: the item itself, or the attempt it was retried as, is not final."""
        new = self.new_attempt
        return is_active(self.kind, self.status) or (
            new is not None and is_active(self.kind, new.status)
        )

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def short_id(self) -> str:
        return self.id if len(self.id) <= 13 else self.id[:12] + "…"


@dataclass
class Page:
    rows: list[Row]
    next_cursor: str | None
    limit: int


# --- cursors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    when: datetime
    kind: str
    pk: str

    def encode(self) -> str:
        raw = f"{self.when.isoformat()}|{self.kind}|{self.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            when_s, kind, pk = raw.split("|", 2)
            # In range and in UTC, like any filter time: an edited one must not overflow.
            when = validation.iso_datetime(when_s, "cursor")
        except (binascii.Error, UnicodeDecodeError, ValueError, InvalidInput):
            when = kind = pk = None
        if when is None or kind not in KINDS or not pk or "\x00" in pk:
            raise InvalidInput("cursor is not a cursor this server gave out", field="cursor")
        try:
            KINDS[kind].model._meta.pk.to_python(pk)
        except Exception:
            raise InvalidInput(
                "cursor is not a cursor this server gave out", field="cursor"
            ) from None
        return cls(when, kind, pk)


def _after(kind: str, qs: QuerySet, cursor: Cursor) -> QuerySet:
    """Rows of `kind` that come after `cursor` in the order (time DESC, kind, pk DESC)."""
    meta = KINDS[kind]
    time_field = meta.time_field
    mine, theirs = KIND_ORDER.index(kind), KIND_ORDER.index(cursor.kind)
    if mine < theirs:
        return qs.filter(**{f"{time_field}__lt": cursor.when})
    if mine > theirs:
        return qs.filter(**{f"{time_field}__lte": cursor.when})
    pk = meta.model._meta.pk
    return qs.filter(
        TupleLessThan(Tuple(F(time_field), F(pk.name)), (cursor.when, pk.to_python(cursor.pk)))
    )


# --- the inbox --------------------------------------------------------------------------------


def _newest_first(kind: str, qs: QuerySet) -> QuerySet:
    """The inbox's order within a kind (what a Cursor continues from): time, then pk, descending."""
    meta = KINDS[kind]
    return qs.order_by(f"-{meta.time_field}", f"-{meta.model._meta.pk.name}")


def _rows_queryset(kind: str, qs: QuerySet) -> QuerySet:
    fields = _ROW_FIELDS[kind]
    if "retried_by" in _RELATED[kind]:
        fields += _retried_by_fields(kind)
    return _newest_first(kind, qs.select_related(*_RELATED[kind]).only(*fields))


def inbox(tenant: Tenant, flt: FailureFilter, cursor: str | None = None, limit: int = 50) -> Page:
    """Failures of the filter's kinds, newest first, `limit` per page, from `cursor` on.

    One indexed `ORDER BY time DESC, pk DESC LIMIT n` per kind, merged here: deep pages cost the
    same as the first one."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    after = Cursor.decode(cursor) if cursor else None
    # First the page's keys: (time, pk) of the newest limit + 1 per kind, merged here; then the
    # rows themselves, only for the keys on the page (a fifth of the rows read, no model
    # instances for the rest).
    keys: list[list[tuple[tuple[float, int], str, Any]]] = []
    querysets = {}
    for kind, qs in flt.querysets(tenant).items():
        if after is not None:
            qs = _after(kind, qs, after)
        querysets[kind] = qs
        order = KIND_ORDER.index(kind)
        newest = _newest_first(kind, qs).values_list(KINDS[kind].time_field, "pk")
        keys.append([((-when.timestamp(), order), kind, pk) for when, pk in newest[: limit + 1]])
    # Ties keep each kind's own order (pk descending), which the cursor continues from.
    page = list(itertools.islice(heapq.merge(*keys, key=operator.itemgetter(0)), limit + 1))
    wanted: dict[str, list[Any]] = {}
    for _, kind, pk in page:
        wanted.setdefault(kind, []).append(pk)
    objs = {
        (kind, obj.pk): obj
        for kind, pks in wanted.items()
        for obj in _rows_queryset(kind, querysets[kind].filter(pk__in=pks))
    }
    rows = [Row(kind, objs[(kind, pk)]) for _, kind, pk in page if (kind, pk) in objs]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = Cursor(last.when, last.kind, last.id).encode()
    fill_attempts(rows)
    return Page(rows=rows, next_cursor=next_cursor, limit=limit)


def waiting_for_host(rows: list[Row]) -> None:
    """Set `waiting` ("no live worker for host <name>") on the job rows that are, or were retried
    as, an unprocessed job whose host has no live worker: one query for all the rows' hosts."""
    jobs = [(row, row.new_attempt or row.obj) for row in rows if row.kind == Kind.JOB]
    waiting = heartbeats.waiting_for_host(job for _, job in jobs)
    for row, job in jobs:
        row.waiting = waiting.get(job.pk)


def fill_attempts(rows: list[Row]) -> None:
    """Attempt numbers: counters for functions, automations and workflows; for jobs and runs the
    length of the retry chain, one recursive query per kind for the whole page."""
    chained: dict[str, list[Row]] = {}
    for row in rows:
        obj = row.obj
        if row.kind == Kind.FUNCTION:
            row.attempts = obj.retry_count + 1
        elif row.kind in (Kind.AUTOMATION, Kind.WORKFLOW):
            row.attempts = obj.attempt
        elif getattr(obj, f"{CLONE_PARENT[row.kind]}_id") is not None:
            chained.setdefault(row.kind, []).append(row)
        else:
            row.attempts = 1
    for kind, kind_rows in chained.items():
        depths = _ancestor_counts(KINDS[kind].model, CLONE_PARENT[kind], [r.obj for r in kind_rows])
        for row in kind_rows:
            row.attempts = depths[row.obj.pk] + 1


def _ancestor_counts(model: type[Model], parent: str, objs: list[Model]) -> dict[Any, int]:
    """How many retries each of `objs` descends from: one query per generation (a chain is a
    handful of retries; the cap only guards against a cycle)."""
    attname = model._meta.get_field(parent).attname
    depths = {obj.pk: 0 for obj in objs}
    frontier = {obj.pk: getattr(obj, attname) for obj in objs}
    for _ in range(1000):
        frontier = {pk: up for pk, up in frontier.items() if up is not None}
        if not frontier:
            break
        for pk in frontier:
            depths[pk] += 1
        parents = dict(
            model.objects.filter(pk__in=set(frontier.values())).values_list("pk", attname)
        )
        frontier = {pk: parents.get(up) for pk, up in frontier.items()}
    return depths


def matching_count(tenant: Tenant, flt: FailureFilter, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many failures match: (count, capped). Exact from the failure counts where they answer
    the filter; otherwise counting at most `cap` + 1 rows per kind."""
    counted, edges = _counted(tenant, flt)
    if counted is not None:
        total = counted.aggregate(total=Sum("n"))["total"] or 0
        per_edge = [
            qs.order_by().values(one=Value(1))
            for edge in edges
            for qs in edge.querysets(tenant).values()
        ]
        if per_edge:
            total += _union_all(per_edge).count()
        return total, False
    total = 0
    for kind, qs in flt.querysets(tenant).items():
        # Count only what is still needed to know whether the total passes the cap, newest
        # first: in the inbox's order the scan walks the tenant's failures by its index. Without
        # an order PostgreSQL may read the table from wherever its last sequential scan stopped
        # (synchronised scans), and the first 1,001 matches then sometimes lie behind another
        # tenant's rows: 7 ms most of the time, 50-80 ms every dozenth search at a million rows.
        newest = _newest_first(kind, qs).values("pk")
        total += newest[: cap + 1 - total].count()
        if total > cap:
            return cap, True
    return total, False


def row(tenant: Tenant, kind: str, object_id: str) -> Row:
    """One item as an inbox row (any status): what a console row shows and polls."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    meta = KINDS[kind]
    qs = _rows_queryset(kind, meta.model.objects.all())
    obj = get_for_tenant(qs, tenant, "Not found", pk=object_id)
    result = Row(kind, obj)
    fill_attempts([result])
    return result


# --- grouped by error ---------------------------------------------------------------------------


@dataclass
class Group:
    fingerprint: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    sample: str = ""


def group_by_fingerprint(tenant: Tenant, flt: FailureFilter, limit: int = 100) -> list[Group]:
    """One entry per error fingerprint: how many, first and last seen, which kinds and names, and a
    sample message; the biggest groups first."""
    groups: dict[str, Group] = {}

    def add(kind: str, fp: str, n: int, first, last, sample: str | None, name: str | None) -> None:
        g = groups.setdefault(fp, Group(fp))
        g.count += n
        g.first_seen = min(filter(None, (g.first_seen, first)), default=None)
        g.last_seen = max(filter(None, (g.last_seen, last)), default=None)
        g.kinds[kind] = g.kinds.get(kind, 0) + n
        if name:
            g.names.add(str(name))
        g.sample = g.sample or (sample or "")

    counted, edges = _counted(tenant, flt)
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
        names = _source_names(rows)
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
    per_edge = [
        qs.order_by()
        .annotate(k=Value(kind))
        .values("k", "fingerprint")
        .annotate(
            total=Count("pk"),
            first=Min(KINDS[kind].time_field),
            last=Max(KINDS[kind].time_field),
            sample_text=Max("error_message"),
            name=Cast(Max(KINDS[kind].name_field), TextField()),
        )
        for edge in edges
        for kind, qs in edge.querysets(tenant).items()
    ]
    for r in _union_all(per_edge):
        add(
            r["k"], r["fingerprint"], r["total"], r["first"], r["last"], r["sample_text"], r["name"]
        )
    ordered = sorted(
        groups.values(), key=lambda g: (-g.count, -(g.last_seen or _EPOCH).timestamp())
    )
    return ordered[:limit]


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.UTC)


# --- failures over time -------------------------------------------------------------------------


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
    first = _truncate(start, unit)
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


def _truncate(when: datetime, unit: str) -> datetime:
    when = when.astimezone(timezone.UTC)
    if unit == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def _counts_over_time(tenant: Tenant, flt: FailureFilter, unit: str):
    """(kind, bucket start, count) for the failures matching `flt`."""
    counted, edges = _counted(tenant, flt)
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
        .annotate(k=Value(kind), when=Trunc(KINDS[kind].time_field, unit, tzinfo=timezone.UTC))
        .values("k", "when")
        .annotate(total=Count("pk"))
        for edge in edges
        for kind, qs in edge.querysets(tenant).items()
    ]
    for r in _union_all(per_edge):
        yield r["k"], r["when"], r["total"]


def _union_all(querysets: list[QuerySet]):
    """The rows of several querysets of the same shape, in one query."""
    if len(querysets) < 2:
        return querysets[0] if querysets else []
    return querysets[0].union(*querysets[1:], all=True)


# --- the failure-count rollup -------------------------------------------------------------------

HOUR = timedelta(hours=1)


def _counted(tenant: Tenant, flt: FailureFilter) -> tuple[QuerySet | None, list[FailureFilter]]:
    """Split `flt` into the FailureCount rows that answer it for whole hours and the filters of
    the partial hours at its edges, which the executions answer. (None, [flt]) where the rollup
    cannot answer: not PostgreSQL (no triggers keep it; see executions/failure_counts.py), a text
    search, a status that is not a failure, or less than an hour's window."""
    if not failure_counts.enabled() or flt.q or flt.extra:
        return None, [flt]
    per_kind: list[Q] = []
    for kind in flt.kinds:
        meta = KINDS[kind]
        statuses = [s for s in flt.statuses if s in meta.all_statuses]
        if flt.statuses and not statuses:
            continue  # none of the asked statuses is one of this kind's
        if not set(statuses) <= set(meta.failed_statuses):
            return None, [flt]
        cond = Q(kind=kind, status__in=statuses or meta.failed_statuses)
        if flt.name:
            cond &= Q(source__in=_sources_named(tenant, kind, flt.name))
        per_kind.append(cond)
    if not per_kind:
        return FailureCount.objects.none(), []
    lo = _ceil_hour(flt.since) if flt.since else None
    hi = _truncate(flt.until, "hour") if flt.until else None
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


def _ceil_hour(when: datetime) -> datetime:
    floor = _truncate(when, "hour")
    return floor if floor == when else floor + HOUR


def _name_lookup(kind: str) -> tuple[type[Model], str] | None:
    """The model and field naming a kind's source (the source itself names jobs and runs)."""
    meta = KINDS[kind]
    head, _, attr = meta.name_field.partition("__")
    if not attr:
        return None
    return meta.model._meta.get_field(head).related_model, attr


def _sources_named(tenant: Tenant, kind: str, name: str) -> list[str]:
    lookup = _name_lookup(kind)
    if lookup is None:
        return [name]
    model, attr = lookup
    return [
        str(pk)
        for pk in model.objects.filter(tenant=tenant, **{attr: name}).values_list("pk", flat=True)
    ]


def _source_names(rows: list[dict]) -> dict[tuple[str, str], str]:
    """(kind, source) -> the name shown for it, one query per kind that needs one."""
    wanted: dict[str, set[str]] = {}
    for r in rows:
        wanted.setdefault(r["kind"], set()).add(r["source"])
    names: dict[tuple[str, str], str] = {}
    for kind, sources in wanted.items():
        lookup = _name_lookup(kind)
        if lookup is None:
            names.update({(kind, source): source for source in sources})
            continue
        model, attr = lookup
        for pk, name in model.objects.filter(pk__in=sources).values_list("pk", attr):
            names[(kind, str(pk))] = name
    return names


# --- detail ---------------------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    number: int
    status: str
    error_message: str | None
    error_stack: str | None
    started_at: datetime | None
    finished_at: datetime | None
    logs: list[dict]
    kind: str
    object_id: str
    current: bool = False  # the item this page is about
    source: str = ""  # "attempt" (history row) or "item" (a row of the kind itself)


@dataclass
class Detail:
    kind: str
    obj: Model
    name: str
    timeline: list[TimelineEntry]
    retry_of: Model | None
    retried_as: Model | None
    audit: list[AuditEvent]
    extra: dict[str, Any]

    @property
    def status(self) -> str:
        return self.obj.status

    @property
    def active(self) -> bool:
        return is_active(self.kind, self.obj.status)

    @property
    def error_message(self) -> str:
        return error_of(self.kind, self.obj)

    @property
    def when(self) -> datetime:
        return getattr(self.obj, KINDS[self.kind].time_field)


_DETAIL_RELATED: dict[str, tuple[str, ...]] = {
    Kind.FUNCTION: ("function", "retry_of", "retried_by"),
    Kind.AUTOMATION: ("automation_rule",),
    Kind.JOB: ("retry_of", "retried_by"),
    Kind.WORKFLOW: ("workflow",),
    Kind.RUN: ("source_run", "retried_by"),
}


def detail(tenant: Tenant, kind: str, object_id: str, *, with_audit: bool = True) -> Detail:
    """Everything a detail page shows, in a fixed handful of queries (the audit rows only
    `with_audit`: for callers who may read the audit)."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    meta = KINDS[kind]
    obj = get_for_tenant(
        meta.model.objects.select_related(*_DETAIL_RELATED[kind]), tenant, "Not found", pk=object_id
    )
    extra: dict[str, Any] = {}
    if kind in CLONE_PARENT:
        parent = getattr(obj, CLONE_PARENT[kind])
        child = retried_by(kind, obj)
        chain = _chain(kind, obj)
        timeline = [
            TimelineEntry(
                number=i + 1,
                status=item.status,
                error_message=error_of(kind, item),
                error_stack=item.error_stack,
                started_at=_started(kind, item),
                finished_at=getattr(item, "finished_at", None),
                logs=_logs(item.logs) if kind != Kind.RUN else [],
                kind=kind,
                object_id=str(item.pk),
                current=item.pk == obj.pk,
                source="item",
            )
            for i, item in enumerate(chain)
        ]
        targets = [str(item.pk) for item in chain]
    else:
        parent = child = None
        history = Attempt.objects.filter(tenant=tenant, kind=kind, object_id=str(obj.pk)).order_by(
            "number"
        )
        timeline = [
            TimelineEntry(
                number=a.number,
                status=a.status,
                error_message=a.error_message,
                error_stack=a.error_stack,
                started_at=a.started_at,
                finished_at=a.finished_at,
                logs=_logs(a.logs),
                kind=kind,
                object_id=str(obj.pk),
                source="attempt",
            )
            for a in history
        ]
        timeline.append(
            TimelineEntry(
                number=obj.attempt,
                status=obj.status,
                error_message=error_of(kind, obj),
                error_stack=obj.error_stack,
                started_at=_started(kind, obj),
                finished_at=_finished(kind, obj),
                logs=_logs(obj.logs) if kind == Kind.AUTOMATION else [],
                kind=kind,
                object_id=str(obj.pk),
                current=True,
                source="item",
            )
        )
        targets = [str(obj.pk)]
    audit = (
        list(
            AuditEvent.objects.filter(tenant=tenant, kind=kind, target_id__in=targets).order_by(
                "-created_at", "-id"
            )[:100]
        )
        if with_audit
        else []
    )
    if kind == Kind.AUTOMATION:
        extra["actions"] = _automation_actions(obj)
    elif kind == Kind.JOB:
        extra["events"] = list(obj.events.all())
    elif kind == Kind.WORKFLOW:
        extra["tasks"] = _workflow_tasks(obj)
    elif kind == Kind.RUN:
        extra["nodes"] = _run_nodes(obj)
    return Detail(
        kind=kind,
        obj=obj,
        name=name_of(kind, obj),
        timeline=timeline,
        retry_of=parent,
        retried_as=child,
        audit=audit,
        extra=extra,
    )


def _started(kind: str, obj: Model) -> datetime | None:
    return getattr(obj, _started_field(kind), None)


def _started_field(kind: str) -> str:
    return {
        Kind.FUNCTION: "executed_at",
        Kind.AUTOMATION: "started_at",
        Kind.JOB: "created_at",
        Kind.WORKFLOW: "start_time",
        Kind.RUN: "started_at",
    }[kind]


def _finished(kind: str, obj: Model) -> datetime | None:
    name = {Kind.AUTOMATION: "completed_at", Kind.WORKFLOW: "end_time"}.get(kind, "finished_at")
    return getattr(obj, name, None)


def _chain(kind: str, obj: Model) -> list[Model]:
    """The item's retry chain, oldest first: its ancestors, itself and its retries (an item
    retried again has several, in the order they were made)."""
    model = KINDS[kind].model
    table = model._meta.db_table
    pk_col = model._meta.pk.column
    parent_col = model._meta.get_field(CLONE_PARENT[kind]).column
    sql = f"""
        WITH RECURSIVE up(id, parent, depth) AS (
            SELECT {pk_col}, {parent_col}, 0 FROM {table} WHERE {pk_col} = %s
            UNION ALL
            SELECT t.{pk_col}, t.{parent_col}, up.depth - 1
            FROM up JOIN {table} t ON t.{pk_col} = up.parent WHERE up.depth > -1000
        ), down(id, depth) AS (
            SELECT {pk_col}, 0 FROM {table} WHERE {pk_col} = %s
            UNION ALL
            SELECT t.{pk_col}, down.depth + 1
            FROM down JOIN {table} t ON t.{parent_col} = down.id WHERE down.depth < 1000
        )
        SELECT id, depth FROM up UNION ALL SELECT id, depth FROM down WHERE depth > 0
        ORDER BY depth
    """  # noqa: S608 - identifiers come from model metadata, values are parameters
    with connection.cursor() as cursor:
        pk = model._meta.pk.get_db_prep_value(obj.pk, connection)
        cursor.execute(sql, [pk, pk])
        to_python = model._meta.pk.to_python  # SQLite's uuid text has no dashes
        depths = {str(to_python(row[0])): row[1] for row in cursor.fetchall()}
    ids = list(depths)
    heavy = {"payload", "result", "params", "workflow_definition", "execution_state", "node_states"}
    items = {
        str(item.pk): item
        for item in model.objects.filter(pk__in=ids).defer(
            *(f.name for f in model._meta.concrete_fields if f.name in heavy)
        )
    }
    made = _started_field(kind)
    return sorted(items.values(), key=lambda item: (depths[str(item.pk)], getattr(item, made)))


def _logs(raw: Any) -> list[dict]:
    """Log lines as {timestamp, level, message, extra}; anything odd is shown, not dropped."""
    out = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict):
            extra = {k: v for k, v in entry.items() if k not in ("timestamp", "level", "message")}
            out.append(
                {
                    "timestamp": parse_datetime(str(entry.get("timestamp") or "")),
                    "level": str(entry.get("level") or "info").lower(),
                    "message": str(entry.get("message", "")),
                    "extra": extra,
                }
            )
        else:
            out.append({"timestamp": None, "level": "info", "message": str(entry), "extra": {}})
    return out


def logs_of(kind: str, obj: Model) -> list[dict]:
    """The item's own log lines (workflow tasks and run nodes carry theirs in `extra`)."""
    if kind in (Kind.FUNCTION, Kind.AUTOMATION, Kind.JOB):
        return _logs(obj.logs)
    return []


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def _automation_actions(obj: AutomationExecution) -> list[dict]:
    actions = (obj.execution_context or {}).get("actions") or []
    logs = _logs(obj.logs)
    out = []
    for index, action in enumerate(actions):
        if obj.failed_action_index is not None and index == obj.failed_action_index:
            state = "failed"
        elif index < obj.actions_successful or (
            obj.failed_action_index is not None and index < obj.failed_action_index
        ):
            state = "succeeded"
        elif obj.status in ACTIVE_STATUSES[Kind.AUTOMATION]:
            state = "pending"
        else:
            state = "not run"
        out.append(
            {
                "index": index,
                "handler": action.get("handler", "") if isinstance(action, dict) else str(action),
                "params": pretty(action.get("params", {})) if isinstance(action, dict) else "",
                "state": state,
                "logs": [entry for entry in logs if entry["extra"].get("action_index") == index],
            }
        )
    return out


def _workflow_tasks(obj: WorkflowExecution) -> list[dict]:
    definitions = obj.workflow.tasks or []
    runs = {t.task_external_id: t for t in obj.task_executions.all()}
    out = []
    for definition in definitions:
        external_id = definition.get("externalId", "")
        task = runs.get(external_id)
        out.append(
            {
                "external_id": external_id,
                "handler": definition.get("handler", ""),
                "depends_on": definition.get("dependsOn", []),
                "optional": bool(definition.get("isOptional")),
                "status": task.status if task else "SCHEDULED",
                "attempts": task.attempts if task else 0,
                "max_attempts": task.max_attempts if task else 0,
                "output": pretty(task.output) if task and task.output is not None else "",
                "error_message": task.error_message if task else None,
                "error_stack": task.error_stack if task else None,
                "logs": _logs(task.logs) if task else [],
                "run_as": task.run_as if task else "",
            }
        )
    return out


def _run_nodes(obj: Run) -> list[dict]:
    definition = obj.workflow_definition or {}
    nodes: dict = definition.get("nodes") or {}
    states = obj.node_states or {}
    outputs = obj.execution_state or {}
    triggers = definition.get("triggerNodeIds") or []
    order = [n for n in triggers if n in nodes] + [n for n in nodes if n not in triggers]
    out = []
    for node_id in order:
        node = nodes.get(node_id) or {}
        state = states.get(node_id) or {}
        out.append(
            {
                "id": node_id,
                "handler": node.get("handler", "") or ("trigger" if node_id in triggers else ""),
                "depends_on": node.get("dependsOn", []),
                "optional": bool(node.get("optional")),
                "status": state.get("status", "not run"),
                "carried_over": bool(state.get("carriedOver")),
                "error": state.get("error") or state.get("reason") or "",
                "output": pretty(outputs[node_id]) if node_id in outputs else "",
                "logs": _logs(state.get("logs") or []),
            }
        )
    return out


def audit_events(
    tenant: Tenant,
    *,
    kind: str = "",
    actor: str = "",
    source: str = "",
    target: str = "",
    bulk: str = "",
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[AuditEvent], int | None]:
    """The audit, newest first, keyset-paginated by id: (events, id to continue before)."""
    qs = AuditEvent.objects.filter(tenant=tenant)
    if kind:
        qs = qs.filter(kind=kind)
    if actor:
        qs = qs.filter(actor=actor)
    if source:
        qs = qs.filter(source=source)
    if target:
        qs = qs.filter(target_id=target) | qs.filter(new_target_id=target)
    if bulk:
        qs = qs.filter(bulk_id=bulk)
    if before is not None:
        qs = qs.filter(id__lt=before)
    events = list(qs.order_by("-id")[: limit + 1])
    more = len(events) > limit
    events = events[:limit]
    return events, (events[-1].id if more else None)
