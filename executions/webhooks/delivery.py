"""Sending a subscription's deliveries: in their events' order, one worker at a time (the one
holding the subscription's lease), each signed and POSTed; at least once (a worker killed
mid-send leaves the delivery pending: the next holder sends it again under the same `webhook-id`).

A failed attempt makes the delivery `failed` (in the inbox from then on, as the `delivery` kind)
and holds back the later ones until its retry, after an exponential backoff with jitter (about
5 s, 30 s, 2 min, 10 min, 1 h, ... over about a day). A 410, or a day of failures, disables the
subscription (its admin sees why on the webhooks page) and the delivery is `dead`."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import leases
from ..fingerprints import fingerprint
from ..models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from ..queueing import enqueue_on_commit, worker_task
from ..work.http import GuardedTransport, allow_list
from . import payloads, signing, subscriptions

PENDING, FAILED = WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED
DELIVERED, DEAD = WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.DEAD
# The backoff, as multiples of the first retry (5 s): 5 s, 30 s, 2 min, 10 min, 1 h, 2 h, 4 h,
# 8 h, 10 h: about a day in all. Then, or after a day failing, the subscription is disabled.
BACKOFF = (1, 6, 24, 120, 720, 1440, 2880, 5760, 7200)
DAY_IN_FIRST_RETRIES = 17280  # 24 h / 5 s
BATCH = 200
EXCERPT_BYTES = 1000


def backoff(attempts: int) -> timedelta | None:
    """The wait before the next attempt after `attempts` failed ones (None: give up)."""
    if attempts > len(BACKOFF):
        return None
    seconds = settings.REDRIVE_WEBHOOK_FIRST_RETRY_MS * BACKOFF[attempts - 1] / 1000
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 - jitter


def give_up_after() -> timedelta:
    return timedelta(milliseconds=settings.REDRIVE_WEBHOOK_FIRST_RETRY_MS * DAY_IN_FIRST_RETRIES)


def kick(sub_id, at=None) -> None:
    """Have a worker deliver the subscription's due deliveries (at `at`, where the task backend
    can defer; else the reaper's sweep wakes it once due)."""
    if at is not None:
        target = deliver.using(run_after=at)
        if not target.get_backend().supports_defer:
            return
        if transaction.get_connection().in_atomic_block:
            enqueue_on_commit(target, str(sub_id))
            return
    enqueue_on_commit(deliver, str(sub_id))


# --- the worker's side ---------------------------------------------------------------------------

_local = threading.local()


def _client() -> httpx.Client:
    """One client per worker thread, so keep-alive connections are reused across deliveries.
    Its transport refuses, at connect time, any address REDRIVE_HTTP_ALLOW does not allow."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(
            transport=GuardedTransport(allow_list()), follow_redirects=False
        )
    return client


@worker_task
def deliver(sub_id: str) -> int:
    return deliver_now(sub_id)


def deliver_now(sub_id) -> int:
    """Send the subscription's due deliveries here and now, if no other worker holds it."""
    owner = leases.new_owner()
    sent = 0
    while True:
        token = _claim(sub_id, owner)
        if token is None:
            return sent  # another worker holds it: it will see our deliveries too (below)
        try:
            sent += _drain(sub_id)
        finally:
            _release(sub_id, token)
        # A delivery fanned out while we held the lease got no task of its own (fanout.py) or
        # one that found the lease taken: after releasing, look once more, so none waits.
        if not _head_due(sub_id):
            return sent


def _claim(sub_id, owner: str) -> int | None:
    now = timezone.now()
    claimed = (
        WebhookSubscription.objects.filter(pk=sub_id, enabled=True)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(
            lease_owner=owner,
            lease_token=F("lease_token") + 1,
            lease_expires_at=leases.lease_expiry(),
        )
    )
    if not claimed:
        return None
    token = (
        WebhookSubscription.objects.filter(pk=sub_id, lease_owner=owner)
        .values_list("lease_token", flat=True)
        .first()
    )
    if token is not None:
        leases.keeper.hold(WebhookSubscription, sub_id, token)
    return token


def _release(sub_id, token: int) -> None:
    leases.keeper.release(WebhookSubscription, sub_id)
    WebhookSubscription.objects.filter(pk=sub_id, lease_token=token).update(
        lease_owner="", lease_expires_at=None
    )


def _head_due(sub_id) -> bool:
    head = (
        WebhookDelivery.objects.filter(subscription_id=sub_id, status__in=(PENDING, FAILED))
        .order_by("event_id", "id")
        .values_list("status", "next_attempt_at")
        .first()
    )
    if head is None:
        return False
    status, at = head
    return status == PENDING or at is None or at <= timezone.now()


@dataclass
class Sent:
    ok: bool
    at: Any
    status: int | None = None
    excerpt: str = ""
    error: str = ""
    duration_ms: int = 0
    request: dict = field(default_factory=dict)


def _drain(sub_id) -> int:
    sent = 0
    while True:
        sub = WebhookSubscription.objects.filter(pk=sub_id, enabled=True).first()
        if sub is None:
            return sent
        batch = list(
            WebhookDelivery.objects.filter(
                subscription_id=sub_id, status__in=(PENDING, FAILED)
            ).order_by("event_id", "id")[:BATCH]
        )
        if not batch:
            return sent
        done: list[tuple[WebhookDelivery, Sent]] = []
        try:
            for delivery in batch:
                at = delivery.next_attempt_at
                if delivery.status == FAILED and at is not None and at > timezone.now():
                    return sent  # its retry is scheduled; the later ones wait for it
                result = send(sub, delivery)
                if not result.ok:
                    _record(sub, done)
                    done = []
                    _failed(sub, delivery, result)
                    return sent
                done.append((delivery, result))
                sent += 1
        finally:
            _record(sub, done)


def send(sub: WebhookSubscription, delivery: WebhookDelivery) -> Sent:
    now = timezone.now()
    body = payloads.body(sub.format, delivery.payload)
    headers = signing.headers(
        subscriptions.signing_secrets(sub, now), delivery.message_id, now, body
    )
    request = {
        "method": "POST",
        "url": sub.url,
        "headers": headers,
        "body": body[:EXCERPT_BYTES].decode(errors="replace"),
    }
    started = time.monotonic()
    try:
        with _client().stream(
            "POST",
            sub.url,
            content=body,
            headers=headers,
            timeout=settings.REDRIVE_WEBHOOK_TIMEOUT_S,
        ) as response:
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
            status = response.status_code
    except Exception as exc:  # noqa: BLE001 - any failure to deliver is the attempt's outcome
        return Sent(
            False,
            now,
            error=f"{type(exc).__name__}: {exc}"[:1000] or type(exc).__name__,
            duration_ms=int((time.monotonic() - started) * 1000),
            request=request,
        )
    return Sent(
        200 <= status < 300,
        now,
        status=status,
        excerpt=excerpt[:EXCERPT_BYTES].decode(errors="replace"),
        duration_ms=int((time.monotonic() - started) * 1000),
        request=request,
    )


def _attempt(sub, delivery, result: Sent, number: int) -> WebhookAttempt:
    return WebhookAttempt(
        tenant_id=sub.tenant_id,
        subscription_id=sub.pk,
        delivery_id=delivery.pk,
        number=number,
        at=result.at,
        duration_ms=result.duration_ms,
        request=result.request,
        response_status=result.status,
        response_excerpt=result.excerpt,
        error=result.error,
        ok=result.ok,
    )


def _record(sub: WebhookSubscription, done: list[tuple[WebhookDelivery, Sent]]) -> None:
    """The delivered ones, together: one UPDATE per response status and one INSERT."""
    if not done:
        return
    now = timezone.now()
    by_status: dict[int | None, list] = {}
    for delivery, result in done:
        by_status.setdefault(result.status, []).append(delivery.pk)
    with transaction.atomic():
        for status, ids in by_status.items():
            WebhookDelivery.objects.filter(pk__in=ids, status__in=(PENDING, FAILED)).update(
                status=DELIVERED,
                attempt=F("attempt") + 1,
                delivered_at=now,
                next_attempt_at=None,
                response_status=status,
                response_excerpt="",
                updated_at=now,
            )
        WebhookAttempt.objects.bulk_create(_attempt(sub, d, r, d.attempt + 1) for d, r in done)
        _settled([d.pk for d, _ in done])
        if sub.failing_since is not None:
            WebhookSubscription.objects.filter(pk=sub.pk).update(failing_since=None)
            sub.failing_since = None


def _failed(sub: WebhookSubscription, delivery: WebhookDelivery, result: Sent) -> None:
    now = timezone.now()
    number = delivery.attempt + 1
    message = result.error or f"HTTP {result.status}: {result.excerpt[:200]}".rstrip(": ")
    failing_since = sub.failing_since or now
    gone = result.status == 410
    wait = backoff(number)
    values: dict[str, Any] = {
        "attempt": number,
        "error_message": message,
        "error_stack": "",
        "fingerprint": fingerprint(
            "delivery",
            sub.url,
            f"HTTP {result.status}" if result.status else result.error.split(":")[0],
            message,
        ),
        "response_status": result.status,
        "response_excerpt": result.excerpt,
        "updated_at": now,
    }
    reason = ""
    if gone:
        reason = "the endpoint answered 410 Gone"
    elif wait is None or now - failing_since >= give_up_after():
        reason = f"failing since {failing_since:%Y-%m-%d %H:%M} UTC: {message[:200]}"
    with transaction.atomic():
        WebhookAttempt.objects.bulk_create([_attempt(sub, delivery, result, number)])
        if reason:
            values.update(status=DEAD, next_attempt_at=None)
            WebhookSubscription.objects.filter(pk=sub.pk).update(
                enabled=False,
                disabled_reason=reason[:300],
                disabled_at=now,
                failing_since=failing_since,
                updated_at=now,
            )
        else:
            values.update(status=FAILED, next_attempt_at=now + wait)
            WebhookSubscription.objects.filter(pk=sub.pk).update(failing_since=failing_since)
            kick(sub.pk, at=values["next_attempt_at"])
        WebhookDelivery.objects.filter(pk=delivery.pk, status__in=(PENDING, FAILED)).update(
            **values
        )
        _settled([delivery.pk])


def _settled(pks: list) -> None:
    """A delivery is a kind like the others: a success resolves it, a failure counts."""
    from .. import triage  # imports the kinds, whose deliveries package imports this module

    triage.settled(WebhookDelivery, pks)


def reap(now) -> int:
    """The reaper's part: a subscription whose worker was lost (its lease expired) goes back to
    the workers, its pending delivery sent again; and a due retry the task backend could not
    defer is woken here. Returns the lost subscriptions."""
    lost = list(
        WebhookSubscription.objects.filter(lease_expires_at__lt=now).values_list("pk", flat=True)
    )
    if lost:
        WebhookSubscription.objects.filter(pk__in=lost, lease_expires_at__lt=now).update(
            lease_owner="", lease_expires_at=None
        )
    late = now - timedelta(seconds=leases.renewal_seconds())
    due = set(
        WebhookDelivery.objects.filter(
            status=FAILED, next_attempt_at__lte=late, subscription__enabled=True
        )
        .values_list("subscription_id", flat=True)
        .distinct()
    )
    with transaction.atomic():
        for sub_id in {*lost, *due}:
            kick(sub_id)
    return len(lost)
