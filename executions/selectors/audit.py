"""The audit trail, newest first."""

from __future__ import annotations

from executions.models import AuditEvent, Tenant


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
