"""What a detail page shows: the item, its timeline (the retry chain of a kind that clones, the
attempt history of one that retries in place), its logs, its audit and its kind's extras."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model

from executions import kinds
from executions.errors import InvalidInput
from executions.kinds.shown import log_lines
from executions.models import Attempt, AuditEvent, Tenant
from executions.tenancy import get_for_tenant

from .audit import bulk_items, nth_retry_outcomes
from .inbox import is_active, retried_by
from .shown import HEAVY, finished, made, started


@dataclass
class TimelineEntry:
    number: int
    status: str
    error_message: str | None
    error_stack: str | None
    made_at: datetime | None  # when the attempt was made
    started_at: datetime | None  # when it began running (None: it never did)
    finished_at: datetime | None
    logs: list[dict]
    kind: str
    object_id: str
    current: bool = False  # the item this page is about
    source: str = ""  # "attempt" (history row) or "item" (a row of the kind itself)

    @property
    def failed(self) -> bool:
        """Its message is an error (a successful run's is its summary, "4 nodes succeeded")."""
        return self.status in kinds.get(self.kind).failed_statuses


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
        return kinds.get(self.kind).shown.error(self.obj)

    @property
    def when(self) -> datetime:
        return getattr(self.obj, kinds.get(self.kind).time_field)

    @property
    def failed(self) -> bool:
        """Its message is an error, not a successful item's summary."""
        return self.obj.status in kinds.get(self.kind).failed_statuses

    @property
    def attempt_number(self) -> int:
        """This page's place on the timeline (the original of a retried job is attempt 1)."""
        return next((e.number for e in self.timeline if e.current), len(self.timeline))


def _entry(kind: str, item: Model, number: int, current: bool) -> TimelineEntry:
    """A row of the kind itself on the timeline."""
    return TimelineEntry(
        number=number,
        status=item.status,
        error_message=kinds.get(kind).shown.error(item),
        error_stack=item.error_stack,
        made_at=made(kind, item),
        started_at=started(kind, item),
        finished_at=finished(kind, item),
        logs=kinds.get(kind).shown.logs(item),
        kind=kind,
        object_id=str(item.pk),
        current=current,
        source="item",
    )


def detail(tenant: Tenant, kind: str, object_id: str, *, with_audit: bool = True) -> Detail:
    """Everything a detail page shows, in a fixed handful of queries (the audit rows only
    `with_audit`: for callers who may read the audit)."""
    if kind not in kinds.BY_NAME:
        raise InvalidInput(f"kind must be one of {', '.join(kinds.names())}", field="kind")
    shown = kinds.get(kind).shown
    items = kinds.get(kind).model.objects.all()
    if shown.detail_related:  # select_related() without fields follows every relation
        items = items.select_related(*shown.detail_related)
    obj = get_for_tenant(
        items,
        tenant,
        "Not found",
        pk=object_id,
    )
    if shown.clone_parent:
        parent = getattr(obj, shown.clone_parent)
        child = retried_by(kind, obj)
        chain = _chain(kind, obj)
        timeline = [_entry(kind, item, i + 1, item.pk == obj.pk) for i, item in enumerate(chain)]
        targets = [str(item.pk) for item in chain]
    else:
        parent = child = None
        history = Attempt.objects.filter(tenant=tenant, kind=kind, object_id=str(obj.pk))
        timeline = [
            TimelineEntry(
                number=a.number,
                status=a.status,
                error_message=a.error_message,
                error_stack=a.error_stack,
                made_at=a.started_at,
                started_at=a.started_at,
                finished_at=a.finished_at,
                logs=log_lines(a.logs),
                kind=kind,
                object_id=str(obj.pk),
                source="attempt",
            )
            for a in history.order_by("number")
        ]
        timeline.append(_entry(kind, obj, obj.attempt, True))
        targets = [str(obj.pk)]
    audit = []
    if with_audit:
        audit = list(
            AuditEvent.objects.filter(tenant=tenant, kind=kind, target_id__in=targets).order_by(
                "-created_at", "-id"
            )[:100]
        )
        # And the retries of bulks, which name their bulk's audit row in the item's history.
        audit += bulk_items(tenant, kind, targets)
        audit = sorted(audit, key=lambda e: (e.created_at, e.id or 0), reverse=True)[:100]
    _set_outcomes(audit, timeline, shown.clone_parent is not None)
    return Detail(
        kind=kind,
        obj=obj,
        name=shown.name(obj),
        timeline=timeline,
        retry_of=parent,
        retried_as=child,
        audit=audit,
        extra=shown.extras(obj),
    )


def _chain(kind: str, obj: Model) -> list[Model]:
    """The item's retry chain, oldest first: its ancestors, itself and its retries (an item
    retried again has several, in the order they were made)."""
    model = kinds.get(kind).model
    table = model._meta.db_table
    pk_col = model._meta.pk.column
    parent_col = model._meta.get_field(kinds.get(kind).shown.clone_parent).column
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
    items = {
        str(item.pk): item
        for item in model.objects.filter(pk__in=list(depths)).defer(
            *(f.name for f in model._meta.concrete_fields if f.name in HEAVY)
        )
    }
    return sorted(items.values(), key=lambda item: (depths[str(item.pk)], made(kind, item)))


def _set_outcomes(audit: list[AuditEvent], timeline: list[TimelineEntry], clones: bool) -> None:
    """Each retry's outcome on its audit row (`outcome`: the status its new attempt has now, or
    None): the clone it made, or, for a kind that retries in place, the attempt that followed
    it (the n-th retry made the timeline's attempt n + 1)."""
    if clones:
        status = {entry.object_id: entry.status for entry in timeline}
        for event in audit:  # what made another item (a retry, a resolve by a success)
            made = event.new_target_id != event.target_id
            event.outcome = status.get(event.new_target_id) if made else None
        return
    for event in audit:
        event.outcome = None
    nth_retry_outcomes([e for e in audit if e.action == "retry"], [t.status for t in timeline])
