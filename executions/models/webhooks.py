"""Webhooks (issue 21): a tenant's subscriptions to Redrive's events, the deliveries the events fan
out to, and every attempt of each. A delivery is the sixth kind's item (executions/kinds/
deliveries/): once an attempt fails it is a failure in the inbox like any other."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .base import Failure, Leased, ignored_until_index
from .tenancy import Tenant


class WebhookSubscription(Leased):
    """An endpoint subscribed to event types. Its lease is held by the one worker delivering its
    events, one at a time and in order. `secret` signs (Standard Webhooks' `whsec_...`): shown
    once, when created or rotated; `previous_secret` keeps signing alongside until
    `previous_secret_until` (the rotation's overlap window)."""

    class Format(models.TextChoices):
        STANDARD = "standard"
        SLACK = "slack"
        TEAMS = "teams"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    filter_kind = models.CharField(max_length=32, blank=True, default="")
    filter_name = models.CharField(max_length=200, blank=True, default="")
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.STANDARD)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Since when every attempt failed (None: the last one succeeded); a day of that disables it.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "enabled"], name="webhook_sub_tenant")]

    def __str__(self) -> str:
        return self.url

    @property
    def masked_secret(self) -> str:
        return f"whsec_…{self.secret[-4:]}" if self.secret else ""


class WebhookDelivery(Failure):
    """One event for one subscription, sent until it is delivered (at least once). `message_id`
    is the `webhook-id` every attempt repeats, so a receiver dedupes by it."""

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its turn (or its worker)
        FAILED = "failed"  # its last attempt failed; retried at next_attempt_at
        DELIVERED = "delivered"
        DEAD = "dead"  # given up: its subscription was disabled (410, or a day of failures)

    IN_FLIGHT = ("pending",)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.BigIntegerField(null=True, blank=True)  # the OutboxEvent
    event_type = models.CharField(max_length=100)
    message_id = models.CharField(max_length=64, unique=True)
    payload = models.JSONField()  # {"type", "timestamp", "data"}
    url = models.CharField(max_length=2000)  # the endpoint when fanned out (the inbox's name)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveIntegerField(default=0)  # attempts made
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="")
    committed_at = models.DateTimeField(default=timezone.now)  # the event's commit (about)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The worker's next delivery of a subscription, in order.
            models.Index(
                fields=["subscription", "event_id", "id"],
                name="webhook_delivery_due",
                condition=Q(status__in=("pending", "failed")),
            ),
            models.Index(
                fields=["tenant", "updated_at"],
                name="webhook_delivery_failed",
                condition=Q(status__in=("failed", "dead")),
            ),
            ignored_until_index("webhook_delivery_ignored_until"),
        ]


class WebhookAttempt(models.Model):
    """One attempt of a delivery, whatever its outcome: the subscription's delivery log."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="attempts"
    )
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    request = models.JSONField(default=dict)  # method, url, headers, body excerpt
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    ok = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["subscription", "-id"], name="webhook_attempt_log")]
