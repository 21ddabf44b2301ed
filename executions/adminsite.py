"""The Django admin's site. Superusers see everything; the admins of a tenant (Membership role
"admin") may open it too, without being staff, and see only their tenants' rows (executions.admin
scopes every ModelAdmin with `admin_tenant_ids`). Other users, staff or not, are kept out."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from .models import Membership, Role

_CACHE_ATTR = "redrive_admin_tenant_ids"


def admin_tenant_ids(request: HttpRequest) -> frozenset | None:
    """None for a superuser (every tenant), else the ids of the tenants the user is admin of
    (asked once per request: the index page checks every model)."""
    user = request.user
    if user.is_superuser:
        return None
    if not hasattr(request, _CACHE_ATTR):
        ids = (
            frozenset(
                Membership.objects.filter(user=user, role=Role.ADMIN).values_list(
                    "tenant_id", flat=True
                )
            )
            if user.is_authenticated and user.is_active
            else frozenset()
        )
        setattr(request, _CACHE_ATTR, ids)
    return getattr(request, _CACHE_ATTR)


def may_open_admin(user) -> bool:
    return bool(
        user.is_active
        and (
            user.is_superuser
            or (
                user.is_authenticated
                and Membership.objects.filter(user=user, role=Role.ADMIN).exists()
            )
        )
    )


class TenantAdminAuthenticationForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user) -> None:
        # AuthenticationForm's check (active), not AdminAuthenticationForm's (staff).
        AuthenticationForm.confirm_login_allowed(self, user)
        if not may_open_admin(user):
            raise ValidationError(
                "Please enter the correct username and password of a tenant admin. "
                "Note that both fields may be case-sensitive.",
                code="invalid_login",
            )


class RedriveAdminSite(admin.AdminSite):
    login_form = TenantAdminAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and (user.is_superuser or admin_tenant_ids(request)))
