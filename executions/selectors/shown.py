"""What each kind shows: its inbox row, its detail page, its API links. One class per kind with
the same attributes and methods, and `SHOWN` (kind -> it), so that the rest of the read side
iterates the mapping instead of asking `if kind == ...`. Each class is meant to move into its
kind's package (executions/kinds/<kind>/) as that kind's display part."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from django.db.models import Model
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from executions.filters import KINDS
from executions.models import Kind, Tenant

# The columns every kind's row reads besides its own (the heavy JSON and stack columns stay in
# the database).
_COMMON_ROW_FIELDS = ("tenant_id", "status", "error_message", "fingerprint")
# Columns a chain's items leave in the database: the timeline shows none of them.
HEAVY = {"payload", "result", "params", "workflow_definition", "execution_state", "node_states"}


def log_lines(raw: Any) -> list[dict]:
    """Log lines as {timestamp, level, message, extra}; anything odd is shown, not dropped."""
    out = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict):
            extra = {k: v for k, v in entry.items() if k not in ("timestamp", "level", "message")}
            out.append(
                {
                    "timestamp": parse_datetime(str(entry.get("timestamp") or "")),
                    "level": str(entry.get("level") or "info").lower(),
                    "message": str(entry.get("message", "")),
                    "extra": extra,
                }
            )
        else:
            out.append({"timestamp": None, "level": "info", "message": str(entry), "extra": {}})
    return out


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


class Shown:
    """The display part of one kind. Subclasses set the attributes and override what differs."""

    kind: ClassVar[str]
    label: ClassVar[str]  # "Function execution": a detail page's title
    short: ClassVar[str]  # "Function": the badge
    active_statuses: ClassVar[tuple[str, ...]]  # not final yet: the console polls the row
    # Kinds whose retry clones the item name the link to the original (retry_of / source_run);
    # None: the kind retries in place and keeps its history in Attempt rows.
    clone_parent: ClassVar[str | None] = None
    row_fields: ClassVar[tuple[str, ...]]  # the inbox row's own columns, with its pk and time
    row_related: ClassVar[tuple[str, ...]] = ()
    retried_by_fields: ClassVar[tuple[str, ...]] = ()  # besides pk, status and time
    detail_related: ClassVar[tuple[str, ...]] = ()
    started_field: ClassVar[str]
    finished_field: ClassVar[str] = "finished_at"
    has_logs: ClassVar[bool] = False  # the item's own `logs` column
    asks_host: ClassVar[bool] = False  # its Retry form asks for a target host
    input_label: ClassVar[str] = "Input"  # the detail page's headings for input() and output()
    output_label: ClassVar[str] = "Output"
    no_output_note: ClassVar[str] = ""  # said after "No output" when output() is None
    input_field: ClassVar[str]
    output_field: ClassVar[str | None] = None
    retried_text: ClassVar[str]  # formatted with the services.RetryOutcome as `outcome`
    api_url_names: ClassVar[tuple[str, str]]  # the item's API route and its retry route
    waits_for_host: ClassVar[bool] = False  # an unprocessed item waits for a live host worker

    @property
    def meta(self):
        return KINDS[self.kind]

    @property
    def template(self) -> str:
        """The detail page's part for this kind: partials `facts` and `sections`."""
        return f"console/kinds/{self.kind}.html"

    def name(self, obj: Model) -> str:
        """The kind's name field (KINDS' name_field), read from the item and what it selected."""
        value = obj
        for part in self.meta.name_field.split("__"):
            value = getattr(value, part)
        return value

    def error(self, obj: Model) -> str:
        return obj.error_message or ""

    def attempts(self, obj: Model) -> int | None:
        """The attempt number from the item's own counter; None: count its retry chain."""
        return None

    def logs(self, obj: Model) -> list[dict]:
        return log_lines(obj.logs) if self.has_logs else []

    def extras(self, obj: Model) -> dict[str, Any]:
        """What only this kind's detail page shows (actions, events, tasks, nodes)."""
        return {}

    def input(self, obj: Model) -> Any:
        return getattr(obj, self.input_field)

    def output(self, obj: Model) -> Any:
        return getattr(obj, self.output_field) if self.output_field else None

    def retried_message(self, outcome: Any) -> str:
        """The console's message after a retry (outcome: a services.RetryOutcome)."""
        return self.retried_text.format(outcome=outcome)

    def api_args(self, tenant: Tenant, obj: Model) -> list[str]:
        return [str(obj.pk)]

    def api_urls(self, tenant: Tenant, obj: Model) -> tuple[str, str]:
        """The item's URL in its kind's API and the URL that retries it."""
        args = self.api_args(tenant, obj)
        return tuple(reverse(name, args=args) for name in self.api_url_names)

    def name_lookup(self) -> tuple[type[Model], str] | None:
        """The model and field naming the item's source (None: the source is its own name)."""
        head, _, attr = self.meta.name_field.partition("__")
        if not attr:
            return None
        return self.meta.model._meta.get_field(head).related_model, attr


class FunctionShown(Shown):
    kind = Kind.FUNCTION
    label, short = "Function execution", "Function"
    active_statuses = ("running",)
    clone_parent = "retry_of"
    row_fields = ("id", "executed_at", "finished_at", "retry_count", "retry_of_id")
    row_fields += ("function__id", "function__name")
    row_related = ("function", "retried_by")
    detail_related = ("function", "retry_of", "retried_by")
    started_field = "executed_at"
    has_logs = True
    input_field = "payload"
    output_field = "result"
    retried_text = "Retried as execution {outcome.new_id}: {outcome.obj.status}"
    api_url_names = ("api-function-execution", "api-function-retry-by-id")

    def api_args(self, tenant, obj):
        return [tenant.functions_project_id, obj.function_id, str(obj.pk)]

    def attempts(self, obj):
        return obj.retry_count + 1


class AutomationShown(Shown):
    kind = Kind.AUTOMATION
    label, short = "Automation execution", "Automation"
    active_statuses = ("pending", "running")
    row_fields = ("execution_id", "updated_at", "attempt", "failed_action_index")
    row_fields += ("automation_rule__id", "automation_rule__name")
    row_related = ("automation_rule",)
    detail_related = ("automation_rule",)
    started_field, finished_field = "started_at", "completed_at"
    has_logs = True
    input_label, output_label = "Trigger data", "Counters"
    input_field = "trigger_data"
    retried_text = "Retry queued: the execution is {outcome.obj.status}"
    api_url_names = ("api-automation-execution", "api-automation-retry")

    def attempts(self, obj):
        return obj.attempt

    def extras(self, obj):
        actions = (obj.execution_context or {}).get("actions") or []
        logs = log_lines(obj.logs)
        failed = obj.failed_action_index
        out = []
        for index, action in enumerate(actions):
            if failed is not None and index == failed:
                state = "failed"
            elif index < obj.actions_successful or (failed is not None and index < failed):
                state = "succeeded"
            elif obj.status in self.active_statuses:
                state = "pending"
            else:
                state = "not run"
            is_dict = isinstance(action, dict)
            out.append(
                {
                    "index": index,
                    "handler": action.get("handler", "") if is_dict else str(action),
                    "params": pretty(action.get("params", {})) if is_dict else "",
                    "state": state,
                    "logs": [e for e in logs if e["extra"].get("action_index") == index],
                }
            )
        return {"actions": out}

    def output(self, obj):
        return {
            "actions_total": obj.actions_total,
            "actions_successful": obj.actions_successful,
            "actions_failed": obj.actions_failed,
            "failed_action_index": obj.failed_action_index,
        }


class JobShown(Shown):
    kind = Kind.JOB
    label, short = "Job", "Job"
    active_statuses = ("unprocessed", "processing")
    clone_parent = "retry_of"
    row_fields = ("job_id", "updated_at", "operation_type", "target_hostname", "retry_of_id")
    row_related = ("retried_by",)
    retried_by_fields = ("retried_by__target_hostname",)  # what the clone waits for
    detail_related = ("retry_of", "retried_by")
    started_field = "created_at"
    has_logs = True
    asks_host = waits_for_host = True
    input_label = "Operation"
    input_field = "operation"
    output_field = "result"
    retried_text = "Retried as job {outcome.new_id} on {outcome.obj.target_hostname}"
    api_url_names = ("api-job", "api-job-retry")

    def extras(self, obj):
        return {"events": list(obj.events.all())}


class WorkflowShown(Shown):
    kind = Kind.WORKFLOW
    label, short = "Workflow execution", "Workflow"
    active_statuses = ("RUNNING",)
    row_fields = ("id", "updated_at", "reason_for_incompletion", "attempt")
    row_fields += ("workflow__id", "workflow__external_id", "workflow__version")
    row_related = ("workflow",)
    detail_related = ("workflow",)
    started_field, finished_field = "start_time", "end_time"
    no_output_note = " at execution level; see each task's output above"
    input_field = "input"
    retried_text = "Workflow resumed from its failure points"
    api_url_names = ("api-workflow-execution", "api-workflow-retry")

    def api_args(self, tenant, obj):
        return [tenant.workflows_project, str(obj.pk)]

    def error(self, obj):
        return obj.error_message or obj.reason_for_incompletion or ""

    def attempts(self, obj):
        return obj.attempt

    def extras(self, obj):
        runs = {t.task_external_id: t for t in obj.task_executions.all()}
        out = []
        for definition in obj.workflow.tasks or []:
            external_id = definition.get("externalId", "")
            task = runs.get(external_id)
            out.append(
                {
                    "external_id": external_id,
                    "handler": definition.get("handler", ""),
                    "depends_on": definition.get("dependsOn", []),
                    "optional": bool(definition.get("isOptional")),
                    "status": task.status if task else "SCHEDULED",
                    "attempts": task.attempts if task else 0,
                    "max_attempts": task.max_attempts if task else 0,
                    "output": pretty(task.output) if task and task.output is not None else "",
                    "error_message": task.error_message if task else None,
                    "error_stack": task.error_stack if task else None,
                    "logs": log_lines(task.logs) if task else [],
                    "run_as": task.run_as if task else "",
                }
            )
        return {"tasks": out}


class RunShown(Shown):
    kind = Kind.RUN
    label, short = "Run", "Run"
    active_statuses = ("running", "waiting")
    clone_parent = "source_run"
    row_fields = ("id", "started_at", "summary", "workflow_id", "source_run_id")
    row_related = ("retried_by",)
    detail_related = ("source_run", "retried_by")
    started_field = "started_at"
    input_label, output_label = "Inputs", "Node outputs (execution state)"
    input_field = "prop_values"
    output_field = "execution_state"
    retried_text = "Retried as run {outcome.new_id}"
    api_url_names = ("api-run", "api-run-retry")

    def error(self, obj):
        return obj.error_message or obj.summary or ""

    def extras(self, obj):
        definition = obj.workflow_definition or {}
        nodes: dict = definition.get("nodes") or {}
        states = obj.node_states or {}
        outputs = obj.execution_state or {}
        triggers = definition.get("triggerNodeIds") or []
        order = [n for n in triggers if n in nodes] + [n for n in nodes if n not in triggers]
        out = []
        for node_id in order:
            node = nodes.get(node_id) or {}
            handler = node.get("handler", "") or ("trigger" if node_id in triggers else "")
            state = states.get(node_id) or {}
            out.append(
                {
                    "id": node_id,
                    "handler": handler,
                    "depends_on": node.get("dependsOn", []),
                    "optional": bool(node.get("optional")),
                    "status": state.get("status", "not run"),
                    "carried_over": bool(state.get("carriedOver")),
                    "error": state.get("error") or state.get("reason") or "",
                    "output": pretty(outputs[node_id]) if node_id in outputs else "",
                    "logs": log_lines(state.get("logs") or []),
                }
            )
        return {"nodes": out}


SHOWN: dict[str, Shown] = {
    shown.kind: shown
    for shown in (FunctionShown(), AutomationShown(), JobShown(), WorkflowShown(), RunShown())
}


def row_fields(kind: str) -> tuple[str, ...]:
    """The columns an inbox row of `kind` reads (with its retry's, for kinds that clone)."""
    shown = SHOWN[kind]
    fields = _COMMON_ROW_FIELDS + shown.row_fields
    if shown.clone_parent:
        meta = KINDS[kind]
        pk = meta.model._meta.pk.name
        fields += (f"retried_by__{pk}", "retried_by__status", f"retried_by__{meta.time_field}")
        fields += shown.retried_by_fields
    return fields


def started(kind: str, obj: Model) -> datetime | None:
    return getattr(obj, SHOWN[kind].started_field, None)


def finished(kind: str, obj: Model) -> datetime | None:
    return getattr(obj, SHOWN[kind].finished_field, None)
