"""Who is asking (Actor), and the one way code looks up an object by a user-supplied id.

Missing and other-tenant objects raise the same NotFound, so ids of other tenants are never
revealed. Permission checks name the permission the caller lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet

from . import permissions as roles
from .errors import NotFound, PermissionDenied
from .models import ApiKey, Membership, Tenant

# Where the console keeps the tenant chosen with its switcher; the API's session auth reads it too.
SESSION_TENANT = "redrive_tenant_id"


def current_membership(user, session) -> tuple[list[Membership], Membership | None]:
    """A signed-in user's memberships (tenant attached, by tenant name) and the one they act in:
    the tenant chosen in the session, else the first. The console and the API both ask this."""
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("tenant")
        .order_by("tenant__name", "tenant__slug")
    )
    wanted = session.get(SESSION_TENANT) if session is not None else None
    current = next(
        (m for m in memberships if str(m.tenant_id) == wanted),
        memberships[0] if memberships else None,
    )
    return memberships, current


@dataclass(frozen=True)
class Actor:
    """The caller of a domain function: tenant, user or API key, permissions, and where from."""

    tenant: Tenant
    permissions: frozenset[str]
    source: str  # api | console | admin | cli
    user: object | None = None
    api_key: ApiKey | None = None
    request_id: str = ""
    ip: str | None = None
    # For seed 003: who retried tasks run as (the nonce's session identity).
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"key:{self.api_key.prefix}"
        if self.user is not None and not isinstance(self.user, AnonymousUser):
            return f"user:{self.user.get_username()}"
        return f"{self.source}:system"

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise PermissionDenied(permission)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @classmethod
    def for_user(cls, user, tenant: Tenant, *, source: str, **kwargs) -> Actor:
        membership = Membership.objects.filter(user=user, tenant=tenant).first()
        if membership is None:
            raise NotFound("Tenant not found")
        return cls(
            tenant=tenant,
            permissions=roles.of_role(membership.role),
            source=source,
            user=user,
            **kwargs,
        )

    @classmethod
    def for_api_key(cls, key: ApiKey, *, source: str = "api", **kwargs) -> Actor:
        return cls(
            tenant=key.tenant,
            permissions=roles.of_key(key),
            source=source,
            user=key.user,
            api_key=key,
            **kwargs,
        )


def scoped(model_or_qs: type[Model] | QuerySet, tenant: Tenant) -> QuerySet:
    qs = model_or_qs if isinstance(model_or_qs, QuerySet) else model_or_qs.objects.all()
    return qs.filter(tenant=tenant)


def get_for_tenant(
    model_or_qs: type[Model] | QuerySet, tenant: Tenant, message: str = "", **lookup
):
    """The tenant-scoped accessor: the object, or NotFound (missing and foreign alike)."""
    qs = scoped(model_or_qs, tenant)
    if any(isinstance(value, str) and "\x00" in value for value in lookup.values()):
        # No id holds a NUL, and PostgreSQL refuses one in a query (a DataError, not a miss).
        raise NotFound(message or f"{qs.model._meta.verbose_name.capitalize()} not found")
    try:
        return qs.get(**lookup)
    except (qs.model.DoesNotExist, ValidationError, ValueError):
        raise NotFound(message or f"{qs.model._meta.verbose_name.capitalize()} not found") from None
