"""One exception handler for the whole API: domain errors (executions.errors), DRF errors
(authentication, permissions, parsing, methods, media types, throttling) and unexpected faults are
all answered in the error shape of the seed whose route was hit (the view's `seed` attribute).

Shapes:
  000      {"success": false, "error": "<message>"}
  001      {"error": {"code": "<CODE>", "message": "..."}}
  002      {"error": "...", "details": "...", "code": <int>}
  003      {"error": {"code": <int>, "message": "..."}}
  004      {"code": <int>, "message": "...", "requestId": "..."}
  redrive  {"error": {"code": "<CODE>", "message": "...", "field": "...", "requestId": "..."}}

A 500 is logged with its traceback and the request id; the client gets the shape and the request
id only, never the traceback. A database that cannot be reached is a 503 in the same shape.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from executions.errors import InvalidInput, NotRetryable, RedriveError, StillRunning
from executions.middleware import current_request_id

log = logging.getLogger("redrive.api")

# The code of a validation error whose message is Redrive's own and names its field already
# (api/serializers/common.py); DRF's own messages ("This field is required.") get the path added.
OWN = "redrive"

SEEDS = ("000", "001", "002", "003", "004", "redrive")

# Where the seeds disagree on the code of a state error ("this item cannot be retried now").
NOT_RETRYABLE_STATUS = {"000": 400, "001": 400, "002": 400, "003": 409, "004": 409, "redrive": 409}

CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"


class Unauthorized(exceptions.APIException):
    """A 401 from a view without authenticators (DRF would turn AuthenticationFailed into 403)."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "Invalid credentials."
    default_code = "unauthorized"


def _flatten(detail: Any) -> str:
    """DRF error details (str, list or dict of them) as one readable line naming the fields."""
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            text = _flatten(value)
            parts.append(text if key == "non_field_errors" else f"{key}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return "; ".join(_flatten(item) for item in detail)
    return str(detail)


def first_error(detail: Any, path: str = "") -> tuple[str, str]:
    """(field path, message) of the first error in a serializer's errors: the one place where
    is_valid()'s errors become "<field> must be ..." in every seed's shape."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                sub = path
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            return first_error(value, sub)
    if isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, dict | list):
                if item:  # many=True: an empty dict is an item without errors
                    return first_error(item, f"{path}[{index}]")
                continue
            return first_error(item, path)
    text = str(detail)
    if getattr(detail, "code", None) == OWN or not path or text.startswith(path):
        return path, text
    if text.startswith("This field "):
        return path, f"{path} {text.removeprefix('This field ').rstrip('.')}"
    return path, f"{path}: {text}"


def error_body(
    seed: str,
    status_code: int,
    message: str,
    *,
    code: str = "",
    details: str = "",
    field: str = "",
    request_id: str = "",
) -> dict:
    code = code or CODES.get(status_code, "ERROR")
    if seed == "000":
        return {"success": False, "error": message}
    if seed == "001":
        return {"error": {"code": code, "message": message}}
    if seed == "002":
        return {"error": message, "details": details or message, "code": status_code}
    if seed == "003":
        return {"error": {"code": status_code, "message": message}}
    if seed == "004":
        return {"code": status_code, "message": message, "requestId": request_id}
    body: dict[str, Any] = {"code": code, "message": message, "requestId": request_id}
    if field:
        body["field"] = field
    return {"error": body}


def error_response(
    seed: str, status_code: int, message: str, *, headers: dict | None = None, **kwargs: Any
) -> Response:
    kwargs.setdefault("request_id", current_request_id())
    return Response(
        error_body(seed, status_code, message, **kwargs), status=status_code, headers=headers
    )


def exception_handler(exc: Exception, context: dict) -> Response:
    view = context.get("view")
    request = context.get("request")
    seed = getattr(view, "seed", "redrive")
    request_id = getattr(request, "request_id", "") or current_request_id()
    headers: dict[str, str] = {}
    field = ""
    details = ""
    code = ""

    if isinstance(exc, RedriveError):
        status_code = exc.status_code
        code = exc.code
        message = exc.message
        if isinstance(exc, NotRetryable):
            status_code = NOT_RETRYABLE_STATUS.get(seed, 409)
            details = f"status is {exc.status}" if exc.status else ""
            if exc.retried_by:
                details = f"already retried by {exc.retried_by}"
        if isinstance(exc, InvalidInput):
            field = exc.field
            details = f"invalid field: {exc.field}" if exc.field else ""
    elif isinstance(exc, exceptions.ValidationError):
        status_code, code = 400, CODES[400]
        field, message = first_error(exc.detail)
        details = f"invalid field: {field}" if field else ""
    elif isinstance(exc, Http404):
        status_code, message = 404, "Not found."
    elif isinstance(exc, DjangoPermissionDenied):
        status_code, message = 403, "Access denied or insufficient permissions."
    elif isinstance(exc, RequestDataTooBig):
        status_code, message = 413, "Request body is too large."
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # The database is unreachable (or dropped the connection): the request may succeed once
        # it is back, so 503 - not a 500 that reads like a bug in the request.
        log.warning("database unavailable (request id %s): %s", request_id, exc)
        status_code = 503
        message = f"Service unavailable: the database cannot be reached (request id {request_id})"
        details = f"request id {request_id}"
    elif isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        message = _flatten(exc.detail)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        if status_code == 401 and "WWW-Authenticate" not in headers:
            headers["WWW-Authenticate"] = 'Api-Key realm="api", Bearer realm="api"'
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
            message = f"Rate limit exceeded; retry in {headers['Retry-After']} seconds."
    else:
        log.error(
            "unhandled error in %s (request id %s)",
            type(view).__name__ if view else "?",
            request_id,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        status_code = 500
        message = f"Internal server error (request id {request_id})"
        details = f"request id {request_id}"

    body = error_body(
        seed, status_code, message, code=code, details=details, field=field, request_id=request_id
    )
    if isinstance(exc, StillRunning):
        # The caller's handle on the execution that goes on (seed 000 names executions so).
        body["executionId"] = exc.execution_id
    return Response(body, status=status_code, headers=headers)
