"""The audit trail, newest first: the audit rows, and the items of bulk retries. A bulk retry
writes one audit row (action "bulk retry"); the history rows of the items it resets in place
name that row (Attempt.bulk_audit) instead of an audit row each, and read back here as the audit
row each item had before: retried by the bulk's actor, from its source, in the bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from types import SimpleNamespace
from typing import NamedTuple

from django.db.models import QuerySet

from executions import kinds
from executions.models import Attempt, AuditEvent, Tenant

_ROW = float("inf")  # an audit row comes before its bulk's items (newest first)


class AuditCursor(NamedTuple):
    """Where the next page starts: before audit row `before`, or, with `item`, before that item
    of the bulk whose audit row is `before` (the rest of its items, then older rows)."""

    before: int
    item: int | None = None


def audit_events(
    tenant: Tenant,
    *,
    kind: str = "",
    actor: str = "",
    source: str = "",
    target: str = "",
    bulk: str = "",
    before: int | None = None,
    item: int | None = None,
    limit: int = 50,
) -> tuple[list[AuditEvent], AuditCursor | None]:
    """The audit, newest first, keyset-paginated: (events, where the next page starts). A bulk's
    items follow its audit row, newest first; they are AuditEvents that were never saved."""
    rows = _who(AuditEvent.objects.filter(tenant=tenant), "", actor, source, bulk)
    if kind:
        rows = rows.filter(kind=kind)
    if target:
        rows = rows.filter(target_id=target) | rows.filter(new_target_id=target)
    if before is not None:
        rows = rows.filter(id__lt=before)
    found = [((e.id, _ROW), e) for e in rows.order_by("-id")[: limit + 1]]
    # Items rank below the last row this page may show: no need to look further than that.
    floor = found[-1][0][0] if len(found) > limit else 0
    if not kind or kinds.BY_NAME.get(kind, None) in _in_place():
        found += _items(tenant, kind, actor, source, target, bulk, before, item, floor, limit)
    found.sort(key=lambda entry: entry[0], reverse=True)
    page = found[:limit]
    set_outcomes(tenant, [e for _, e in page])
    if len(found) <= limit:
        return [e for _, e in page], None
    (row_id, item_id), _ = page[-1]
    return [e for _, e in page], AuditCursor(row_id, None if item_id == _ROW else item_id)


def set_outcomes(tenant: Tenant, events: list[AuditEvent]) -> None:
    """Each retry's outcome on its audit row (`outcome`: the status its new attempt has now, or
    None), for a page of rows in at most three queries per kind, not one per row: the clone a
    retry made, or, in place, the attempt it made (`nth_retry_outcomes`)."""
    retries: dict[str, list[AuditEvent]] = defaultdict(list)
    for event in events:
        event.outcome = None
        if event.action == "retry" and event.kind in kinds.BY_NAME:
            retries[event.kind].append(event)
    for kind, these in retries.items():
        spec = kinds.get(kind)
        objects = spec.model.objects.filter(tenant=tenant)
        if spec.resets_to is None:
            made = {e.new_target_id for e in these if e.new_target_id not in ("", e.target_id)}
            status = {
                str(pk): s for pk, s in objects.filter(pk__in=made).values_list("pk", "status")
            }
            for event in these:
                event.outcome = status.get(event.new_target_id)
            continue
        targets = {e.target_id for e in these}
        current = {
            str(pk): s for pk, s in objects.filter(pk__in=targets).values_list("pk", "status")
        }
        history = Attempt.objects.filter(tenant=tenant, kind=kind, object_id__in=targets)
        attempts: dict[str, list[str]] = defaultdict(list)
        # Every retry of an item, the page's and the others: a single one's audit row, a bulk's
        # item (its history row, as_audit's time), in the order the detail page ranks them.
        ranked: dict[str, list[tuple]] = defaultdict(list)
        for object_id, status, when, bulk in history.order_by("number").values_list(
            "object_id", "status", "recorded_at", "bulk_audit_id"
        ):
            attempts[object_id].append(status)
            if bulk is not None:
                ranked[object_id].append((when, 0))
        singles = AuditEvent.objects.filter(
            tenant=tenant, kind=kind, action="retry", target_id__in=targets
        ).values_list("target_id", "created_at", "id")
        for object_id, when, pk in singles:
            ranked[object_id].append((when, pk))
        for target in targets:
            page = [e for e in these if e.target_id == target]
            shown = {(e.created_at, e.pk or 0) for e in page}
            others = [
                SimpleNamespace(created_at=when, pk=pk)
                for when, pk in ranked[target]
                if (when, pk) not in shown
            ]
            nth_retry_outcomes([*page, *others], [*attempts[target], current.get(target)])


def nth_retry_outcomes(retries: list, statuses: list[str | None]) -> None:
    """In place, an item's n-th retry made its attempt n + 1: each of `retries` (all of the
    item's) gets the status of the attempt it made, `statuses` being the item's attempts in
    order, its current one last (None: not known)."""
    for n, event in enumerate(sorted(retries, key=lambda e: (e.created_at, e.pk or 0)), 1):
        event.outcome = statuses[n] if n < len(statuses) else None


def bulk_items(tenant: Tenant, kind: str, object_ids: list[str]) -> list[AuditEvent]:
    """The audit of items of `kind` that bulk retries retried (the detail page's)."""
    if kinds.BY_NAME.get(kind, None) not in _in_place():
        return []
    items = Attempt.objects.filter(
        tenant=tenant, kind=kind, object_id__in=object_ids, bulk_audit__isnull=False
    )
    newest = items.select_related("bulk_audit").order_by("-recorded_at", "-id")[:100]
    return [as_audit(a, a.bulk_audit) for a in newest]


def as_audit(attempt: Attempt, row: AuditEvent) -> AuditEvent:
    """The audit row of one item of a bulk retry (`row`: the bulk's), as a single retry writes
    it."""
    spec = kinds.BY_NAME.get(attempt.kind)
    return AuditEvent(
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        api_key_id=row.api_key_id,
        actor=row.actor,
        source=row.source,
        action="retry",
        kind=attempt.kind,
        target_id=attempt.object_id,
        new_target_id=attempt.object_id,
        status_before=attempt.status,
        status_after=spec.resets_to if spec is not None else "",
        request_id=row.request_id,
        ip=row.ip,
        bulk_id=row.bulk_id,
        details={"reason": row.details["reason"]} if (row.details or {}).get("reason") else {},
        created_at=attempt.recorded_at,
    )


def _in_place() -> list[kinds.KindSpec]:
    return [spec for spec in kinds.KINDS if spec.resets_to is not None]


def _items(
    tenant: Tenant,
    kind: str,
    actor: str,
    source: str,
    target: str,
    bulk: str,
    before: int | None,
    item: int | None,
    floor: int,
    limit: int,
) -> list[tuple[tuple[int, float], AuditEvent]]:
    """Up to limit + 1 bulk items, newest first, from bulks whose audit row is `floor` or
    newer (and, with `before`, not newer than it)."""
    items = Attempt.objects.filter(tenant=tenant, bulk_audit__isnull=False)
    if kind:
        items = items.filter(kind=kind)
    else:
        items = items.filter(kind__in=[spec.name for spec in _in_place()])
    if target:
        # An item's history by its id (attempt_unique): a handful of rows, whichever bulks.
        items = items.filter(object_id=target, bulk_audit_id__gte=floor)
        items = _who(items, "bulk_audit__", actor, source, bulk)
        out = [
            ((a.bulk_audit_id, a.id), as_audit(a, a.bulk_audit))
            for a in items.select_related("bulk_audit")
            if before is None or (a.bulk_audit_id, a.id) < (before, item or _ROW)
        ]
        return sorted(out, reverse=True)[: limit + 1]
    # Else bulk by bulk, newest first, each bulk's items by attempt_bulk, until the page is full.
    bulks = AuditEvent.objects.filter(tenant=tenant, action=AuditEvent.BULK_RETRY, id__gte=floor)
    bulks = _who(bulks, "", actor, source, bulk)
    if before is not None:
        bulks = bulks.filter(id__lte=before)
    out: list[tuple[tuple[int, float], AuditEvent]] = []
    for row in _newest_first(bulks):
        these = items.filter(bulk_audit_id=row.id)
        if row.id == before and item is not None:
            these = these.filter(id__lt=item)
        for a in these.order_by("-id")[: limit + 1 - len(out)]:
            out.append(((row.id, a.id), as_audit(a, row)))
        if len(out) > limit:
            break
    return out


def _who(qs: QuerySet, prefix: str, actor: str, source: str, bulk: str) -> QuerySet:
    """`qs` narrowed to the actor, source and bulk asked for (audit row fields under `prefix`)."""
    wanted = {"actor": actor, "source": source, "bulk_id": bulk}
    return qs.filter(**{prefix + field: value for field, value in wanted.items() if value})


def _newest_first(rows: QuerySet[AuditEvent], chunk: int = 20) -> Iterator[AuditEvent]:
    """`rows` by id, newest first, read a few at a time (most pages need one or two)."""
    older = rows
    while found := list(older.order_by("-id")[:chunk]):
        yield from found
        older = rows.filter(id__lt=found[-1].id)
