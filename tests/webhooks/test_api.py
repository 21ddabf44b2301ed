"""POST/GET/PATCH/DELETE /api/webhooks, rotate-secret and the delivery log: the secret shown
once, bad input a 400 naming the field, tenant admins only, another tenant's webhook a 404;
fan-out by event type, kind and name, tenant by tenant; rotation's overlap; Slack's format."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import Client
from standardwebhooks.webhooks import Webhook

from executions import events
from executions.models import WebhookDelivery
from executions.webhooks import delivery, fanout, payloads, subscriptions

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def patch(client, path, body):
    return client.patch(path, json.dumps(body), content_type="application/json")


def test_crud_and_secret_shown_once(allow_local, admin, receiver):
    c = client_for(admin)
    body = {"url": receiver.url, "events": ["failure.new_group"], "filter": {"kind": "job"}}
    created = post(c, "/api/webhooks", body)
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["secret"].startswith("whsec_") and len(data["secret"]) > 30
    path = f"/api/webhooks/{data['id']}"
    shown = c.get(path).json()
    assert shown["secret"] != data["secret"] and data["secret"] not in json.dumps(shown)
    assert shown["filter"] == {"kind": "job", "name": None}
    assert data["secret"] not in json.dumps(c.get("/api/webhooks").json())
    changed = patch(c, path, {"events": ["retry.finished", "execution.failed"], "format": "slack"})
    assert changed.status_code == 200 and changed.json()["format"] == "slack"
    rotated = post(c, f"{path}/rotate-secret", {})
    assert rotated.status_code == 200 and rotated.json()["secret"] != data["secret"]
    assert c.get(f"{path}/deliveries").json() == {"items": [], "nextBefore": None}
    assert c.delete(path).status_code == 204
    assert c.get(path).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["retry.finished"]}, "url"),
        ({"url": "ftp://example.com/x", "events": ["retry.finished"]}, "url"),
        ({"url": "http://example.com/x", "events": ["retry.finished"]}, "url"),
        ({"url": "https://10.0.0.7/x", "events": ["retry.finished"]}, "url"),
        ({"url": "https://example.com/x", "events": []}, "events"),
        ({"url": "https://example.com/x", "events": ["nope"]}, "events[0]"),
        (
            {"url": "https://example.com/x", "events": ["retry.finished"], "filter": {"kind": "x"}},
            "filter.kind",
        ),
        ({"url": "https://example.com/x", "events": ["retry.finished"], "format": "fax"}, "format"),
        ({"url": "https://example.com/x", "events": ["retry.finished"], "secret": "x"}, "secret"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin, body, field):
    response = post(client_for(admin), "/api/webhooks", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert not subscriptions.WebhookSubscription.objects.exists()


def test_admins_only_and_tenant_isolation(allow_local, admin, operator, other_admin, receiver):
    sub, _ = subscriptions.create(admin, {"url": receiver.url, "events": ["retry.finished"]})
    assert post(client_for(operator), "/api/webhooks", {"url": receiver.url}).status_code == 403
    assert client_for(operator).get(f"/api/webhooks/{sub.pk}").status_code == 403
    other = client_for(other_admin)
    path = f"/api/webhooks/{sub.pk}"
    assert other.get(path).status_code == 404
    assert patch(other, path, {"enabled": False}).status_code == 404
    assert post(other, f"{path}/rotate-secret", {}).status_code == 404
    assert other.get(f"{path}/deliveries").status_code == 404
    assert other.delete(path).status_code == 404
    assert other.get("/api/webhooks").json() == {"items": []}
    # Another tenant's events never reach this subscription.
    with transaction.atomic():
        events.emit_many(other_admin.tenant, "retry.finished", [{"kind": "job", "id": "1"}])
        events.emit_many(admin.tenant, "retry.finished", [{"kind": "job", "id": "2"}])
    fanout.fan_out.call([e for e in events.OutboxEvent.objects.values_list("pk", flat=True)])
    assert [(d.tenant_id, d.payload["data"]["id"]) for d in WebhookDelivery.objects.all()] == [
        (admin.tenant.pk, "2")
    ]


def test_filters_by_event_kind_and_name(allow_local, admin, tenant, receiver):
    make = subscriptions.create
    job_a = make(
        admin,
        {
            "url": receiver.url,
            "events": ["execution.failed"],
            "filter": {"kind": "job", "name": "a"},
        },
    )[0]
    jobs = make(
        admin, {"url": receiver.url, "events": ["execution.failed"], "filter": {"kind": "job"}}
    )[0]
    other = make(admin, {"url": receiver.url, "events": ["retry.finished"]})[0]
    with transaction.atomic():
        events.emit_many(
            tenant,
            "execution.failed",
            [
                {"kind": "job", "name": "a"},
                {"kind": "job", "name": "b"},
                {"kind": "run", "name": "a"},
            ],
        )
    fanout.fan_out.call(list(events.OutboxEvent.objects.values_list("pk", flat=True)))
    assert job_a.deliveries.count() == 1 and jobs.deliveries.count() == 2
    assert other.deliveries.count() == 0


def test_rotation_overlap_signs_with_both_and_slack_format(allow_local, admin, tenant, receiver):
    sub, old = subscriptions.create(
        admin, {"url": receiver.url, "events": ["execution.failed"], "format": "slack"}
    )
    _, new = subscriptions.rotate(admin, sub.pk)
    with transaction.atomic():
        events.emit_many(
            tenant,
            "execution.failed",
            [{"kind": "job", "id": "j1", "name": "nightly", "error": "boom"}],
        )
    fanout.fan_out.call(list(events.OutboxEvent.objects.values_list("pk", flat=True)))
    delivery.deliver.call(str(sub.pk))
    (got,) = receiver.received
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)
    text = got.json["text"]
    assert "nightly" in text and "boom" in text and "/executions/job/j1/" in text
    assert payloads.TITLES["execution.failed"] in text
