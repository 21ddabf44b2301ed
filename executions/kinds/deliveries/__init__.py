"""Webhook deliveries (issue 21), the sixth kind: a delivery whose attempt failed is a failure
like any other, in the inbox with its request, response status and body excerpt, retried one at a
time or in bulk. The sending itself is executions/webhooks/."""

from __future__ import annotations

from ...models import WebhookDelivery
from ..base import KindSpec
from . import retry, run, shown

NAME = "delivery"

KIND = KindSpec(
    name=NAME,
    label="Webhook delivery",
    model=WebhookDelivery,
    failed_statuses=("failed", "dead"),
    retryable_statuses=retry.RETRYABLE,
    in_flight=WebhookDelivery.IN_FLIGHT,
    success_statuses=("delivered",),
    time_field="updated_at",
    name_field="url",
    name_label="endpoint",
    count_source="url",
    permission="deliveries:retry",
    read_permission="deliveries:read",
    not_found="Delivery not found",
    rule=retry.RULE,
    shown=shown.DeliveryShown(),
    reap=run.reap,
    # "dead": the retries ran out (or the endpoint is gone): a failure like any other.
    status_words={
        "pending": "queued",
        "delivered": "succeeded",
        "failed": "failed",
        "dead": "failed",
    },
)
