"""`manage.py apply redrive.toml`: a tenant's definitions kept in a file in the team's repository
(functions, automation rules, saved 004 workflows, Cognite 003 workflow versions), created or
updated to match it, through the API's own validators and state changes, in one transaction.

Each entry is found by its key (a function, rule or saved workflow by name, a Cognite workflow
by externalId and version): missing, it is created; different, the fields the file gives are
updated (fields it leaves out stay as they are); the same, nothing is written. Nothing is ever
deleted. A bad entry stops everything, naming it and its field (`functions[1] (send-invoice):
code: code does not compile ...`), and nothing is applied. `check=True` runs the same in a
transaction rolled back at the end: the same plan, nothing written.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from rest_framework import serializers

from . import services
from .api.errors import first_error
from .api.serializers import functions as fn
from .api.serializers import runs as rn
from .api.serializers import workflows as wf
from .errors import InvalidInput, RedriveError
from .kinds.automations import definition as rules
from .kinds.functions import defining
from .kinds.runs import saved
from .kinds.workflows import cognite
from .models import AutomationRule, Function, SavedWorkflow, Workflow
from .tenancy import Actor
from .work import secrets

SECTIONS = ("functions", "rules", "workflows", "cognite_workflows")
FUNCTION_FIELDS = (
    "name",
    "description",
    "code",
    "trigger",
    "environment",
    "isActive",
    "limits",
    "retryPolicy",
)
RULE_FIELDS = ("name", "trigger", "conditions", "actions", "enabled")
WORKFLOW_FIELDS = ("name", "description", "definition")
COGNITE_FIELDS = ("externalId", "version", "description", "tasks")
SHOWN = 60  # characters of a value in a diff line


class FileError(Exception):
    """The file cannot be applied: which entry, which field, why."""


@dataclass
class Change:
    section: str
    key: str
    action: str  # created | updated | unchanged
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.section} {self.key}: {self.action}"]
        for name, old, new in self.fields:
            out.append(f"  {name}: {_shown(old)} -> {_shown(new)}")
        return out


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(secrets.masked_deep(value), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def load(path: str | Path) -> dict:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise FileError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FileError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise FileError(f"{path}: unknown section {unknown[0]!r} (known: {', '.join(SECTIONS)})")
    return data


def apply(actor: Actor, data: dict, *, check: bool = False) -> list[Change]:
    """Make the tenant's definitions match `data` (a loaded file); the changes, in file order.
    Raises FileError naming the entry and field, with nothing applied."""
    changes: list[Change] = []
    with transaction.atomic():
        # In file order, functions first: a Cognite task may name a function the file defines.
        for section, apply_one in (
            ("functions", _function),
            ("rules", _rule),
            ("workflows", _workflow),
            ("cognite_workflows", _cognite),
        ):
            entries = data.get(section, [])
            if not isinstance(entries, list):
                raise FileError(f"{section} must be an array of tables ([[{section}]])")
            for index, entry in enumerate(entries):
                where = f"{section}[{index}]"
                if not isinstance(entry, dict):
                    raise FileError(f"{where}: must be a table")
                label = f"{where} ({entry.get('name') or entry.get('externalId') or '?'})"
                try:
                    changes.append(apply_one(actor, entry))
                except RedriveError as exc:
                    raise FileError(f"{label}: {_named(exc)}") from None
                except serializers.ValidationError as exc:
                    # The API's message, which names the field ("trigger.schedule must be ...").
                    raise FileError(f"{label}: {first_error(exc.detail)[1]}") from None
        _no_duplicates(changes)
        if check:
            transaction.set_rollback(True)
    return changes


def _named(exc: RedriveError) -> str:
    name = exc.details.get("field", "")
    return f"{name}: {exc.message}" if name and not exc.message.startswith(name) else exc.message


def _no_duplicates(changes: list[Change]) -> None:
    seen: set[tuple[str, str]] = set()
    for change in changes:
        if (change.section, change.key) in seen:
            raise FileError(f"{change.section} {change.key}: defined twice in the file")
        seen.add((change.section, change.key))


def _unknown(entry: dict, known: tuple[str, ...]) -> None:
    for name in entry:
        if name not in known:
            raise serializers.ValidationError(
                {name: [f"unknown field (known: {', '.join(known)})"]}
            )


def _diff(current: dict, wanted: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(field, old, new) for each field of `wanted` that differs; nested tables field by field
    where both sides are tables of named settings (limits, retryPolicy)."""
    out = []
    for name, new in wanted.items():
        old = current.get(name)
        if prefix == "" and name in ("limits", "retryPolicy") and isinstance(old, dict):
            out += _diff(old, new, f"{name}.")
        elif old != new:
            out.append((f"{prefix}{name}", old, new))
    return out


def _one(qs, section: str, key: str):
    rows = list(qs[:2])
    if len(rows) > 1:
        raise FileError(f"{section} {key}: more than one in the tenant has this name")
    return rows[0] if rows else None


# --- per section ----------------------------------------------------------------------------------


def _function(actor: Actor, entry: dict) -> Change:
    actor.require("functions:write")
    _unknown(entry, FUNCTION_FIELDS)
    data = dict(fn.UpdateFunctionInput.check(entry))
    key = data.get("name") or ""
    if not key:
        raise serializers.ValidationError({"name": ["This field is required."]})
    data.pop("versionComment", None)
    function = _one(Function.objects.filter(tenant=actor.tenant, name=key), "function", key)
    if function is None:
        base = fn.CreateFunctionInput.check({k: entry[k] for k in entry if k in _CREATE})
        function = defining.create(actor, base)
        rest = {k: v for k, v in data.items() if k not in _CREATE}
        if rest:
            defining.update(actor, function, rest)
        return Change("function", key, "created")
    current = {
        "name": function.name,
        "description": function.description,
        "code": function.code,
        "trigger": function.trigger,
        "environment": function.environment,
        "isActive": function.is_active,
        "limits": {name: getattr(function, f) for name, f in defining.LIMITS.items()},
        "retryPolicy": {name: getattr(function, f) for name, f in defining.RETRY_POLICY.items()},
    }
    changed = _diff(current, data)
    if changed:
        top = {name.split(".")[0] for name, _, _ in changed}
        defining.update(
            actor, function, {**{k: data[k] for k in top}, "versionComment": "manage.py apply"}
        )
    return Change("function", key, "updated" if changed else "unchanged", changed)


_CREATE = ("name", "description", "code", "trigger", "environment")


def _rule(actor: Actor, entry: dict) -> Change:
    actor.require(services.AUTOMATION_WRITE)
    _unknown(entry, RULE_FIELDS)
    clean = rules.clean_rule(entry)
    key = clean["name"]
    live = rules.live_rules(actor.tenant).filter(name=key)
    rule: AutomationRule | None = _one(live, "rule", key)
    if rule is None:
        services.create_automation_rule(actor, entry, durable=False)
        return Change("rule", key, "created")
    current = {name: getattr(rule, name) for name in RULE_FIELDS}
    changed = _diff(current, clean)
    if changed:
        services.update_automation_rule(actor, str(rule.pk), entry, durable=False)
    return Change("rule", key, "updated" if changed else "unchanged", changed)


def _workflow(actor: Actor, entry: dict) -> Change:
    actor.require(saved.PERMISSION)
    _unknown(entry, WORKFLOW_FIELDS)
    data = rn.SavedWorkflowInput.check(entry)
    key = data["name"]
    qs = SavedWorkflow.objects.filter(tenant=actor.tenant, name=key)
    workflow = _one(qs, "workflow", key)
    if workflow is None:
        saved.create_workflow(actor, **data, durable=False)
        return Change("workflow", key, "created")
    current = {name: getattr(workflow, name) for name in WORKFLOW_FIELDS}
    changed = _diff(current, dict(data))
    if changed:
        saved.update_workflow(actor, workflow.pk, **data, durable=False)
    return Change("workflow", key, "updated" if changed else "unchanged", changed)


def _cognite(actor: Actor, entry: dict) -> Change:
    _unknown(entry, COGNITE_FIELDS)
    item = {
        "workflowExternalId": entry.get("externalId"),
        "version": entry.get("version"),
        "workflowDefinition": {
            "tasks": entry.get("tasks"),
            "description": entry.get("description"),
        },
    }
    try:
        item = wf.WorkflowVersionUpsertRequestSerializer.check({"items": [item]})["items"][0]
    except serializers.ValidationError as exc:
        raise _cognite_names(exc) from None
    tasks = cognite.clean_tasks(actor.tenant, item["workflowDefinition"]["tasks"], "tasks")
    key = f"{item['workflowExternalId']} version {item['version']}"
    version = Workflow.objects.filter(
        tenant=actor.tenant, external_id=item["workflowExternalId"], version=item["version"]
    ).first()
    wanted = {"tasks": tasks, "description": item["workflowDefinition"].get("description")}
    if version is not None:
        current = {"tasks": version.tasks, "description": version.description}
        changed = _diff(current, wanted)
        if not changed:
            return Change("cognite_workflow", key, "unchanged")
    services.upsert_workflow_versions(actor, actor.tenant.workflows_project, [item])
    if version is None:
        return Change("cognite_workflow", key, "created")
    return Change("cognite_workflow", key, "updated", changed)


def _cognite_names(exc: serializers.ValidationError) -> InvalidInput:
    """The API's error, named by the file's fields (externalId, tasks) instead of the item's."""
    name, message = first_error(exc.detail)
    ours = name
    for api, short in (
        ("items[0].workflowExternalId", "externalId"),
        ("items[0].workflowDefinition.", ""),
        ("items[0].", ""),
    ):
        if ours.startswith(api):
            ours = short + ours[len(api) :]
            break
    return InvalidInput(message.replace(name, ours) if name else message, field=ours)
