"""Domain events through a small outbox: rows are written in the transaction that caused them and
published (a Django signal other code can subscribe to) only once it commits. A rolled-back retry
therefore publishes nothing. Events a tenant's webhook subscribes to also enqueue, in that same
transaction, the task that fans them out to deliveries (executions/webhooks/fanout.py)."""

from __future__ import annotations

import json
import logging

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from . import sets
from .models import OutboxEvent, Tenant
from .queueing import enqueue_on_commit, first_in_transaction
from .webhooks import fanout

log = logging.getLogger("redrive.events")

# Sent once per event after commit: sender=OutboxEvent, name=str, payload=dict, event_id=int.
published = Signal()


def emit_many(tenant: Tenant, name: str, payloads: list[dict]) -> None:
    now = timezone.now()
    # Nobody subscribed (receivers connect at import; webhooks: the tenant's subscriptions):
    # nothing to deliver after commit, so the rows are written as published and no hook is set.
    listening = _listening(tenant, name)
    ids = sets.insert_rows(
        OutboxEvent,
        {
            "tenant_id": tenant.pk,
            "name": name,
            "created_at": now,
            "published_at": None if listening else now,
        },
        {"payload": payloads},
        returning="id",
    )
    if listening:
        publish_on_commit(ids)


def emit_from(
    tenant: Tenant, name: str, payload_sql: str, source: str, payload_params: tuple = ()
) -> tuple[str, list, bool]:
    """PostgreSQL only: the INSERT of one event per row of `source` (a CTE of the caller's
    statement), its payload the SQL expression `payload_sql`. Returns (sql, params, listening);
    when listening the INSERT returns the new ids: hand them to publish_on_commit()."""
    now = timezone.now()
    constants = {"tenant_id": tenant.pk, "name": name, "created_at": now}
    if published.has_listeners(OutboxEvent):
        sql, params = sets.insert_from(
            OutboxEvent,
            {**constants, "published_at": None},
            {"payload": payload_sql},
            source,
            payload_params,
        )
        return sql + " RETURNING id", params, True
    # Whether a webhook takes the event is asked inside the statement (once: an InitPlan), so a
    # retry stays one statement; only the events to deliver return their id (the others NULL).
    sql, params = sets.insert_from(
        OutboxEvent,
        constants,
        {
            "payload": payload_sql,
            "published_at": f"CASE WHEN {fanout.WANTED} THEN NULL ELSE %s END",
        },
        source,
        (*payload_params, tenant.pk, json.dumps([name]), now),
    )
    return sql + " RETURNING CASE WHEN published_at IS NULL THEN id END AS id", params, True


def _listening(tenant: Tenant, name: str) -> bool:
    return published.has_listeners(OutboxEvent) or fanout.wanted(tenant.pk, name)


def publish_on_commit(ids: list[int | None]) -> None:
    ids = [pk for pk in ids or () if pk is not None]  # emit_from's NULLs: nothing to deliver
    if not ids:
        return
    if published.has_listeners(OutboxEvent):
        # publish() marks these published at commit, perhaps before the fan-out looks: name them.
        transaction.on_commit(lambda: publish(ids))
        enqueue_on_commit(fanout.fan_out, list(ids))
    elif first_in_transaction("fan_out"):
        # One fan-out per transaction: it takes every committed event not fanned out yet, so a
        # finish that emits three events (or a bench commit to four tenants) costs one task.
        enqueue_on_commit(fanout.fan_out, list(ids))


def publish(ids: list[int]) -> None:
    pending = OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True)
    if published.has_listeners(OutboxEvent):
        for pk, name, payload in pending.values_list("pk", "name", "payload"):
            try:
                published.send(sender=OutboxEvent, name=name, payload=payload, event_id=pk)
            except Exception:  # a faulty subscriber must not undo a committed retry
                log.exception("event subscriber failed for %s %s", name, pk)
    pending.update(published_at=timezone.now())
