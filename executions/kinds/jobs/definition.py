"""Checking a job's operation when the job is created (not when it runs)."""

from __future__ import annotations

from typing import Any

from ... import work
from ...errors import InvalidInput


def validate_definition(operation: Any, where: str = "operation") -> dict:
    """A job's operation {"type", "data"}: `command.exec` with a valid command as its data, or
    the name of a registered handler whose params are the data (executions.work.validate);
    InvalidInput naming the field (`operation.data.timeout`, `operation.type`) otherwise."""
    if not isinstance(operation, dict):
        raise InvalidInput("operation must be an object with type and data", field=where)
    op_type = operation.get("type")
    if not isinstance(op_type, str) or not op_type:
        raise InvalidInput("operation type must be a non-empty string", field=f"{where}.type")
    data = operation.get("data", {})
    if not isinstance(data, dict):
        raise InvalidInput("operation data must be an object", field=f"{where}.data")
    if op_type == work.COMMAND_OPERATION:
        work.validate(dict(data), where=f"{where}.data", kinds=("command",))
        return operation
    try:
        work.validate({"handler": op_type, "params": data}, kinds=("handler",))
    except InvalidInput as exc:
        field = f"{where}.type" if exc.field == "handler" else f"{where}.data"
        raise InvalidInput(exc.message, field=field) from None
    return operation
