"""Webhooks (issue 21): tenant admins subscribe endpoints to Redrive's events.

POST   /api/webhooks                       {"url", "events", "filter": {"kind", "name"}, "format"}
                                           -> 201, with the secret (`whsec_...`): only here
GET    /api/webhooks                       the tenant's subscriptions (secrets masked)
GET/PATCH/DELETE /api/webhooks/{id}
POST   /api/webhooks/{id}/rotate-secret    -> the new secret (the old one signs beside it a day)
GET    /api/webhooks/{id}/deliveries       the delivery log: each delivery with every attempt
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions.models import WebhookSubscription
from executions.webhooks import subscriptions

from ..base import ApiView, query_int, valid_uuid
from ..docs import errors

TAG = ["webhooks (Redrive)"]


def shown(sub: WebhookSubscription, secret: str | None = None) -> dict:
    out = {
        "id": str(sub.pk),
        "url": sub.url,
        "events": sub.events,
        "filter": {"kind": sub.filter_kind or None, "name": sub.filter_name or None},
        "format": sub.format,
        "description": sub.description,
        "enabled": sub.enabled,
        "disabledReason": sub.disabled_reason or None,
        "disabledAt": sub.disabled_at,
        "failingSince": sub.failing_since,
        "secret": secret if secret is not None else sub.masked_secret,
        "createdAt": sub.created_at,
    }
    if sub.previous_secret_until:
        out["previousSecretUntil"] = sub.previous_secret_until
    return out


def _attempt(a) -> dict:
    return {
        "number": a.number,
        "at": a.at,
        "ok": a.ok,
        "durationMs": a.duration_ms,
        "request": a.request,
        "responseStatus": a.response_status,
        "responseExcerpt": a.response_excerpt,
        "error": a.error or None,
    }


class WebhookListApi(ApiView):
    @extend_schema(
        operation_id="listWebhooks",
        summary="The tenant's webhook subscriptions",
        tags=TAG,
        responses={200: OpenApiTypes.OBJECT, **errors("redrive", 401, 403)},
    )
    def get(self, request: Request):
        self.actor.require(subscriptions.PERMISSION)
        subs = WebhookSubscription.objects.filter(tenant=self.actor.tenant).order_by("created_at")
        return Response({"items": [shown(s) for s in subs]})

    @extend_schema(
        operation_id="createWebhook",
        summary="Subscribe an endpoint to events",
        description="The answer holds the signing secret (whsec_...): it is not shown again.",
        tags=TAG,
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, **errors("redrive", 400, 401, 403, 413, 415)},
    )
    def post(self, request: Request):
        sub, secret = subscriptions.create(self.actor, request.data)
        return Response(shown(sub, secret), status=201)


class WebhookApi(ApiView):
    @extend_schema(
        operation_id="getWebhook",
        summary="A webhook subscription",
        tags=TAG,
        responses={200: OpenApiTypes.OBJECT, **errors("redrive", 400, 401, 403, 404)},
    )
    def get(self, request: Request, id: str):
        return Response(shown(subscriptions.get(self.actor, valid_uuid(id, "id"))))

    @extend_schema(
        operation_id="updateWebhook",
        summary="Change a webhook subscription (enabled: true resumes a disabled one)",
        tags=TAG,
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **errors("redrive", 400, 401, 403, 404, 413, 415)},
    )
    def patch(self, request: Request, id: str):
        sub = subscriptions.update(self.actor, valid_uuid(id, "id"), request.data)
        return Response(shown(sub))

    @extend_schema(
        operation_id="deleteWebhook",
        summary="Remove a webhook subscription (and its delivery log)",
        tags=TAG,
        responses={204: None, **errors("redrive", 400, 401, 403, 404)},
    )
    def delete(self, request: Request, id: str):
        subscriptions.delete(self.actor, valid_uuid(id, "id"))
        return Response(status=204)


class WebhookRotateApi(ApiView):
    @extend_schema(
        operation_id="rotateWebhookSecret",
        summary="A new signing secret; the old one keeps signing beside it for a day",
        tags=TAG,
        request=None,
        responses={200: OpenApiTypes.OBJECT, **errors("redrive", 400, 401, 403, 404)},
    )
    def post(self, request: Request, id: str):
        sub, secret = subscriptions.rotate(self.actor, valid_uuid(id, "id"))
        return Response(shown(sub, secret))


class WebhookDeliveriesApi(ApiView):
    @extend_schema(
        operation_id="listWebhookDeliveries",
        summary="The delivery log: deliveries, newest first, each with every attempt",
        tags=TAG,
        parameters=[
            OpenApiParameter("limit", int, description="1-200, default 50"),
            OpenApiParameter("before", int, description="deliveries older than this id"),
        ],
        responses={200: OpenApiTypes.OBJECT, **errors("redrive", 400, 401, 403, 404)},
    )
    def get(self, request: Request, id: str):
        sub = subscriptions.get(self.actor, valid_uuid(id, "id"))
        limit = query_int(request.query_params, "limit", 50, minimum=1, maximum=200)
        before = query_int(request.query_params, "before", 0, minimum=0, maximum=2**62)
        qs = sub.deliveries.order_by("-id")
        if before:
            qs = qs.filter(id__lt=before)
        deliveries = list(qs[:limit])
        attempts: dict[int, list] = {}
        for a in sub.attempts.filter(delivery__in=deliveries).order_by("number", "id"):
            attempts.setdefault(a.delivery_id, []).append(_attempt(a))
        items = [
            {
                "id": d.pk,
                "webhookId": d.message_id,
                "type": d.event_type,
                "status": d.status,
                "attempts": attempts.get(d.pk, []),
                "nextAttemptAt": d.next_attempt_at,
                "deliveredAt": d.delivered_at,
                "error": d.error_message,
                "createdAt": d.created_at,
            }
            for d in deliveries
        ]
        more = len(deliveries) == limit
        return Response({"items": items, "nextBefore": deliveries[-1].pk if more else None})
