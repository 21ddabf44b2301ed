"""A webhook a 410 or a day of failures disabled is told to its tenant's admins on every console
page; not to operators (who cannot fix it), nor to another tenant's admins."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from executions.models import WebhookSubscription
from executions.webhooks import subscriptions

pytestmark = pytest.mark.django_db


def page_for(actor) -> str:
    client = Client()
    client.force_login(actor.user)
    response = client.get("/groups/")
    assert response.status_code == 200
    return response.content.decode()


def test_only_the_tenants_admins_are_told(allow_local, admin, operator, other_admin, receiver):
    sub, _ = subscriptions.create(admin, {"url": receiver.url, "events": ["execution.failed"]})
    assert 'id="webhooks-disabled"' not in page_for(admin)  # enabled: nothing to say

    WebhookSubscription.objects.filter(pk=sub.pk).update(
        enabled=False,
        disabled_reason="the endpoint answered 410 Gone",
        disabled_at=timezone.now(),
    )

    told = page_for(admin)
    assert 'id="webhooks-disabled"' in told
    assert "the endpoint answered 410 Gone" in told and receiver.url in told
    assert 'id="webhooks-disabled"' not in page_for(operator)
    assert 'id="webhooks-disabled"' not in page_for(other_admin)


def test_a_subscription_paused_by_hand_is_not_an_alarm(allow_local, admin, receiver):
    sub, _ = subscriptions.create(admin, {"url": receiver.url, "events": ["execution.failed"]})
    WebhookSubscription.objects.filter(pk=sub.pk).update(enabled=False)
    assert 'id="webhooks-disabled"' not in page_for(admin)
