"""`POST /api/auth/token`: username + password (+ tenant, for users in several) -> a JWT."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import tokens
from executions.errors import InvalidInput
from executions.models import Membership

from ..base import ApiView
from ..docs import errors
from ..errors import Unauthorized
from ..serializers import redrive as rd
from ..throttling import TokenThrottle


class TokenApi(ApiView):
    authenticated = False
    throttle_classes = [TokenThrottle]

    @extend_schema(
        operation_id="createToken",
        summary="Get a JWT for a user",
        description="The token carries the user and the tenant; permissions come from the "
        "user's role in that tenant at each request. HS256, `exp` required.",
        tags=["auth"],
        auth=[],
        request=rd.TokenRequestSerializer,
        responses={200: rd.TokenSerializer, **errors("redrive", 400, 401, 413, 415, 429)},
    )
    def post(self, request: Request):
        body = rd.TokenRequestSerializer.check(request.data)
        username, password, slug = body["username"], body["password"], body.get("tenant")
        # With the Django request, so that django-axes counts a failure toward the lockout (its
        # middleware then answers a locked-out caller with a 429, executions.lockout).
        user = authenticate(request._request, username=username, password=password)
        if user is None:
            raise Unauthorized("Invalid username or password.")
        memberships = Membership.objects.select_related("tenant").filter(user=user)
        if slug:
            memberships = memberships.filter(tenant__slug=slug)
        memberships = list(memberships.order_by("pk")[:2])
        if not memberships:
            raise Unauthorized("Invalid username, password or tenant.")
        if len(memberships) > 1 and not slug:
            raise InvalidInput("You belong to several tenants: name one", field="tenant")
        tenant = memberships[0].tenant
        return Response(
            {
                "token": tokens.issue(user, tenant),
                "tokenType": "Bearer",
                "expiresIn": settings.JWT_LIFETIME_SECONDS,
                "tenant": tenant.slug,
            }
        )
