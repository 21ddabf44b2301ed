"""What workflows show in the console and link to in the API (kinds/shown.py)."""

from __future__ import annotations

from django.contrib.admin.utils import quote
from django.urls import reverse

from ..base import unit_name
from ..shown import Shown, dependency_order, log_lines, pretty
from . import cognite as typed


class WorkflowShown(Shown):
    short = "Workflow"
    row_fields = ("id", "updated_at", "reason_for_incompletion", "attempt")
    row_fields += ("workflow__id", "workflow__external_id", "workflow__version")
    row_related = ("workflow",)
    detail_related = ("workflow",)
    started_field, finished_field = "start_time", "end_time"
    no_output_note = " at execution level; see each task's output above"
    outputs_per_node = True
    input_field = "input"
    retried_text = "Workflow resumed from its failure points"
    api_url_names = ("api-workflow-execution", "api-workflow-retry")

    def api_args(self, tenant, obj):
        return [tenant.workflows_project, str(obj.pk)]

    def definition(self, obj):
        # The version's tasks, edited in the admin (or upserted again through Cognite's API).
        url = reverse("admin:executions_workflow_change", args=[quote(obj.workflow_id)])
        return f"{obj.workflow.external_id} version {obj.workflow.version}", url

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
                    "handler": (
                        typed.label(definition)
                        if typed.is_typed(definition)
                        else unit_name(definition)
                    ),
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
        order = dependency_order(
            [t["external_id"] for t in out], {t["external_id"]: t["depends_on"] for t in out}
        )
        by_id = {t["external_id"]: t for t in out}
        return {"tasks": [by_id[i] for i in order]}
