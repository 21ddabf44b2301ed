"""OpenAPI helpers: each seed's error shape as a schema, and the responses a view documents."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers

from .errors import error_body

IDEMPOTENCY_KEY = OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)
# What a retry can answer besides 200: bad input, auth, missing, state or key in flight (409),
# media type, key reused (422); BODY_RETRY adds 413 for the retries that read a body.
RETRY = (400, 401, 403, 404, 409, 415, 422)
BODY_RETRY = (*RETRY, 413)
KEY_IN_FLIGHT = "A request with the same Idempotency-Key is still in progress."
_MESSAGES = {
    400: "Invalid request: the message names the field.",
    401: "Authentication required or invalid credentials.",
    403: "Access denied or insufficient permissions.",
    404: "Not found (missing, or in another tenant).",
    405: "Method not allowed.",
    409: "The item's state does not allow this, or a request with the same Idempotency-Key is "
    "still in progress.",
    413: "Request body too large.",
    415: "Unsupported media type or content encoding.",
    422: "The Idempotency-Key was already used for a different request.",
    429: "Rate limit exceeded (see Retry-After).",
    500: "Unexpected server fault; the message carries the request id.",
    503: "A dependency is unavailable.",
}


def _error_serializer(seed: str):
    if seed == "000":
        fields = {"success": serializers.BooleanField(), "error": serializers.CharField()}
    elif seed == "001":
        fields = {
            "error": inline_serializer(
                "Seed001ErrorDetail",
                {"code": serializers.CharField(), "message": serializers.CharField()},
            )
        }
    elif seed == "002":
        fields = {
            "error": serializers.CharField(),
            "details": serializers.CharField(),
            "code": serializers.IntegerField(),
        }
    elif seed == "003":
        fields = {
            "error": inline_serializer(
                "Seed003ErrorDetail",
                {"code": serializers.IntegerField(), "message": serializers.CharField()},
            )
        }
    elif seed == "004":
        fields = {
            "code": serializers.IntegerField(),
            "message": serializers.CharField(),
            "requestId": serializers.CharField(),
        }
    else:
        fields = {
            "error": inline_serializer(
                "RedriveErrorDetail",
                {
                    "code": serializers.CharField(),
                    "message": serializers.CharField(),
                    "requestId": serializers.CharField(),
                    "field": serializers.CharField(required=False),
                },
            )
        }
    name = "RedriveError" if seed == "redrive" else f"Seed{seed}Error"
    return inline_serializer(name, fields)


_SERIALIZERS = {seed: _error_serializer(seed) for seed in ("000", "001", "002", "003", "004")}
_SERIALIZERS["redrive"] = _error_serializer("redrive")


def errors(seed: str, *codes: int, messages: dict[int, str] | None = None) -> dict:
    """`{code: OpenApiResponse}` for the error codes a view can answer (500 always)."""
    messages = messages or {}
    out = {}
    for code in (*codes, 500):
        message = messages.get(code, _MESSAGES.get(code, "Error"))
        out[code] = OpenApiResponse(
            _SERIALIZERS[seed],
            description=message,
            examples=[
                OpenApiExample(
                    f"{code}",
                    value=error_body(seed, code, message, request_id="3f2a9c0d1b6e4a57"),
                    response_only=True,
                    status_codes=[str(code)],
                )
            ],
        )
    return out


def retry_schema(seed: str, ok, *, path: list, status: int = 200, body=None, messages=None, **kw):
    """extend_schema for a retry route: its path parameters and the Idempotency-Key, its body
    (None: it reads none), its answer and the errors a retry can give (413 when it has a body)."""
    codes = BODY_RETRY if body is not None else RETRY
    return extend_schema(
        parameters=[*path, IDEMPOTENCY_KEY],
        request=body,
        responses={status: ok, **errors(seed, *codes, messages=messages)},
        **kw,
    )
