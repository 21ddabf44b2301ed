"""Starting a job (seed 002's `POST /job`): an operation a worker on the target host will run.

The operation's type is `command.exec` (a command, on workers started with --allow-commands) or
the name of a registered handler (whose params are the data); anything else is refused when the
job is created, not when a worker finds it. The caller needs `jobs:write` and the operation's
own permission (`command:execute` for a command), the same pair a retry of the job needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import handlers, work
from ...errors import InvalidInput
from ...models import Job
from ...validation import HOSTNAME_RE, named
from .retry import PERMISSION, operation_permission
from .run import _handler_unit, create_job

if TYPE_CHECKING:
    from ...tenancy import Actor


def clean_operation(operation: Any) -> dict:
    """`{"type", "data"}` checked as the worker will run it, or InvalidInput naming the field
    (`operation.type`, `operation.data.args`, ...)."""
    if not isinstance(operation, dict):
        raise InvalidInput("operation must be an object", field="operation")
    op_type = operation.get("type")
    known = [work.COMMAND_OPERATION, *handlers.names()]
    if not isinstance(op_type, str) or op_type not in known:
        raise InvalidInput(
            f"operation.type must be {work.COMMAND_OPERATION} or a registered handler's name",
            field="operation.type",
        )
    data = operation.get("data", {})
    if not isinstance(data, dict):
        raise InvalidInput("operation.data must be an object", field="operation.data")
    try:
        _validate_data(op_type, data)
    except InvalidInput as exc:
        raise named(exc) from None
    return {"type": op_type, "data": data}


def _validate_data(op_type: str, data: dict) -> None:
    where = "operation.data"
    if op_type == work.COMMAND_OPERATION:
        if "command" not in data:
            raise InvalidInput(
                "operation.data.command must be a non-empty string", field=f"{where}.command"
            )
        work.validate(data, where=where, kinds=("command",))
    else:
        # The worker lets data.handler pick the handler (the demo's jobs do): from the API the
        # type names it, so a job cannot say one handler and run another.
        if data.get("handler", op_type) != op_type:
            raise InvalidInput(
                "operation.data.handler must be absent or equal to operation.type",
                field=f"{where}.handler",
            )
        work.validate(_handler_unit(op_type, data), where=where, kinds=("handler",))


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
