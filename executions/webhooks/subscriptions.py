"""Subscribing an endpoint, changing it, rotating its secret, removing it: the one place a
subscription changes (the API, the console and the admin call these). Tenant admins only
(`webhooks:manage`); every bad input is an InvalidInput naming its field, nothing changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from django.db import transaction
from django.utils import timezone

from .. import kinds
from ..errors import InvalidInput
from ..models import WebhookSubscription
from ..tenancy import Actor, get_for_tenant
from ..work import http
from . import EVENT_TYPES, signing

PERMISSION = "webhooks:manage"
# How long a rotated-out secret keeps signing beside the new one.
OVERLAP = timedelta(hours=24)
FIELDS = ("url", "events", "filter", "format", "description", "enabled")


def validate_url(raw: Any) -> str:
    """An https:// URL the allow-list permits (REDRIVE_HTTP_ALLOW: private addresses only when
    listed); plain http:// only to a host an entry names explicitly."""
    clean = http.validate({"url": raw})["url"]
    url = httpx.URL(clean)
    if url.scheme == "http" and not _named(url):
        raise InvalidInput(
            "url must be https:// (http:// only to a host REDRIVE_HTTP_ALLOW names)", field="url"
        )
    return clean


def _named(url: httpx.URL) -> bool:
    port = url.port or 80
    host = url.host.lower().rstrip(".")
    ips = http.literal_addresses(host)
    for rule in http.allow_list().rules:
        if rule.public or (rule.port is not None and rule.port != port):
            continue
        if rule.host is not None and rule.host == host:
            return True
        if rule.network is not None and any(ip in rule.network for ip in ips):
            return True
    return False


def validate(body: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    for name in body:
        if name not in FIELDS:
            raise InvalidInput(f"unknown field {name!r}", field=str(name)[:100])
    clean: dict[str, Any] = {}
    if "url" in body or not partial:
        clean["url"] = validate_url(body.get("url"))
    if "events" in body or not partial:
        events = body.get("events")
        if not isinstance(events, list) or not events:
            raise InvalidInput("events must be a non-empty list of event types", field="events")
        for i, event in enumerate(events):
            if event not in EVENT_TYPES:
                raise InvalidInput(
                    f"unknown event type {str(event)[:100]!r}; one of {', '.join(EVENT_TYPES)}",
                    field=f"events[{i}]",
                )
        clean["events"] = list(dict.fromkeys(events))
    if "filter" in body:
        flt = body["filter"] if body["filter"] is not None else {}
        if not isinstance(flt, dict):
            raise InvalidInput("filter must be an object {kind, name}", field="filter")
        for name in flt:
            if name not in ("kind", "name"):
                raise InvalidInput(f"unknown filter {str(name)[:100]!r}", field=f"filter.{name}")
        kind = flt.get("kind") or ""
        if kind and kind not in kinds.names():
            raise InvalidInput(f"kind must be one of {', '.join(kinds.names())}", "filter.kind")
        name = flt.get("name") or ""
        if not isinstance(name, str) or len(name) > 200:
            raise InvalidInput("name must be a string of at most 200 characters", "filter.name")
        clean["filter_kind"], clean["filter_name"] = kind, name
    if "format" in body:
        if body["format"] not in WebhookSubscription.Format.values:
            raise InvalidInput("format must be standard, slack or teams", field="format")
        clean["format"] = body["format"]
    if "description" in body:
        text = body["description"]
        if not isinstance(text, str) or len(text) > 200:
            raise InvalidInput("description must be at most 200 characters", "description")
        clean["description"] = text
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise InvalidInput("enabled must be true or false", field="enabled")
        if not partial:
            raise InvalidInput("a new subscription is enabled", field="enabled")
        clean["enabled"] = body["enabled"]
    return clean


def create(actor: Actor, body: Any) -> tuple[WebhookSubscription, str]:
    """The new subscription and its secret, which only this answer shows."""
    actor.require(PERMISSION)
    clean = validate(body, partial=False)
    sub = WebhookSubscription.objects.create(
        tenant=actor.tenant,
        created_by=actor.user if getattr(actor.user, "pk", None) else None,
        secret=signing.new_secret(),
        **clean,
    )
    return sub, sub.secret


def get(actor: Actor, sub_id: Any, *, lock: bool = False) -> WebhookSubscription:
    """The tenant's subscription (locked for an update with `lock`, inside a transaction)."""
    actor.require(PERMISSION)
    rows = WebhookSubscription.objects.select_for_update() if lock else WebhookSubscription
    return get_for_tenant(rows, actor.tenant, "Webhook not found", pk=sub_id)


def update(actor: Actor, sub_id: Any, body: Any) -> WebhookSubscription:
    actor.require(PERMISSION)
    clean = validate(body, partial=True)
    with transaction.atomic():
        sub = get(actor, sub_id, lock=True)
        resumed = clean.get("enabled") is True and not sub.enabled
        for name, value in clean.items():
            setattr(sub, name, value)
        if resumed:
            sub.disabled_reason, sub.disabled_at, sub.failing_since = "", None, None
        sub.updated_at = timezone.now()
        sub.save()
        if resumed:
            from .delivery import kick  # its deliveries waited while it was disabled

            kick(sub.pk)
    return sub


def delete(actor: Actor, sub_id: Any) -> None:
    get(actor, sub_id).delete()


def rotate(actor: Actor, sub_id: Any) -> tuple[WebhookSubscription, str]:
    """A new secret; the old one keeps signing beside it for OVERLAP."""
    actor.require(PERMISSION)
    with transaction.atomic():
        sub = get(actor, sub_id, lock=True)
        now = timezone.now()
        sub.previous_secret, sub.previous_secret_until = sub.secret, now + OVERLAP
        sub.secret = signing.new_secret()
        sub.updated_at = now
        sub.save()
    return sub, sub.secret


def signing_secrets(sub: WebhookSubscription, now) -> list[str]:
    keys = [sub.secret]
    if sub.previous_secret and sub.previous_secret_until and sub.previous_secret_until > now:
        keys.append(sub.previous_secret)
    return keys
