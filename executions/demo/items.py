"""Running one demo item through the engine, right here, never through the queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import models
from django.utils import timezone

from executions.kinds.automations import run as automations_run
from executions.kinds.functions import retry as functions_retry
from executions.kinds.functions import run as functions_run
from executions.kinds.jobs import run as jobs_run
from executions.kinds.jobs.definition import validate_definition as validate_operation
from executions.kinds.runs import run as runs_run
from executions.kinds.runs.definition import validate_definition as validate_run_definition
from executions.kinds.workflows import run as workflows_run
from executions.models import (
    AutomationExecution,
    AutomationRule,
    Function,
    FunctionExecution,
    Job,
    JobEvent,
    Tenant,
    Workflow,
)
from executions.tenancy import Actor

from .cast import Org
from .specs import (
    _automation_specs,
    _fill,
    _function_specs,
    _job_specs,
    _run_specs,
    _workflow_specs,
)

# --- running one item through the engine, without the queue ---------------------------------------


@dataclass
class Definitions:
    tenant: Tenant
    org: Org
    functions: dict[str, tuple[Function, dict]] = field(default_factory=dict)
    rules: dict[str, tuple[AutomationRule, dict]] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    workflows: dict[str, tuple[Workflow, dict]] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)


def _get_or_create_all(model: type[models.Model], tenant: Tenant, wanted: dict[Any, dict]) -> dict:
    """{key: row} for the demo definitions `wanted` ({key: field values}), creating the missing
    ones in one INSERT. The key is the name (external id) the specs use."""
    key = "external_id" if model is Workflow else "name"
    found = {}
    for o in model.objects.filter(tenant=tenant, **{f"{key}__in": list(wanted)}):
        k = getattr(o, key)
        if model is not Workflow or o.version == wanted[k]["version"]:
            found[k] = o
    missing = [model(tenant=tenant, **values) for k, values in wanted.items() if k not in found]
    for obj in missing:
        obj.clean()  # checked as the admin checks a definition: the demo's are valid ones
    found.update((getattr(o, key), o) for o in model.objects.bulk_create(missing))
    return found


def _definitions(tenant: Tenant, org: Org) -> Definitions:
    """This tenant's demo functions, automation rules and workflows (created when missing; kept as
    they are when they exist), and the job and run specs."""
    defs = Definitions(tenant=tenant, org=org)
    specs = {s["name"]: s for s in _function_specs(org)}
    functions = _get_or_create_all(
        Function,
        tenant,
        {
            name: {
                "name": name,
                "handler": s["handler"],
                "params": s["params"],
                "timeout_ms": s.get("timeout_ms", 30_000),
            }
            for name, s in specs.items()
        },
    )
    defs.functions = {name: (functions[name], s) for name, s in specs.items()}
    specs = {s["name"]: s for s in _automation_specs(org)}
    rules = _get_or_create_all(
        AutomationRule,
        tenant,
        {
            name: {"name": name, "trigger": s["trigger"], "actions": s["actions"]}
            for name, s in specs.items()
        },
    )
    defs.rules = {name: (rules[name], s) for name, s in specs.items()}
    specs = {s["external_id"]: s for s in _workflow_specs(org)}
    workflows = _get_or_create_all(
        Workflow,
        tenant,
        {
            name: {"external_id": name, "version": s["version"], "tasks": s["tasks"]}
            for name, s in specs.items()
        },
    )
    defs.workflows = {name: (workflows[name], s) for name, s in specs.items()}
    defs.jobs = {spec["key"]: spec for spec in _job_specs(org)}
    defs.runs = {spec["workflow_id"]: spec for spec in _run_specs(org)}
    for spec in defs.jobs.values():
        validate_operation({"type": spec["type"], "data": spec["data"]})
    for spec in defs.runs.values():
        validate_run_definition(spec["definition"])
    return defs


def _function_execution(defs: Definitions, name: str, n: int) -> FunctionExecution:
    fn, spec = defs.functions[name]
    return functions_run.invoke_function(fn, _fill(spec["payload"], n), queued=False)


def _retry_function_execution(original: FunctionExecution) -> FunctionExecution:
    """A retry of a function execution by the kind's own rule (kinds/functions/retry.py), run
    right here: the demo's seeding has no worker to queue it for."""
    actor = Actor(tenant=original.tenant, permissions=frozenset(), source="cli")
    (retried,) = functions_retry.RULE.retry(actor, [original.pk], queued=False)
    functions_run.execute(retried.new_id)
    return FunctionExecution.objects.get(pk=retried.new_id)


def _automation_executions(defs: Definitions, items: list[tuple[str, int]]) -> list[str]:
    """Create executions of (rule name, n) and run them as one batch, like a worker would."""
    executions = AutomationExecution.objects.bulk_create(
        AutomationExecution(
            tenant=defs.tenant,
            automation_rule=rule,
            trigger_data=_fill(spec["data"], n),
            actions_total=len(rule.actions),
            execution_context={"rule_version": rule.version, "actions": rule.actions},
        )
        for rule, spec, n in ((*defs.rules[name], n) for name, n in items)
    )
    ids = [str(e.pk) for e in executions]
    automations_run.execute(ids)
    return ids


def _new_job(defs: Definitions, key: str, n: int) -> Job:
    spec = defs.jobs[key]
    job = Job.objects.create(
        tenant=defs.tenant,
        operation={"type": spec["type"], "data": _fill(spec["data"], n)},
        operation_type=spec["type"],
        target_hostname=spec["host"],
    )
    JobEvent.objects.create(
        job=job, revision=1, type="created", data={"target_hostname": spec["host"]}
    )
    return job


def _job(defs: Definitions, key: str, n: int) -> str:
    job = _new_job(defs, key, n)
    jobs_run.execute(str(job.pk), job.target_hostname)
    return str(job.pk)


def _processing_job(defs: Definitions, n: int) -> str:
    """A job a host agent holds right now: the lease runs for a day, so the reaper leaves it alone
    while the demo is in use and a retry refuses it as still in flight."""
    job = _new_job(defs, "backup", n)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.PROCESSING,
        taken_by=job.target_hostname,
        revision=2,
        lease_owner=f"{job.target_hostname}:agent",
        lease_token=1,
        lease_expires_at=now + timedelta(hours=24),
        updated_at=now,
    )
    JobEvent.objects.create(
        job=job, revision=2, type="processing", data={"hostname": job.target_hostname}
    )
    return str(job.pk)


def _workflow_execution(defs: Definitions, external_id: str, n: int) -> str:
    workflow, spec = defs.workflows[external_id]
    execution = workflows_run.new_execution(workflow, _fill(spec["input"], n), {"source": "demo"})
    workflows_run.execute(str(execution.pk))
    return str(execution.pk)


def _run(defs: Definitions, workflow_id: str, n: int, user: str = "") -> str:
    spec = defs.runs[workflow_id]
    run = runs_run.new_run(
        defs.tenant,
        spec["definition"],
        workflow_id=workflow_id,
        prop_values=_fill(spec["props"], n),
        triggered_by=user,
        owner=user,
    )
    run.save(force_insert=True)
    runs_run.execute(run.pk)
    return run.pk
