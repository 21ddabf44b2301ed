"""Automation rules as their users define them (seed 001's `/api/v1/automation/rules`), and the
events that fire them (`/api/v1/automation/events`).

A rule: a trigger event type (`{"type": "event", "event": "ticket.created"}`), conditions on the
event's data (all must hold), an ordered list of actions (units of work, executions.work:
handler, http or javascript; checked with `work.validate` when saved, not when they run) and an
`enabled` flag. An event fires every enabled, undeleted rule of its tenant whose trigger names
its type and whose conditions hold: one execution per rule, each running that rule's actions as
they were when it fired (the execution snapshots them), queued after the commit.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from ... import work
from ...errors import InvalidInput
from ...models import AutomationExecution, AutomationRule, Tenant
from ...queueing import enqueue_on_commit
from ...validation import named
from ...work import secrets
from .retry import TASK_BATCH
from .run import run_automation_executions

EVENT_TRIGGER = "event"
MAX_NAME = 200
MAX_EVENT_TYPE = 200
MAX_ACTIONS = 50
MAX_CONDITIONS = 50
# An action is a handler, an HTTP request or JavaScript (commands are for jobs).
WORK_KINDS = ("handler", "http", "javascript")
_MISSING = object()


def _compare(op: str):
    def check(actual: Any, expected: Any) -> bool:
        try:
            return {
                "gt": actual > expected,
                "gte": actual >= expected,
                "lt": actual < expected,
                "lte": actual <= expected,
            }[op]
        except TypeError:  # "3" > 2: not comparable, so the condition does not hold
            return False

    return check


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    return isinstance(actual, list) and expected in actual


# operator -> how it holds of the event's value. A missing field holds
# only for `not_equals`, `not_in` and `exists: false`.
OPERATORS = {
    "equals": lambda actual, expected: actual == expected,
    "not_equals": lambda actual, expected: actual != expected,
    "in": lambda actual, expected: actual in expected,
    "not_in": lambda actual, expected: actual not in expected,
    "contains": lambda actual, expected: _contains(actual, expected),
    "exists": lambda actual, expected: (actual is not _MISSING) == expected,
    "gt": _compare("gt"),
    "gte": _compare("gte"),
    "lt": _compare("lt"),
    "lte": _compare("lte"),
}


# --- validation: InvalidInput naming the field ------------------------------------------------


def clean_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or "\0" in value:
        raise InvalidInput(f"name must be 1 to {MAX_NAME} characters", field="name")
    return value.strip()


def clean_event_type(value: Any, field: str) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_EVENT_TYPE
        or not value.isprintable()
    ):
        raise InvalidInput(
            f"{field} must be an event type of 1 to {MAX_EVENT_TYPE} printable characters",
            field=field,
        )
    return value.strip()


def clean_trigger(value: Any) -> dict:
    if not isinstance(value, dict):
        raise InvalidInput("trigger must be an object", field="trigger")
    kind = value.get("type", EVENT_TRIGGER)
    if kind != EVENT_TRIGGER:
        raise InvalidInput(
            f"trigger.type must be {EVENT_TRIGGER!r} (rules fire on events)", field="trigger.type"
        )
    return {"type": EVENT_TRIGGER, "event": clean_event_type(value.get("event"), "trigger.event")}


def clean_conditions(value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_CONDITIONS:
        raise InvalidInput(
            f"conditions must be a list of at most {MAX_CONDITIONS} conditions", field="conditions"
        )
    out = []
    for i, cond in enumerate(value):
        where = f"conditions[{i}]"
        if not isinstance(cond, dict):
            raise InvalidInput(f"{where} must be an object", field=where)
        path = cond.get("field")
        if (
            not isinstance(path, str)
            or not path
            or len(path) > 200
            or any(not part for part in path.split("."))
        ):
            raise InvalidInput(
                f"{where}.field must be a dotted path into the event's data, e.g. ticket.priority",
                field=f"{where}.field",
            )
        op = cond.get("operator", "equals")
        if op not in OPERATORS:
            raise InvalidInput(
                f"{where}.operator must be one of {', '.join(OPERATORS)}",
                field=f"{where}.operator",
            )
        if "value" not in cond and op != "exists":
            raise InvalidInput(f"{where}.value is required", field=f"{where}.value")
        expected = cond.get("value", True)
        if op in ("in", "not_in") and not isinstance(expected, list):
            raise InvalidInput(f"{where}.value must be a list for {op}", field=f"{where}.value")
        if op == "exists" and not isinstance(expected, bool):
            raise InvalidInput(f"{where}.value must be true or false", field=f"{where}.value")
        out.append({"field": path, "operator": op, "value": expected})
    return out


def clean_actions(value: Any) -> list[dict]:
    if not isinstance(value, list) or not value or len(value) > MAX_ACTIONS:
        raise InvalidInput(
            f"actions must be a list of 1 to {MAX_ACTIONS} units of work", field="actions"
        )
    try:
        return validate_definition(value)
    except InvalidInput as exc:
        raise named(exc) from None


def validate_definition(actions: Any, where: str = "actions") -> list[dict]:
    """The rule's actions, each checked by executions.work.validate; InvalidInput naming the
    field (`actions[2].url`) for the first that is not valid. The model's clean() (the admin)
    and the API both check through here."""
    if not isinstance(actions, list):
        raise InvalidInput("actions must be a list of units of work", field=where)
    return [
        work.validate(action, where=f"{where}[{i}]", kinds=WORK_KINDS)
        for i, action in enumerate(actions)
    ]


def clean_enabled(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        raise InvalidInput("enabled must be true or false", field="enabled")
    return value


def clean_rule(body: dict) -> dict:
    """A whole rule (create and PUT alike), in the order its fields are read."""
    return {
        "name": clean_name(body.get("name")),
        "trigger": clean_trigger(body.get("trigger")),
        "conditions": clean_conditions(body.get("conditions")),
        "actions": clean_actions(body.get("actions")),
        "enabled": clean_enabled(body.get("enabled")),
    }


# --- matching -------------------------------------------------------------------------------


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def matches(conditions: list[dict], data: dict) -> bool:
    for cond in conditions:
        actual = _lookup(data, cond["field"])
        op = cond["operator"]
        if actual is _MISSING and op not in ("not_equals", "not_in", "exists"):
            return False
        if not OPERATORS[op](actual, cond["value"]):
            return False
    return True


# --- writes (inside the caller's transaction) ------------------------------------------------


def create(tenant: Tenant, clean: dict) -> AutomationRule:
    return AutomationRule.objects.create(tenant=tenant, **clean)


def update(rule: AutomationRule, clean: dict) -> AutomationRule:
    """Replace the rule's definition; a new version (executions already started keep theirs)."""
    # A rule read back (its secrets masked, as the API shows them) and PUT again keeps them.
    clean = {**clean, "actions": secrets.keep_masked(clean["actions"], rule.actions or [])}
    for name, value in clean.items():
        setattr(rule, name, value)
    rule.version += 1
    rule.updated_at = timezone.now()
    rule.save(update_fields=[*clean, "version", "updated_at"])
    return rule


def delete(rule: AutomationRule) -> None:
    now = timezone.now()
    AutomationRule.objects.filter(pk=rule.pk, deleted_at__isnull=True).update(
        deleted_at=now, enabled=False, updated_at=now
    )


def live_rules(tenant: Tenant):
    return AutomationRule.objects.filter(tenant=tenant, deleted_at__isnull=True)


def fire(tenant: Tenant, event_type: str, data: dict) -> list[AutomationExecution]:
    """One pending execution per enabled rule that matches the event, queued after commit."""
    candidates = live_rules(tenant).filter(
        enabled=True, trigger__type=EVENT_TRIGGER, trigger__event=event_type
    )
    ordered = candidates.order_by("created_at", "pk")
    fired = [rule for rule in ordered if matches(rule.conditions, data)]
    if not fired:
        return []
    now = timezone.now()
    executions = AutomationExecution.objects.bulk_create(
        AutomationExecution(
            tenant=tenant,
            automation_rule=rule,
            trigger_data=data,
            actions_total=len(rule.actions),
            execution_context={
                "rule_version": rule.version,
                "actions": rule.actions,
                "event": {"type": event_type},
            },
            started_at=now,
            created_at=now,
            updated_at=now,
        )
        for rule in fired
    )
    ids = [str(e.pk) for e in executions]
    for start in range(0, len(ids), TASK_BATCH):
        enqueue_on_commit(run_automation_executions, ids[start : start + TASK_BATCH])
    return executions
