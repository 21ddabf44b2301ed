"""Redrive's own routes outside the seeds: the JWT token (its request validated here), health."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .common import Input, Param, invalid

# A Tenant.slug (and no NUL, which PostgreSQL refuses).
_SLUG = re.compile(r"[-a-zA-Z0-9_]{0,100}")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    tokenType = serializers.CharField()
    expiresIn = serializers.IntegerField()
    tenant = serializers.CharField()


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()
    database = serializers.CharField(required=False)


@extend_schema_field(OpenApiTypes.STR)
class CredentialParam(Param):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=True, empty_ok=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or not data or len(data) > 256:
            raise invalid(f"{self.path} is required")
        if "\x00" in data:
            # No user can have one (Django's forms refuse it), and PostgreSQL cannot store it.
            raise invalid(f"{self.path} must not contain NUL characters")
        return data


@extend_schema_field(OpenApiTypes.STR)
class SlugParam(Param):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or not _SLUG.fullmatch(data):
            raise invalid(f"{self.path} must be a tenant slug")
        return data


class TokenRequestSerializer(Input):
    body_required = True

    username = CredentialParam()
    password = CredentialParam()
    tenant = SlugParam(help_text="Tenant slug, when in several.")
