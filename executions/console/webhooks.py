"""The console's webhooks page (tenant admins): subscribe an endpoint (its secret shown once),
see each one's delivery log, rotate its secret, pause or resume it, remove it; a subscription
disabled by a 410 or a day of failures says so here."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import kinds
from ..errors import InvalidInput
from ..models import WebhookSubscription
from ..webhooks import EVENT_TYPES, subscriptions
from .context import console_view

PERMISSION = subscriptions.PERMISSION


def _body(post) -> dict:
    body = {
        "url": post.get("url", ""),
        "events": post.getlist("events"),
        "format": post.get("format") or "standard",
        "filter": {"kind": post.get("kind", ""), "name": post.get("name", "")},
    }
    if post.get("description"):
        body["description"] = post["description"]
    return body


@console_view(PERMISSION)
def webhooks(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            _, secret = subscriptions.create(request.actor, _body(request.POST))
        except InvalidInput as exc:
            error = exc
        else:
            request.session["redrive_new_webhook_secret"] = secret  # shown once, after redirect
            return redirect("webhooks")
    subs = list(WebhookSubscription.objects.filter(tenant=request.tenant).order_by("created_at"))
    for sub in subs:
        sub.log = list(sub.attempts.select_related("delivery").order_by("-id")[:10])
    return render(
        request,
        "console/webhooks.html",
        {
            "title": "Webhooks",
            "subs": subs,
            "disabled": [s for s in subs if not s.enabled and s.disabled_reason],
            "event_types": EVENT_TYPES,
            "kinds": kinds.names(),
            "formats": WebhookSubscription.Format.values,
            "error": error,
            "posted": request.POST if error else None,
            "new_secret": request.session.pop("redrive_new_webhook_secret", None),
        },
        status=400 if error else 200,
    )


@require_POST
@console_view(PERMISSION)
def webhook_action(request: HttpRequest, sub_id, action: str) -> HttpResponse:
    if action == "rotate":
        _, secret = subscriptions.rotate(request.actor, sub_id)
        request.session["redrive_new_webhook_secret"] = secret
        messages.success(request, "New secret: the old one keeps signing beside it for a day")
    elif action == "delete":
        subscriptions.delete(request.actor, sub_id)
        messages.success(request, "Webhook removed")
    else:  # pause / resume
        subscriptions.update(request.actor, sub_id, {"enabled": action == "resume"})
        messages.success(request, "Webhook resumed" if action == "resume" else "Webhook paused")
    return redirect("webhooks")
