"""Deliveries end to end with real worker processes and a real receiver on 127.0.0.1: signed
(verified with standardwebhooks' own verifier), in order, retried after 500s and timeouts,
a 410 disabling the subscription, nothing for a rolled-back transaction, and a worker killed
mid-delivery delivering later (at least once: the receiver dedupes by webhook-id)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from executions import events, services
from executions.models import WebhookDelivery, WebhookSubscription
from executions.webhooks import subscriptions

from .conftest import WORKER_ENV, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = "automation.execution.retried"


def emit(tenant, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        with transaction.atomic():
            events.emit_many(
                tenant, EVENT, [{"executionId": f"e{i}", "tenantId": "t", "userId": 1}]
            )


def subscribe(admin, receiver, **extra):
    return subscriptions.create(admin, {"url": receiver.url, "events": [EVENT], **extra})


def test_signed_in_order_and_verifiable(allow_local, admin, tenant, receiver, worker_process):
    sub, secret = subscribe(admin, receiver)
    assert secret.startswith("whsec_")
    worker_process(env=WORKER_ENV)
    worker_process(env=WORKER_ENV)  # two workers: still one at a time per subscription
    emit(tenant, 30)
    wait_for(lambda: len(receiver.unique()) == 30, what="30 deliveries")
    ids = []
    for got in receiver.unique():
        payload = Webhook(secret).verify(got.body, got.headers)
        assert set(payload) == {"type", "timestamp", "data"} and payload["type"] == EVENT
        assert set(payload["data"]) == {"executionId", "tenantId", "userId"}
        ids.append(payload["data"]["executionId"])
        with pytest.raises(WebhookVerificationError):
            Webhook(subscriptions.signing.new_secret()).verify(got.body, got.headers)
    assert ids == [f"e{i}" for i in range(30)]
    wait_for(lambda: sub.attempts.count() == 30, what="the log")


def test_retry_after_500_and_timeout_and_inbox(
    allow_local, admin, tenant, receiver, worker_process
):
    answers = iter([500, "slow", 200, 200, 200])

    def answer(r):
        value = next(answers)
        if value == "slow":  # longer than the 1 s timeout
            receiver.release.wait(2)
            return 200
        return value

    receiver.answer = answer
    sub, secret = subscribe(admin, receiver)
    worker_process(env=WORKER_ENV)
    emit(tenant, 2)
    wait_for(lambda: len(receiver.unique()) == 2 and sub.attempts.filter(ok=True).count() == 2)
    first, second = WebhookDelivery.objects.order_by("id")
    assert first.status == second.status == "delivered"
    log = list(first.attempts.order_by("number").values_list("response_status", "ok"))
    assert log[0] == (500, False) and log[-1] == (200, True) and len(log) == 3
    timed_out = first.attempts.order_by("number")[1]
    assert "Timeout" in timed_out.error
    for got in receiver.received:
        Webhook(secret).verify(got.body, got.headers)
    # In order: the second event waited for the first.
    assert [r.json["data"]["executionId"] for r in receiver.unique()] == ["e0", "e1"]


def test_failed_delivery_is_in_the_inbox_and_retried_by_the_same_api(
    allow_local, admin, tenant, receiver, worker_process
):
    receiver.answer = lambda r: 503
    sub, _ = subscribe(admin, receiver)
    worker_process(env={**WORKER_ENV, "REDRIVE_WEBHOOK_FIRST_RETRY_MS": "600000"})
    emit(tenant, 1)
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(status="failed").first())
    client = Client()
    client.force_login(admin.user)
    listed = client.get("/api/failures", {"kind": "delivery"}).json()
    assert [i["id"] for i in listed["items"]] == [str(delivery.pk)]
    page = client.get(f"/executions/delivery/{delivery.pk}/")
    assert (
        page.status_code == 200 and b"503" in page.content and receiver.url.encode() in page.content
    )
    receiver.answer = lambda r: 200
    outcome = services.retry_one(admin, "delivery", delivery.pk)
    assert str(outcome.new_id) == str(delivery.pk)
    wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered")
    assert len(receiver.received) == 2 and len(receiver.unique()) == 1


def test_410_disables_the_subscription(allow_local, admin, tenant, receiver, worker_process):
    receiver.answer = lambda r: 410
    sub, _ = subscribe(admin, receiver)
    worker_process(env=WORKER_ENV)
    emit(tenant, 3)
    wait_for(lambda: not WebhookSubscription.objects.get(pk=sub.pk).enabled)
    sub.refresh_from_db()
    assert "410" in sub.disabled_reason
    assert len(receiver.received) == 1
    assert list(WebhookDelivery.objects.order_by("id").values_list("status", flat=True)) == [
        "dead",
        "pending",
        "pending",
    ]
    client = Client()
    client.force_login(admin.user)
    assert b"410 Gone" in client.get("/webhooks/").content  # the admin is told


def test_rolled_back_transaction_sends_nothing(
    allow_local, admin, tenant, receiver, worker_process
):
    subscribe(admin, receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit_many(tenant, EVENT, [{"executionId": "rolled-back"}])
        raise RuntimeError
    emit(tenant, 1)
    worker_process(env=WORKER_ENV)
    wait_for(lambda: receiver.received)
    wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").exists())
    assert [r.json["data"]["executionId"] for r in receiver.received] == ["e0"]
    assert WebhookDelivery.objects.count() == 1


def test_worker_killed_mid_delivery_delivers_later(
    allow_local, admin, tenant, receiver, worker_process
):
    receiver.answer = lambda r: "hang" if len(receiver.received) == 1 else 200
    sub, secret = subscribe(admin, receiver)
    first = worker_process(env=WORKER_ENV, lease_seconds=2)
    emit(tenant, 2)
    wait_for(lambda: receiver.received, what="the first attempt")
    first.kill()
    receiver.release.set()
    worker_process(env=WORKER_ENV, lease_seconds=2)
    wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").count() == 2, 60)
    unique = receiver.unique()
    assert [r.json["data"]["executionId"] for r in unique] == ["e0", "e1"]
    assert len(receiver.received) == 3  # e0 twice, under one webhook-id
    for got in receiver.received:
        Webhook(secret).verify(got.body, got.headers)


def tasks(name: str) -> int:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path=f"executions.webhooks.{name}").count()


def test_one_fan_out_per_transaction_delivers_all_its_events(
    allow_local, admin, other_admin, tenant, receiver, worker_process
):
    """A transaction emitting for two tenants and several times costs one fan-out task (each
    was a task pickup on every event's way to its receiver), and still delivers every event."""
    mine, _ = subscribe(admin, receiver)
    theirs, _ = subscribe(other_admin, receiver)
    with transaction.atomic():
        events.emit_many(tenant, EVENT, [{"executionId": "a0"}])
        events.emit_many(other_admin.tenant, EVENT, [{"executionId": "b0"}])
        # A savepoint rolled back takes its events with it, and nothing else.
        with pytest.raises(RuntimeError), transaction.atomic():
            events.emit_many(tenant, EVENT, [{"executionId": "rolled-back"}])
            raise RuntimeError
        events.emit_many(tenant, EVENT, [{"executionId": "a1"}, {"executionId": "a2"}])
    assert tasks("fanout.fan_out") == 1
    # A savepoint that enqueued the transaction's fan-out and rolled back leaves none behind:
    # the next emit enqueues its own.
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            events.emit_many(tenant, EVENT, [{"executionId": "rolled-back"}])
            raise RuntimeError
        events.emit_many(other_admin.tenant, EVENT, [{"executionId": "b1"}])
    assert tasks("fanout.fan_out") == 2
    worker_process(env=WORKER_ENV)
    wait_for(lambda: len(receiver.unique()) == 5, what="5 deliveries")
    by_sub = {
        sub.pk: list(
            sub.deliveries.order_by("event_id").values_list("payload__data__executionId", flat=True)
        )
        for sub in (mine, theirs)
    }
    assert by_sub == {mine.pk: ["a0", "a1", "a2"], theirs.pk: ["b0", "b1"]}
    got = [r.json["data"]["executionId"] for r in receiver.unique()]
    assert [e for e in got if e.startswith("a")] == ["a0", "a1", "a2"]
    assert [e for e in got if e.startswith("b")] == ["b0", "b1"]


def test_the_fan_out_worker_delivers_without_another_task(
    allow_local, admin, tenant, receiver, worker_process
):
    """From commit to receiver is one task pickup: the worker that fans an event out sends it,
    to every subscription it woke."""
    subscribe(admin, receiver)
    subscribe(admin, receiver, description="second")
    worker_process(env=WORKER_ENV)
    emit(tenant, 3)
    wait_for(lambda: len(receiver.unique()) == 6, what="6 deliveries")
    for sub in WebhookSubscription.objects.all():
        sent = [
            r for r in receiver.unique() if r.headers["webhook-id"].startswith(f"msg_{sub.pk.hex}")
        ]
        assert [r.json["data"]["executionId"] for r in sent] == ["e0", "e1", "e2"]
    assert tasks("delivery.deliver") == 0
