"""Domain events through a small outbox: rows are written in the transaction that caused them and
published (a Django signal other code can subscribe to) only once it commits. A rolled-back retry
therefore publishes nothing."""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from .models import OutboxEvent, Tenant

log = logging.getLogger("redrive.events")

# Sent once per event after commit: sender=OutboxEvent, name=str, payload=dict, event_id=int.
published = Signal()


def emit_many(tenant: Tenant, name: str, payloads: list[dict]) -> None:
    rows = OutboxEvent.objects.bulk_create(
        OutboxEvent(tenant=tenant, name=name, payload=payload) for payload in payloads
    )
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: publish(ids))


def publish(ids: list[int]) -> None:
    for event in OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True):
        try:
            published.send(
                sender=OutboxEvent, name=event.name, payload=event.payload, event_id=event.pk
            )
        except Exception:  # a faulty subscriber must not undo a committed retry
            log.exception("event subscriber failed for %s %s", event.name, event.pk)
    OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True).update(
        published_at=timezone.now()
    )
