"""The events of an attempt becoming final, from the one place attempts do (leases.finish and
its batched Finisher): `execution.failed` (opt-in: every failure) and `retry.finished` (the
attempt was a retry: a clone of a failed item, or an item's attempt after the first). Emitted in
the finishing transaction; one small query when no subscription takes either (none is written)."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from .. import events, kinds
from ..models import BulkRetry, Tenant, WebhookSubscription
from . import fanout

FINAL_EVENTS = ("execution.failed", "retry.finished")


def _subscribed(names: tuple[str, ...]) -> bool:
    return any(
        set(names) & set(subscribed)
        for subscribed in WebhookSubscription.objects.filter(enabled=True).values_list(
            "events", flat=True
        )
    )


def finished(model: type[Model], rows: list[tuple[Any, dict]]) -> None:
    """`rows`: (pk, the values its finish wrote) of attempts of `model` that just became final."""
    spec = next((k for k in kinds.KINDS if k.model is model), None)
    if spec is None or not rows or not _subscribed(FINAL_EVENTS):
        return
    values = {str(pk): v for pk, v in rows}
    by_tenant: dict[Any, dict[str, list[dict]]] = {}
    for obj in model.objects.filter(pk__in=list(values)):
        status = values[str(obj.pk)].get("status", obj.status)
        data = {
            "kind": spec.name,
            "id": str(obj.pk),
            "name": str(getattr(obj, spec.name_field, "") or ""),
            "status": status,
            "error": getattr(obj, "error_message", None),
            "fingerprint": getattr(obj, "fingerprint", ""),
            "tenantId": str(obj.tenant_id),
        }
        failed = status in spec.failed_statuses
        out = by_tenant.setdefault(obj.tenant_id, {})
        if failed:
            out.setdefault("execution.failed", []).append(data)
        if _is_retry(spec, obj):
            outcome = "failed" if failed else "succeeded"
            out.setdefault("retry.finished", []).append({**data, "outcome": outcome})
    for tenant_id, named in by_tenant.items():
        tenant = Tenant(pk=tenant_id)
        for name, payloads in named.items():
            if fanout.wanted(tenant_id, name):
                events.emit_many(tenant, name, payloads)


def _is_retry(spec, obj) -> bool:
    """A clone of a failed item (functions, jobs, runs), or an attempt after an item's first
    (the kinds that retry in place)."""
    parent = spec.shown.clone_parent
    if parent is not None:
        return getattr(obj, f"{parent}_id", None) is not None
    return (getattr(obj, "attempt", None) or 1) > 1


def bulk_finished(bulk_id) -> None:
    """`bulk_retry.finished`, in the transaction that marks the bulk finished (or cancelled)."""
    bulk = BulkRetry.objects.get(pk=bulk_id)
    if not fanout.wanted(bulk.tenant_id, "bulk_retry.finished"):
        return  # nobody subscribed: no outbox row either
    events.emit_many(
        bulk.tenant,
        "bulk_retry.finished",
        [
            {
                "bulkId": str(bulk.pk),
                "status": bulk.status,
                "total": bulk.total,
                "retried": bulk.done,
                "failed": bulk.failed,
                "name": f"bulk retry {bulk.pk}",
                "tenantId": str(bulk.tenant_id),
            }
        ],
    )
