"""Checking an automation rule's actions when the rule is saved (not when it runs)."""

from __future__ import annotations

from typing import Any

from ... import work
from ...errors import InvalidInput

# An action is a handler, an HTTP request or JavaScript (commands are for jobs).
WORK_KINDS = ("handler", "http", "javascript")


def validate_definition(actions: Any, where: str = "actions") -> list[dict]:
    """The rule's actions, each checked by executions.work.validate; InvalidInput naming the
    field (`actions[2].url`) for the first that is not valid."""
    if not isinstance(actions, list):
        raise InvalidInput("actions must be a list of units of work", field=where)
    return [
        work.validate(action, where=f"{where}[{i}]", kinds=WORK_KINDS)
        for i, action in enumerate(actions)
    ]
