"""Sign-in lockout (django-axes, configured in project/settings.py): what a locked-out client is
told, on the console's login page, /admin/login/ and POST /api/auth/token, and the audit row each
lockout leaves.

Axes counts the failures of every `django.contrib.auth.authenticate()` call that has a request,
whichever of the three asked; its middleware then hands a locked-out request to `lockout_response`
(AXES_LOCKOUT_CALLABLE) instead of the view's answer.
"""

from __future__ import annotations

import math

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.forms import AuthenticationForm
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from .models import AuditEvent, Membership

LOCKED = 429


def lockout_minutes() -> int:
    return math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)


def lockout_message() -> str:
    minutes = lockout_minutes()
    return f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}."


def _is_admin(request: HttpRequest) -> bool:
    return request.path.startswith(reverse("admin:index"))


def _api_seed(request: HttpRequest) -> str | None:
    from project.urls import api_seed

    return api_seed(request.path_info)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """A 429 with Retry-After: JSON in the endpoint's error shape for the API, else the sign-in
    page again, with the message (the form stays usable for after the wait)."""
    message = lockout_message()
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    username = (credentials or {}).get("username") or ""
    seed = _api_seed(request)
    if seed is not None:
        from .api.errors import error_body

        body = error_body(seed, LOCKED, message, request_id=getattr(request, "request_id", ""))
        response: HttpResponse = JsonResponse(body, status=LOCKED)
    elif _is_admin(request):
        site = admin.site
        messages.error(request, message)
        form = (site.login_form or AuthenticationForm)(request, initial={"username": username})
        context = {
            **site.each_context(request),
            "title": "Log in",
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": username,
            "form": form,
            "next": request.POST.get("next", ""),
        }
        response = render(
            request, site.login_template or "admin/login.html", context, status=LOCKED
        )
    else:
        form = AuthenticationForm(request, initial={"username": username})
        context = {"form": form, "lockout_message": message, "next": request.POST.get("next", "")}
        response = render(request, "registration/login.html", context, status=LOCKED)
    response["Retry-After"] = retry_after
    return response


@receiver(user_locked_out)
def audit_lockout(sender, request: HttpRequest, username: str | None, ip_address, **kwargs) -> None:
    """One AuditEvent per tenant the username belongs to (its admins see it on /audit/), or one
    without a tenant (superusers see it in the admin) for a name that is no member of any.

    Axes sends the signal again for every attempt refused while locked out; the attempt that set
    the lock is the one whose failure axes counted (axes_failures_since_start is then a number)."""
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    username = (username or "")[:150]
    source = (
        AuditEvent.Source.API
        if _api_seed(request) is not None
        else AuditEvent.Source.ADMIN
        if _is_admin(request)
        else AuditEvent.Source.CONSOLE
    )
    tenant_ids = (
        list(Membership.objects.filter(user__username=username).values_list("tenant_id", flat=True))
        if username
        else []
    )
    details = {
        "username": username,
        "path": request.path[:200],
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "lockout_minutes": lockout_minutes(),
    }
    AuditEvent.objects.bulk_create(
        AuditEvent(
            tenant_id=tenant_id,
            actor="anonymous",
            source=source,
            action="login_locked",
            kind="user",
            target_id=username[:64],
            status_after="locked",
            request_id=getattr(request, "request_id", ""),
            ip=ip_address or None,
            details=details,
        )
        for tenant_id in (tenant_ids or [None])
    )
