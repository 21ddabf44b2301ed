"""The failures inbox across the kinds: its rows, the cross-kind merge behind its keyset pages,
and how many failures match.

Each kind walks its partial index `(tenant, time DESC, pk DESC) WHERE status in failed statuses`
and the short lists are merged here, so a deep page costs what the first one does; "how many
match" comes from the failure-count rollup or, where it cannot answer, is capped at COUNT_CAP."""

from __future__ import annotations

import heapq
import itertools
import operator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Model, QuerySet, Sum, Value

from executions import heartbeats, kinds
from executions.errors import InvalidInput
from executions.filters import FailureFilter
from executions.models import Tenant
from executions.tenancy import get_for_tenant

from . import rollup
from .cursor import Cursor
from .shown import row_fields

COUNT_CAP = 1_000
MAX_LIMIT = 200


def retried_by(kind: str, obj: Model) -> Model | None:
    """The item a clone-kind item was retried as (cached when selected with select_related)."""
    if kinds.get(kind).shown.clone_parent is None:
        return None
    try:
        return obj.retried_by
    except type(obj).retried_by.RelatedObjectDoesNotExist:
        return None


def is_active(kind: str, status: str) -> bool:
    return status in kinds.get(kind).shown.active_statuses


@dataclass
class Row:
    """One failure in the inbox (or the item a console row shows after a retry)."""

    kind: str
    obj: Model
    attempts: int = 1
    reason: str | None = None  # why the viewer cannot retry it (set by the caller, per actor)
    urls: dict[str, str] = field(default_factory=dict)  # set by the caller (the console)
    waiting: str | None = None  # what it (or its retry) waits for, see waiting_for_host()
    retries: int = 0  # how often it was retried (fill_chains)

    @property
    def shown(self):
        return kinds.get(self.kind).shown

    @property
    def id(self) -> str:
        return str(self.obj.pk)

    @property
    def name(self) -> str:
        return kinds.get(self.kind).shown.name(self.obj)

    @property
    def status(self) -> str:
        return self.obj.status

    @property
    def error_message(self) -> str:
        return kinds.get(self.kind).shown.error(self.obj)

    @property
    def fingerprint(self) -> str:
        return self.obj.fingerprint

    @property
    def when(self) -> datetime:
        return getattr(self.obj, kinds.get(self.kind).time_field)

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
    def triage(self) -> str:
        """open, regressed (open again: its fingerprint failed after being resolved or
        ignored), resolved or ignored (executions/triage.py)."""
        return self.obj.triage

    @property
    def is_failure(self) -> bool:
        """Whether it is a failure an operator may triage (failed, or resolved by a retry)."""
        return self.status in self.shown.spec.failed_statuses or self.triage == "resolved"

    @property
    def chain(self) -> str:
        """Where its retry chain ended, in an operator's words: "retried 2× → success"."""
        if not self.retries:
            return ""
        times = "retried" if self.retries == 1 else f"retried {self.retries}×"
        new = self.new_attempt
        last = new.status if new is not None else self.status
        if self.triage == "resolved":
            end = "success"
        elif is_active(self.kind, last):
            end = "running"
        elif last in self.shown.spec.failed_statuses:
            end = "failed again"
        else:
            end = last
        return f"{times} → {end}"

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


def _time_fields() -> dict[str, str]:
    """The field each kind's inbox rows are ordered by (its cursors name it)."""
    return {kind.name: kind.time_field for kind in kinds.KINDS}


def _after(kind: str, qs: QuerySet, cursor: Cursor) -> QuerySet:
    """Rows of `kind` that come after `cursor` in the order (time DESC, kind, pk DESC)."""
    time_field = kinds.get(kind).time_field
    mine, theirs = kinds.names().index(kind), kinds.names().index(cursor.kind)
    if mine < theirs:
        return qs.filter(**{f"{time_field}__lt": cursor.when})
    if mine > theirs:
        return qs.filter(**{f"{time_field}__lte": cursor.when})
    return cursor.rows_after(qs)


def _newest_first(kind: str, qs: QuerySet) -> QuerySet:
    """The inbox's order within a kind (what a Cursor continues from): time, then pk, descending."""
    meta = kinds.get(kind)
    return qs.order_by(f"-{meta.time_field}", f"-{meta.model._meta.pk.name}")


def _rows_queryset(kind: str, qs: QuerySet) -> QuerySet:
    related = kinds.get(kind).shown.row_related
    if related:  # select_related() without fields is deprecated (it follows every relation)
        qs = qs.select_related(*related)
    return _newest_first(kind, qs.only(*row_fields(kind)))


def inbox(tenant: Tenant, flt: FailureFilter, cursor: str | None = None, limit: int = 50) -> Page:
    """Failures of the filter's kinds, newest first, `limit` per page, from `cursor` on."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    # Any kind's cursor: one from a page of other kinds continues by time alone.
    after = Cursor.decode(cursor, _time_fields()) if cursor else None
    # First the page's keys: (time, pk) of the newest limit + 1 per kind, merged here; then the
    # rows themselves, only for the keys on the page (no model instances for the rest).
    keys: list[list[tuple[tuple[float, int], str, Any]]] = []
    querysets = {}
    for kind, qs in flt.querysets(tenant).items():
        if after is not None:
            qs = _after(kind, qs, after)
        querysets[kind] = qs
        order = kinds.names().index(kind)
        newest = _newest_first(kind, qs).values_list(kinds.get(kind).time_field, "pk")
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
        next_cursor = Cursor.after_row(
            last.kind, kinds.get(last.kind).time_field, last.obj
        ).encode()
    fill_attempts(rows)
    fill_chains(rows)
    return Page(rows=rows, next_cursor=next_cursor, limit=limit)


def fill_chains(rows: list[Row]) -> None:
    """How often each row was retried: kinds that clone count the retries of it (one query per
    kind for the page); kinds that retry in place, their attempts but the first."""
    cloned: dict[str, list[Row]] = {}
    for row in rows:
        if row.shown.clone_parent is None:
            row.retries = max(row.attempts - 1, 0)
        elif row.new_attempt is not None:
            cloned.setdefault(row.kind, []).append(row)
    for kind, kind_rows in cloned.items():
        model = kinds.get(kind).model
        parent = kinds.get(kind).shown.clone_parent
        counts = dict(
            model.objects.filter(**{f"{parent}__in": [r.obj.pk for r in kind_rows]})
            .order_by()
            .values_list(parent)
            .annotate(n=Count("pk"))
        )
        for row in kind_rows:
            row.retries = counts.get(row.obj.pk, 1)


def waiting_for_host(rows: list[Row]) -> None:
    """Set `waiting` ("no live worker for host <name>") on the rows of kinds that wait for a
    host and are, or were retried as, an item whose host has no live worker: one query for all
    the rows' hosts."""
    items = [(row, row.new_attempt or row.obj) for row in rows if row.shown.waits_for_host]
    waiting = heartbeats.waiting_for_host(item for _, item in items)
    for row, item in items:
        row.waiting = waiting.get(item.pk)


def fill_attempts(rows: list[Row]) -> None:
    """Attempt numbers: the kind's own counter where it keeps one; otherwise the length of the
    retry chain, one query per generation and kind for the whole page."""
    chained: dict[str, list[Row]] = {}
    for row in rows:
        shown = row.shown
        number = shown.attempts(row.obj)
        if number is not None:
            row.attempts = number
        elif getattr(row.obj, f"{shown.clone_parent}_id") is not None:
            chained.setdefault(row.kind, []).append(row)
        else:
            row.attempts = 1
    for kind, kind_rows in chained.items():
        depths = _ancestor_counts(
            kinds.get(kind).model, kinds.get(kind).shown.clone_parent, [r.obj for r in kind_rows]
        )
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
    counted, edges = rollup.counted(tenant, flt)
    if counted is not None:
        total = counted.aggregate(total=Sum("n"))["total"] or 0
        per_edge = [
            qs.order_by().values(one=Value(1))
            for edge in edges
            for qs in edge.querysets(tenant).values()
        ]
        if per_edge:
            total += rollup.union_all(per_edge).count()
        return total, False
    total = 0
    for kind, qs in flt.querysets(tenant).items():
        # Newest first, so the scan walks the tenant's failures by its index: unordered,
        # PostgreSQL's synchronised scans may start inside another tenant's rows.
        newest = _newest_first(kind, qs).values("pk")
        total += newest[: cap + 1 - total].count()
        if total > cap:
            return cap, True
    return total, False


def row(tenant: Tenant, kind: str, object_id: str) -> Row:
    """One item as an inbox row (any status): what a console row shows and polls."""
    if kind not in kinds.BY_NAME:
        raise InvalidInput(f"kind must be one of {', '.join(kinds.names())}", field="kind")
    qs = _rows_queryset(kind, kinds.get(kind).model.objects.all())
    result = Row(kind, get_for_tenant(qs, tenant, "Not found", pk=object_id))
    fill_attempts([result])
    fill_chains([result])
    return result
