"""What a webhook delivery shows in the inbox and on its detail page: the request, the response
status and body excerpt, and every attempt (kinds/shown.py)."""

from __future__ import annotations

from django.urls import reverse

from ..shown import Shown


class DeliveryShown(Shown):
    short = "Delivery"
    row_fields = ("id", "updated_at", "url", "event_type", "attempt", "subscription")
    row_related = ("subscription",)
    detail_related = ("subscription",)
    started_field, finished_field = "created_at", "updated_at"
    input_label, output_label = "Payload", "Response (excerpt)"
    input_field = "payload"
    output_field = "response_excerpt"
    retried_text = "Retry queued: the delivery is {outcome.obj.status}"

    def attempts(self, obj) -> int:
        return obj.attempt

    def error(self, obj) -> str:
        return obj.error_message or ""

    def extras(self, obj):
        return {
            "attempts": list(obj.attempts.order_by("-id")[:50]),
            "subscription": obj.subscription,
        }

    def api_urls(self, tenant, obj) -> tuple[str, str]:
        # Its subscription's delivery log, and the API's retry of any kind.
        return (
            reverse("api-webhook-deliveries", args=[obj.subscription_id]),
            reverse("api-failures-retry"),
        )
