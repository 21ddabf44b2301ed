"""Checking a job's operation when the job is created (not when it runs): the one check, for the
API's `POST /job` (start.clean_operation), the model's clean() (admin) and the demo's jobs."""

from __future__ import annotations

from typing import Any

from ... import handlers, work
from ...errors import InvalidInput
from .run import _handler_unit


def validate_definition(operation: Any, where: str = "operation", *, strict: bool = False) -> dict:
    """A job's operation {"type", "data"}: `command.exec` with a valid command as its data, or
    the name of a registered handler whose params are the data (executions.work.validate);
    InvalidInput naming the field (`operation.data.timeout`, `operation.type`) otherwise.
    `strict` (from the API): data.handler may not pick another handler than the type names."""
    if not isinstance(operation, dict):
        raise InvalidInput(f"{where} must be an object", field=where)
    op_type = operation.get("type")
    if not isinstance(op_type, str) or op_type not in (work.COMMAND_OPERATION, *handlers.names()):
        raise InvalidInput(
            f"type must be {work.COMMAND_OPERATION} or a registered handler's name",
            field=f"{where}.type",
        )
    data = operation.get("data", {})
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object", field=f"{where}.data")
    if op_type == work.COMMAND_OPERATION:
        if "command" not in data:
            raise InvalidInput("command must be a non-empty string", field=f"{where}.data.command")
        work.validate(dict(data), where=f"{where}.data", kinds=("command",))
        return {"type": op_type, "data": data}
    # The worker lets data.handler pick the handler (the demo's jobs do): from the API the type
    # names it, so a job cannot say one handler and run another.
    if strict and data.get("handler", op_type) != op_type:
        raise InvalidInput(
            f"handler must be absent or equal to {where}.type", field=f"{where}.data.handler"
        )
    work.validate(_handler_unit(op_type, data), where=f"{where}.data", kinds=("handler",))
    return {"type": op_type, "data": data}
