"""What every API view shares: its seed (which error shape it answers in), authentication, the
Actor, gzip-aware JSON parsing, path-parameter validation and the Idempotency-Key.

Views stay thin: validate -> call executions.services -> serialize.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from executions import idempotency
from executions.errors import InvalidInput
from executions.idempotency import Claim
from executions.selectors.cursor import keyset_page
from executions.tenancy import Actor

from .auth import ApiKeyAuthentication, IsAuthenticatedCaller, JWTAuthentication, actor_for
from .errors import exception_handler
from .parsers import GzipJSONParser

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_INDEX = re.compile(r"^[0-9]{1,9}$")


class ApiView(APIView):
    """Base of every Redrive API view. `seed` picks the error shape (see errors.py)."""

    seed = "redrive"
    parser_classes = [GzipJSONParser]
    renderer_classes = [JSONRenderer]

    # False for the few routes anyone may call (health, token).
    authenticated = True

    def get_authenticators(self):
        if not self.authenticated:
            return []
        # Key and JWT first (401 with WWW-Authenticate), the console's session last.
        return [ApiKeyAuthentication(), JWTAuthentication(), SessionAuthentication()]

    def get_permissions(self):
        return [IsAuthenticatedCaller()] if self.authenticated else []

    def get_exception_handler(self):
        return exception_handler

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        # Between the permission check and the throttles, so throttles can key on the caller.
        if self.authenticated:
            self.actor: Actor = actor_for(request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH"):
            # Parse now, so a corrupt, oversize or non-JSON body is a clear 400/413/415 on every
            # route, not only on those that read a field from it.
            request.data  # noqa: B018

    # --- helpers the views use ------------------------------------------------------------

    def idempotent(
        self, request: Request, perform: Callable[[Claim | None], tuple[int, dict]]
    ) -> Response:
        """Run `perform(claim)` -> (status, body) once per Idempotency-Key of this caller in this
        tenant (executions/idempotency.py): the same request again answers the first response
        again (`Idempotent-Replayed: true`), another request with the key is a 422, and the same
        one while the first is still running a 409. Errors are not kept: the key may be used
        again."""
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            status_code, body = perform(None)
            return Response(body, status=status_code)
        scope = f"{request.method} {request.get_full_path()}"
        fingerprint = idempotency.fingerprint(scope, request.data)
        claim = idempotency.begin(self.actor, key, scope, fingerprint)
        if claim.response is not None:
            status_code, body = claim.response
            return Response(body, status=status_code, headers={"Idempotent-Replayed": "true"})
        try:
            status_code, body = perform(claim)
            # Through JSON, so that a replay is byte for byte what this call answers.
            body = json.loads(JSONRenderer().render(body))
        except BaseException:
            idempotency.release(claim)
            raise
        idempotency.complete(claim, status_code, body)
        # With an outcome, perform() answered the retry of a request with this key that died.
        replayed = {"Idempotent-Replayed": "true"} if claim.outcome is not None else None
        return Response(body, status=status_code, headers=replayed)


# --- path and query validation: before any lookup -------------------------------------------


def valid_uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(f"{field} must be a valid UUID", field=field) from None


def valid_object_id(value: str, field: str) -> str:
    if not _OBJECT_ID.match(value or ""):
        raise InvalidInput(f"{field} must be a 24-character hexadecimal id", field=field)
    return value.lower()


def valid_id(value: str, field: str) -> str:
    if not _SAFE_ID.match(value or ""):
        raise InvalidInput(f"{field} must be 1 to 64 letters, digits, '_' or '-'", field=field)
    return value


def valid_index(value: str, field: str = "executionIndex") -> int:
    if not _INDEX.match(value or ""):
        raise InvalidInput(f"{field} must be a non-negative integer", field=field)
    return int(value)


def query_int(
    params, field: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """For GET /api/failures, which the read-side rewrite moves onto the console's selectors;
    the seed lists read their query through serializers (serializers.common.ListQuery)."""
    raw = params.get(field)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,12}", str(raw)):
        raise InvalidInput(f"{field} must be an integer", field=field)
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidInput(f"{field} must be {bounds}", field=field)
    return value


# --- keyset pagination ----------------------------------------------------------------------


def query_page(query, qs: QuerySet, kind: str, time_field: str) -> tuple[list, str | None]:
    """A seed list's page: `query` (a validated serializers.common.ListQuery) filters `qs` (rows
    of `kind`), then one keyset page of its `limit` after its `cursor`, newest first by
    `time_field` (selectors.cursor)."""
    data = query.validated_data
    return keyset_page(query.apply(qs), kind, time_field, data["limit"], data.get("cursor"))
