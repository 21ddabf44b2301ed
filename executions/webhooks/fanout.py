"""From committed events to deliveries. events.emit_many/emit_from ask `wanted()` whether a
tenant's enabled subscription takes the event (one small query; none: the rows are written as
published, as before) and then enqueue `fan_out` in the causing transaction: a rolled-back change
leaves neither the event nor the task (one per transaction). The task writes one delivery per
matching subscription (idempotently: a task run twice writes each once) and sends them, holding
each subscription's lease in turn, unless another worker holds it (that one sends them)."""

from __future__ import annotations

import time
from collections import defaultdict

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import OutboxEvent, WebhookDelivery, WebhookSubscription
from ..queueing import worker_task
from . import payloads

# How long a fan-out's worker goes on delivering the subscriptions it woke itself (each saves
# a task pickup) before it leaves the rest to the queue.
INLINE_BUDGET_S = 0.5

# The same question in SQL, for events.emit_from's statement (PostgreSQL): tenant id, ["name"].
WANTED = (
    "EXISTS (SELECT 1 FROM executions_webhooksubscription s WHERE s.tenant_id = %s "
    "AND s.enabled AND s.events @> %s::jsonb)"
)


def wanted(tenant_id, name: str) -> bool:
    return any(
        name in events
        for events in WebhookSubscription.objects.filter(
            tenant_id=tenant_id, enabled=True
        ).values_list("events", flat=True)
    )


def facets(name: str, data: dict) -> tuple[str, str | None]:
    """The kind and name an event is about, for a subscription's filter. None: the name costs a
    lookup, made only when a filter needs it (the seed's event carries only the execution id)."""
    if name.startswith("automation."):
        return "automation", data.get("name")
    return str(data.get("kind") or ""), data.get("name")


def _name_of(kind: str, item_id) -> str:
    from .. import kinds

    try:
        spec = kinds.get(kind)
        return str(
            spec.model.objects.filter(pk=item_id).values_list(spec.name_field, flat=True).first()
            or ""
        )
    except Exception:  # noqa: BLE001 - an id that is not one matches no name filter
        return ""


def matches(sub: WebhookSubscription, name: str, data: dict) -> bool:
    if name not in sub.events:
        return False
    kind, item_name = facets(name, data)
    if sub.filter_kind and sub.filter_kind != kind:
        return False
    if sub.filter_name:
        if item_name is None:
            item_name = _name_of(kind, data.get("id") or data.get("executionId"))
        if sub.filter_name != item_name:
            return False
    return True


@worker_task
def fan_out(event_ids: list[int]) -> int:
    """One delivery per (event, matching subscription), for the given events and every other
    committed one not fanned out yet (events.publish_on_commit enqueues one fan-out per
    transaction, whatever its tenants and event types). Two fan-outs of a tenant run one after
    the other (the subscriptions' row locks) and each takes all the tenant's events not fanned
    out yet, in id order: deliveries (ordered by event id) keep the events' order. Then this
    worker delivers the subscriptions it woke itself, a task pickup less on the way from commit
    to receiver for each (within INLINE_BUDGET_S; the rest go to the queue)."""
    from .delivery import deliver_now, kick

    now = timezone.now()
    due = Q(pk__in=event_ids) | Q(published_at__isnull=True)
    with transaction.atomic():
        tenants = set(
            OutboxEvent.objects.filter(due).values_list("tenant_id", flat=True).distinct()
        )
        subs: dict[int, list[WebhookSubscription]] = defaultdict(list)
        for sub in (
            WebhookSubscription.objects.select_for_update()
            .filter(tenant_id__in=tenants, enabled=True)
            .order_by("pk")
        ):
            subs[sub.tenant_id].append(sub)
        # Read under the locks: what an earlier fan-out of these tenants wrote is published now.
        events = list(OutboxEvent.objects.filter(due, tenant_id__in=tenants).order_by("pk"))
        rows = [
            _delivery(sub, event, now)
            for event in events
            for sub in subs[event.tenant_id]
            if matches(sub, event.name, _data(event))
        ]
        # A second run of this task (its worker died after the commit) writes nothing new.
        WebhookDelivery.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        OutboxEvent.objects.filter(pk__in=[e.pk for e in events], published_at__isnull=True).update(
            published_at=now
        )
        # A subscription whose worker holds it now needs no task: that worker looks again
        # after releasing it (delivery.deliver), and finds these.
        free = {s.pk for group in subs.values() for s in group if _free(s, now)}
        woken = [
            sub_id for sub_id in dict.fromkeys(r.subscription_id for r in rows) if sub_id in free
        ]
    if transaction.get_connection().in_atomic_block:
        woken, queued = [], woken  # called inside a caller's transaction (tests): after commit
    else:
        queued = []
    started = time.monotonic()
    for i, sub_id in enumerate(woken):
        # A slow endpoint must not hold the others back for long: past the budget, the rest
        # go to the queue, for any idle worker.
        if i and time.monotonic() - started > INLINE_BUDGET_S:
            queued = woken[i:]
            break
        deliver_now(sub_id)
    for sub_id in queued:
        kick(sub_id)
    return len(rows)


def _free(sub: WebhookSubscription, now) -> bool:
    return sub.lease_expires_at is None or sub.lease_expires_at < now


def _data(event: OutboxEvent) -> dict:
    return event.payload if isinstance(event.payload, dict) else {"value": event.payload}


def _delivery(sub: WebhookSubscription, event: OutboxEvent, now) -> WebhookDelivery:
    return WebhookDelivery(
        tenant_id=event.tenant_id,
        subscription=sub,
        event_id=event.pk,
        event_type=event.name,
        message_id=f"msg_{sub.pk.hex}_{event.pk}",
        payload=payloads.standard(event.name, event.created_at, _data(event)),
        url=sub.url,
        committed_at=event.created_at,
        created_at=now,
        updated_at=now,
    )
