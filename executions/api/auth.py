"""Who is calling: an API key (`X-API-Key: <key>` or `Authorization: Api-Key <key>`), a JWT
(`Authorization: Bearer <token>`), or the console's session. Each gives an executions.tenancy.Actor.

The key and JWT authenticators come before session auth in settings: DRF answers 401 (with
WWW-Authenticate) only when the first authenticator names a scheme, otherwise it would say 403.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from executions import tokens
from executions.client_ip import client_ip
from executions.models import ApiKey, Membership, Tenant
from executions.tenancy import Actor, current_membership

# Writing last_used_at on every request would turn every read into a write; once a minute is
# precise enough to tell a live key from a dead one.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenAuth:
    """request.auth for a JWT caller: the verified claims and the tenant they act in."""

    claims: dict
    tenant: Tenant


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Api-Key"

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'

    def _raw_key(self, request: Request) -> str | None:
        header = request.META.get("HTTP_X_API_KEY")
        if header is not None:
            return header.strip()
        parts = get_authorization_header(request).split()
        if parts and parts[0].lower() == self.keyword.lower().encode():
            if len(parts) != 2:
                raise exceptions.AuthenticationFailed("Invalid Api-Key header.")
            try:
                return parts[1].decode()
            except UnicodeDecodeError:
                raise exceptions.AuthenticationFailed("Invalid API key.") from None
        return None

    def authenticate(self, request: Request):
        raw = self._raw_key(request)
        if raw is None:
            return None
        key = self._lookup(raw)
        self._touch(key)
        return (key.user, key)

    @staticmethod
    def _lookup(raw: str) -> ApiKey:
        prefix, dot, _ = raw.partition(".")
        if not raw or not dot or len(raw) > 200:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        # Prefix lookup, then one SHA-512 comparison (the manager's get_from_key, with the tenant
        # and user joined so building the Actor costs no further query).
        key = ApiKey.objects.usable_with_owner(prefix)
        if key is None or not key.is_valid(raw):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.has_expired:
            raise exceptions.AuthenticationFailed("API key has expired.")
        if key.user_id is not None:
            # A key made for a user works only while it could be that user's own request.
            if key.user is None or not key.user.is_active:
                raise exceptions.AuthenticationFailed("The user of this API key is inactive.")
            if key.owner_membership_role() is None:
                raise exceptions.AuthenticationFailed(
                    "The user of this API key is no longer a member of its tenant."
                )
        return key

    @staticmethod
    def _touch(key: ApiKey) -> None:
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
            ApiKey.objects.filter(pk=key.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
            ).update(last_used_at=now)
            key.last_used_at = now


class JWTAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'

    def authenticate(self, request: Request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Bearer header.")
        try:
            claims = tokens.decode(parts[1].decode())
        except jwt.ExpiredSignatureError:
            raise exceptions.AuthenticationFailed("Token has expired.") from None
        except (jwt.InvalidTokenError, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        # Signed claims can still be anything a key holder wrote: check their shape before
        # they reach a query (a non-UUID tenant would fail in the database).
        sub, tenant_id = claims.get("sub"), claims.get("tenant")
        if not (isinstance(sub, str | int) and str(sub).isdigit()) or not _is_uuid(tenant_id):
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = (
            get_user_model()
            .objects.filter(pk=int(sub), is_active=True)
            .only("pk", "username", "is_active")
            .first()
        )
        membership = (
            Membership.objects.select_related("tenant")
            .filter(user=user, tenant_id=tenant_id)
            .first()
            if user is not None
            else None
        )
        if membership is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return (user, TokenAuth(claims=claims, tenant=membership.tenant))


class IsAuthenticatedCaller(BasePermission):
    """A key without a user is authenticated too (request.user is then None)."""

    message = "Authentication required."

    def has_permission(self, request: Request, view) -> bool:
        if request.auth is not None:
            return True
        user = request.user
        return bool(user is not None and user.is_authenticated)


def session_tenant(request: Request, user) -> Tenant | None:
    """The tenant a console session acts in: the one chosen in the console (the same rule as the
    console's pages, executions.tenancy.current_membership)."""
    _, current = current_membership(user, getattr(request, "session", None))
    return current.tenant if current is not None else None


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def actor_for(request: Request) -> Actor:
    """The Actor of an authenticated request (API source: key, token or session alike)."""
    request_id = getattr(request, "request_id", "")
    ip = client_ip(request)
    if isinstance(request.auth, ApiKey):
        return Actor.for_api_key(request.auth, source="api", request_id=request_id, ip=ip)
    if isinstance(request.auth, TokenAuth):
        return Actor.for_user(
            request.user, request.auth.tenant, source="api", request_id=request_id, ip=ip
        )
    tenant = session_tenant(request, request.user)
    if tenant is None:
        raise exceptions.PermissionDenied("You are not a member of any tenant.")
    return Actor.for_user(request.user, tenant, source="api", request_id=request_id, ip=ip)
