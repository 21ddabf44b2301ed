"""Tenants and who may act in them: roles, memberships, API keys and workflow sessions."""

from __future__ import annotations

import functools
import uuid

from django.conf import settings
from django.db import connections, models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from .. import sets
from .base import object_id


class Role(models.TextChoices):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    # Seed 000 addresses functions under a project (ObjectId); seed 003 under a CDF project name.
    functions_project_id = models.CharField(max_length=24, unique=True, default=object_id)
    workflows_project = models.SlugField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class ApiKeyManager(BaseAPIKeyManager):
    def usable_with_owner(self, prefix: str) -> ApiKey | None:
        """The usable key with this prefix, its tenant and user attached: what
        `get_usable_keys().select_related("tenant", "user").filter(prefix=prefix).first()` gives,
        from one statement written once from the models' metadata, because every API request
        runs it and building that queryset each time cost several times its CPU (bench/README).
        The statement also reads the user's role in the key's tenant now (`key.owner_role`, None
        for a key without a user or a user who is no longer a member)."""
        sql, loaders = _usable_key_statement(self.db)
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, [prefix])
            row = cursor.fetchone()
        if row is None:
            return None
        found, start = [], 0
        for loader in loaders:
            found.append(loader.load(row[start : start + len(loader.fields)]))
            start += len(loader.fields)
        key, key.tenant, key.user = found
        key.owner_role = row[start]
        return key


class ApiKey(AbstractAPIKey):
    """A server-to-server key: hashed with SHA-512 (high-entropy secret, so no slow KDF), looked up
    by its prefix, scoped to one tenant and a set of permissions.

    A key made for a user speaks for that user: it dies with them (CASCADE; SET_NULL would leave a
    user-less key with the key's full permissions), works only while they are active and members
    of the key's tenant, and never with more than their role there now (permissions.of_key).
    A key without a user stands for a script and has exactly its own permissions."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    permissions = models.JSONField(default=list)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"

    def owner_membership_role(self) -> str | None:
        """The user's role in the key's tenant now (read with the key by usable_with_owner)."""
        if not hasattr(self, "owner_role"):
            self.owner_role = (
                Membership.objects.filter(user_id=self.user_id, tenant_id=self.tenant_id)
                .values_list("role", flat=True)
                .first()
            )
        return self.owner_role


@functools.cache
def _usable_key_statement(alias: str) -> tuple[str, list[sets.Loader]]:
    """ApiKeyManager.usable_with_owner's statement on the database `alias`, and the loaders of
    its key, tenant and user columns, in the statement's order (then the user's role)."""
    from django.contrib.auth import get_user_model

    q = connections[alias].ops.quote_name
    user_model = get_user_model()
    loaders = [sets.loader(m, alias) for m in (ApiKey, Tenant, user_model)]
    key = ApiKey._meta

    def join(kind: str, model: type[models.Model], alias_: str, fk: str) -> str:
        table, pk = q(model._meta.db_table), q(model._meta.pk.column)
        return f"{kind} {table} {alias_} ON {alias_}.{pk} = k.{q(key.get_field(fk).column)}"

    columns = ", ".join(loader.columns(a) for loader, a in zip(loaders, "ktu", strict=True))
    member = Membership._meta
    membership = (
        f"LEFT JOIN {q(member.db_table)} m ON m.{q(member.get_field('user').column)} = "
        f"k.{q(key.get_field('user').column)} AND m.{q(member.get_field('tenant').column)} = "
        f"k.{q(key.get_field('tenant').column)}"
    )
    sql = (
        f"SELECT {columns}, m.{q(member.get_field('role').column)} "  # noqa: S608 (from metadata)
        f"FROM {q(key.db_table)} k "
        f"{join('JOIN', Tenant, 't', 'tenant')} {join('LEFT JOIN', user_model, 'u', 'user')} "
        f"{membership} "
        f"WHERE k.{q(key.get_field('prefix').column)} = %s "
        f"AND NOT k.{q(key.get_field('revoked').column)} ORDER BY k.{q(key.pk.column)} LIMIT 1"
    )
    return sql, loaders


class WorkflowSession(models.Model):
    """Seed 003's sessions: a nonce that authorises one retry, as the user who created it."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.CASCADE)
    type = models.CharField(max_length=32, default="TOKEN_EXCHANGE")
    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
