"""Domain errors. Each API seed maps them to its own error shape in one place
(`executions/api/errors.py`); the console turns them into messages."""

from __future__ import annotations


class RedriveError(Exception):
    status_code = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str = "", **details) -> None:
        super().__init__(message or self.__class__.__doc__ or "")
        self.message = message or (self.__class__.__doc__ or "").strip()
        self.details = details


class InvalidInput(RedriveError):
    """Invalid request."""

    status_code = 400
    code = "VALIDATION_ERROR"

    def __init__(self, message: str, field: str = "", **details) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class NotFound(RedriveError):
    """Not found."""

    status_code = 404
    code = "NOT_FOUND"


class PermissionDenied(RedriveError):
    """Access denied or insufficient permissions."""

    status_code = 403
    code = "FORBIDDEN"

    def __init__(self, permission: str) -> None:
        super().__init__(f"Missing permission {permission}", permission=permission)
        self.permission = permission


class NotRetryable(RedriveError):
    """The item's state does not allow a retry. Each seed picks the HTTP code (400 or 409)."""

    status_code = 409
    code = "NOT_RETRYABLE"

    def __init__(self, message: str, *, status: str = "", retried_by: str = "") -> None:
        super().__init__(message, status=status, retried_by=retried_by)
        self.status = status
        self.retried_by = retried_by


class IdempotencyKeyReused(RedriveError):
    """The Idempotency-Key was already used for a different request (IETF httpapi draft: 422)."""

    status_code = 422
    code = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self, key: str) -> None:
        super().__init__(
            f'Idempotency-Key "{key}" was already used for a different request', key=key
        )


class IdempotencyKeyInFlight(RedriveError):
    """A request with the same Idempotency-Key is still in progress (IETF httpapi draft: 409)."""

    status_code = 409
    code = "IDEMPOTENCY_KEY_IN_USE"

    def __init__(self, key: str) -> None:
        super().__init__(
            f'A request with Idempotency-Key "{key}" is still in progress; repeat it once it '
            "has finished",
            key=key,
        )


class StillRunning(RedriveError):
    """A synchronous call stopped waiting for its execution, which goes on in a worker (504)."""

    status_code = 504
    code = "TIMEOUT"

    def __init__(self, execution_id: str, waited_s: float) -> None:
        super().__init__(
            f"Execution {execution_id} is still running after {waited_s:g} s; it goes on in a "
            "worker: read its result from the execution later",
            execution_id=execution_id,
        )
        self.execution_id = execution_id
