"""Checking a workflow version's tasks when it is saved (not when it runs)."""

from __future__ import annotations

from typing import Any

from ... import work
from ...errors import InvalidInput
from . import cognite

# A task is Redrive's extension type `handler` (handler, params) or `http` (url, headers, ...).
WORK_KINDS = ("handler", "http")
# What a task holds besides its unit of work.
TASK_KEYS = (
    "externalId",
    "type",
    "dependsOn",
    "isOptional",
    "retries",
    "timeout",
    "name",
    "description",
)
MAX_RETRIES = 10


def task_unit(task: dict) -> dict:
    """The unit of work a task runs, as workflows/run.py builds it (any other key it holds, a
    `code` say, is kept so that validate refuses it)."""
    return {key: value for key, value in task.items() if key not in TASK_KEYS}


def validate_definition(tasks: Any, where: str = "tasks", *, tenant=None) -> list[dict]:
    """A workflow's tasks: each with a unique externalId, dependencies on tasks of the same
    workflow, and a valid unit of work (executions.work.validate); InvalidInput naming the field
    (`tasks[1].url`) otherwise. A version upserted through Cognite's API (typed tasks) is checked
    as that API checks it (cognite.clean_tasks: its functions are the tenant's)."""
    if not isinstance(tasks, list):
        raise InvalidInput("tasks must be a list of tasks", field=where)
    if tenant is not None and any(isinstance(t, dict) and cognite.is_typed(t) for t in tasks):
        try:
            cognite.clean_tasks(tenant, [_as_sent(t) for t in tasks], "version")
        except InvalidInput as exc:
            field = where + (exc.field or "").removeprefix("version.tasks")
            raise InvalidInput(exc.message.removeprefix(f"{exc.field}: "), field=field) from None
        return tasks
    ids = [t.get("externalId") if isinstance(t, dict) else None for t in tasks]
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        at = f"{where}[{i}]"
        if not isinstance(task, dict):
            raise InvalidInput("a task must be an object", field=at)
        external_id = task.get("externalId")
        if not isinstance(external_id, str) or not external_id.strip():
            raise InvalidInput("externalId must be a non-empty string", field=f"{at}.externalId")
        if external_id in seen:
            raise InvalidInput(
                f"externalId {external_id!r} is used twice", field=f"{at}.externalId"
            )
        seen.add(external_id)
        depends = task.get("dependsOn", [])
        if not isinstance(depends, list) or any(d not in ids or d == external_id for d in depends):
            raise InvalidInput(
                "dependsOn must list the externalIds of other tasks of this workflow",
                field=f"{at}.dependsOn",
            )
        retries = task.get("retries", 0)
        if (
            isinstance(retries, bool)
            or not isinstance(retries, int)
            or not 0 <= retries <= MAX_RETRIES
        ):
            raise InvalidInput(
                f"retries must be an integer from 0 to {MAX_RETRIES}", field=f"{at}.retries"
            )
        if not isinstance(task.get("isOptional", False), bool):
            raise InvalidInput("isOptional must be true or false", field=f"{at}.isOptional")
        timeout = task.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise InvalidInput("timeout must be a number of seconds", field=f"{at}.timeout")
        work.validate(task_unit(task), where=at, kinds=WORK_KINDS)
    return tasks


def _as_sent(task: Any) -> Any:
    """A stored typed task as the API takes it (dependsOn as objects, defaults written out), so
    that what the API saved passes again; a malformed one as it is, for clean_tasks to name."""
    try:
        return cognite.cognite_task(task)
    except (KeyError, TypeError, AttributeError):
        return task
