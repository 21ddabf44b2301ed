"""Starting a job (seed 002's `POST /job`): an operation a worker on the target host will run.

The operation's type is `command.exec` (a command, on workers started with --allow-commands) or
the name of a registered handler (whose params are the data); anything else is refused when the
job is created, not when a worker finds it. The caller needs `jobs:write` and the operation's
own permission (`command:execute` for a command), the same pair a retry of the job needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import InvalidInput
from ...models import Job
from ...validation import HOSTNAME_RE, named
from .definition import validate_definition
from .retry import PERMISSION, operation_permission
from .run import create_job

if TYPE_CHECKING:
    from ...tenancy import Actor


def clean_operation(operation: Any) -> dict:
    """`{"type", "data"}` checked as the worker will run it (definition.validate_definition),
    or InvalidInput naming the field in its message (`operation.data.args must be ...`)."""
    try:
        return validate_definition(operation, strict=True)
    except InvalidInput as exc:
        raise named(exc) from None


def clean_target(target: Any) -> str:
    if target is None:
        return Job.ANY_HOST
    if not isinstance(target, str) or not HOSTNAME_RE.match(target):
        raise InvalidInput("target_hostname must be a valid hostname", field="target_hostname")
    return target


def authorise(actor: Actor, operation: dict) -> None:
    actor.require(PERMISSION)
    actor.require(operation_permission(operation["type"]))


def start(actor: Actor, operation: dict, target_hostname: str) -> Job:
    """Inside the caller's transaction: the job at revision 1 with its `created` event, queued for
    its host once the transaction commits."""
    return create_job(actor.tenant, operation, target_hostname)
