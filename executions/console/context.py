"""Who is using the console and in which tenant: the `console_view` decorator resolves the user's
memberships, the current tenant (kept in the session) and the domain Actor, and turns the domain's
NotFound / PermissionDenied into 404 / 403 pages."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from executions import permissions
from executions.client_ip import client_ip
from executions.errors import NotFound, PermissionDenied
from executions.tenancy import Actor, current_membership


def console_view(permission: str | None = None) -> Callable:
    """Sign-in required; sets request.tenant, request.membership, request.memberships and
    request.actor; `permission` (if given) must be held in the current tenant, else 403."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        @login_required
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            memberships, current = current_membership(request.user, request.session)
            if current is None:
                return render(request, "console/no_tenant.html", status=403)
            request.memberships = memberships
            request.membership = current
            request.tenant = current.tenant
            request.actor = Actor.for_user(
                request.user,
                current.tenant,
                source="console",
                request_id=getattr(request, "request_id", ""),
                ip=client_ip(request),
            )
            request.can_retry = any(request.actor.can(p) for p in permissions.retry())
            if permission and not request.actor.can(permission):
                raise DjangoPermissionDenied(f"Missing permission {permission}")
            try:
                return view(request, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.message) from None
            except PermissionDenied as exc:
                raise DjangoPermissionDenied(exc.message) from None

        return wrapper

    return decorate


def notices(request: HttpRequest) -> dict:
    """What an admin must be told on every page: the tenant's webhooks a 410 or a day of failures
    disabled (issue 21). Asked only by a page that shows it (base.html), once."""

    @functools.cache
    def disabled_webhooks() -> list[dict]:
        actor = getattr(request, "actor", None)
        if actor is None or not actor.can("webhooks:manage"):
            return []
        from executions.models import WebhookSubscription

        return list(
            WebhookSubscription.objects.filter(tenant=request.tenant, enabled=False)
            .exclude(disabled_reason="")
            .order_by("-disabled_at")
            .values("url", "disabled_reason", "disabled_at")
        )

    return {"disabled_webhooks": disabled_webhooks}
