"""Exemplars: one real engine run of every scenario, kept as a template to copy."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from executions.models import (
    AutomationExecution,
    FunctionExecution,
    Job,
    JobEvent,
    Kind,
    Run,
    WorkflowExecution,
    WorkflowTaskExecution,
)

from .cast import Org
from .items import (
    Definitions,
    _automation_executions,
    _function_execution,
    _job,
    _run,
    _workflow_execution,
)
from .specs import _automation_specs, _function_specs, _job_specs, _run_specs, _workflow_specs

# --- exemplars: one real run of every scenario, kept as templates ---------------------------------


@dataclass(frozen=True)
class Scenario:
    kind: str
    key: str  # function name, rule name, job spec key, workflow external id, run workflow id
    history: int  # copies in the base seed's week of history
    weight: int  # share among scale()'s copies; 0: never copied by scale (not a failure)


def scenarios(o: Org) -> list[Scenario]:
    return [
        *(Scenario(Kind.FUNCTION, s["name"], s["history"], s["scale"]) for s in _function_specs(o)),
        *(Scenario(Kind.AUTOMATION, s["name"], s["history"], s["scale"])
          for s in _automation_specs(o)),
        *(Scenario(Kind.JOB, s["key"], s["history"], s["scale"]) for s in _job_specs(o)),
        *(Scenario(Kind.WORKFLOW, s["external_id"], s["history"], s["scale"])
          for s in _workflow_specs(o)),
        *(Scenario(Kind.RUN, s["workflow_id"], s["history"], s["scale"]) for s in _run_specs(o)),
    ]  # fmt: skip


_MODELS = {
    Kind.FUNCTION: FunctionExecution,
    Kind.AUTOMATION: AutomationExecution,
    Kind.JOB: Job,
    Kind.WORKFLOW: WorkflowExecution,
    Kind.RUN: Run,
}
_CHILDREN = {Kind.JOB: (JobEvent, "job_id"), Kind.WORKFLOW: (WorkflowTaskExecution, "execution_id")}
# The time the other timestamps of an item are measured from.
_ANCHOR = {
    Kind.FUNCTION: "executed_at",
    Kind.AUTOMATION: "started_at",
    Kind.JOB: "created_at",
    Kind.WORKFLOW: "created_time",
    Kind.RUN: "started_at",
}
# The status every copy made by scale() has: what the engine records for a failure.
_FAILED = {
    Kind.FUNCTION: "failed",
    Kind.AUTOMATION: "failed",
    Kind.JOB: "failed",
    Kind.WORKFLOW: "FAILED",
    Kind.RUN: "failure",
}

_ISO = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:[+-]\d\d:\d\d|Z)?"')
# Exemplars fill "{n}" with this number; copies replace it with their own (JSON columns only).
_SENTINEL = "987654"

# (tenant slug, kind, scenario key) -> (row template, child row templates). Engine output does not
# depend on the database state, so one run per scenario and process is enough: later seeds (tests
# seed per test) only copy. Foreign keys are re-pointed at the current rows on every use.
_EXEMPLARS: dict[tuple[str, str, str], tuple[dict, list[dict]]] = {}


def _copied_fields(model: type[models.Model]) -> list[models.Field]:
    # Auto-increment keys are left to the database.
    return [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]


def _template(model: type[models.Model], row: dict, anchor: datetime) -> dict:
    """A row as a template: datetimes as milliseconds from the item's anchor time; JSON as text in
    which timestamps read "__TS__" and the exemplar's number reads "__N__"."""
    out: dict[str, Any] = {}
    for f in _copied_fields(model):
        value = row[f.attname]
        if isinstance(f, models.JSONField) and value is not None:
            text = _ISO.sub('"__TS__"', json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))
            value = text.replace(_SENTINEL, "__N__")
        elif isinstance(f, models.DateTimeField) and value is not None:
            value = (value - anchor).total_seconds() * 1000
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[f.column] = value
    return out


def _exemplars(defs: Definitions) -> None:
    """Run every scenario of this tenant once through the engine, keep what it recorded as
    templates, and roll the rows back."""
    todo = [s for s in scenarios(defs.org) if (defs.org.slug, s.kind, s.key) not in _EXEMPLARS]
    if not todo:
        return
    n = int(_SENTINEL)
    made: list[tuple[Scenario, Any]] = []
    with transaction.atomic():
        autos = [s for s in todo if s.kind == Kind.AUTOMATION]
        ids = _automation_executions(defs, [(s.key, n) for s in autos]) if autos else []
        made += zip(autos, ids, strict=True)
        for s in todo:
            if s.kind == Kind.FUNCTION:
                made.append((s, _function_execution(defs, s.key, n).pk))
            elif s.kind == Kind.JOB:
                made.append((s, _job(defs, s.key, n)))
            elif s.kind == Kind.WORKFLOW:
                made.append((s, _workflow_execution(defs, s.key, n)))
            elif s.kind == Kind.RUN:
                made.append((s, _run(defs, s.key, n)))
        for kind, model in _MODELS.items():
            pks = {str(pk): s for s, pk in made if s.kind == kind}
            attnames = [f.attname for f in _copied_fields(model)]
            rows = model.objects.filter(pk__in=list(pks)).values("pk", *attnames)
            children: dict[str, list[dict]] = {pk: [] for pk in pks}
            if kind in _CHILDREN:
                child, fk = _CHILDREN[kind]
                child_attnames = [f.attname for f in _copied_fields(child)]
                qs = child.objects.filter(**{f"{fk}__in": list(pks)}).order_by("pk")
                for c in qs.values(*child_attnames):
                    children[str(c[fk])].append(c)
            for row in rows:
                s, anchor = pks[str(row["pk"])], row[_ANCHOR[kind]]
                _EXEMPLARS[(defs.org.slug, kind, s.key)] = (
                    _template(model, row, anchor),
                    [_template(_CHILDREN[kind][0], c, anchor) for c in children[str(row["pk"])]],
                )
        transaction.set_rollback(True)


def _entry(defs: Definitions, s: Scenario) -> tuple[dict, list[dict]]:
    """The exemplar of `s`, pointed at this tenant's current rows."""
    row, children = _EXEMPLARS[(defs.org.slug, s.kind, s.key)]
    row = {**row, "tenant_id": str(defs.tenant.pk)}
    if s.kind == Kind.FUNCTION:
        row["function_id"] = defs.functions[s.key][0].pk
    elif s.kind == Kind.AUTOMATION:
        row["automation_rule_id"] = str(defs.rules[s.key][0].pk)
    elif s.kind == Kind.WORKFLOW:
        row["workflow_id"] = str(defs.workflows[s.key][0].pk)
    return row, children
