"""What runs show in the console and link to in the API (kinds/shown.py)."""

from __future__ import annotations

from django.urls import reverse

from ...models import SavedWorkflow
from ..base import unit_name
from ..shown import Shown, dependency_order, log_lines, pretty


class RunShown(Shown):
    short = "Run"
    clone_parent = "source_run"
    row_fields = ("id", "started_at", "summary", "workflow_id", "source_run_id")
    row_related = ("retried_by",)
    detail_related = ("source_run", "retried_by")
    started_field = "started_at"
    input_label, output_label = "Inputs", "Node outputs (execution state)"
    input_field = "prop_values"
    output_field = "execution_state"
    outputs_per_node = True
    retried_text = "Retried as run {outcome.new_id}"
    api_url_names = ("api-run", "api-run-retry")

    def error(self, obj):
        return obj.error_message or obj.summary or ""

    def definition(self, obj):
        # A saved workflow is replaced through PUT /v1/workflows/{id} (the admin only shows
        # it); a run started without one (the demo's) has none to link to.
        saved = SavedWorkflow.objects.filter(tenant_id=obj.tenant_id, pk=obj.workflow_id)
        name = saved.values_list("name", flat=True).first()
        if name is None:
            return None
        return f"{name} (saved workflow)", reverse("api-run-workflow", args=[obj.workflow_id])

    def extras(self, obj):
        definition = obj.workflow_definition or {}
        nodes: dict = definition.get("nodes") or {}
        states = obj.node_states or {}
        outputs = obj.execution_state or {}
        triggers = definition.get("triggerNodeIds") or []
        order = [n for n in triggers if n in nodes] + [n for n in nodes if n not in triggers]
        order = dependency_order(
            order, {n: (nodes.get(n) or {}).get("dependsOn") or [] for n in order}
        )
        out = []
        for node_id in order:
            node = nodes.get(node_id) or {}
            # What the node runs: its handler, "POST <url>" or "javascript" (kinds/base.py).
            handler = unit_name(node) or ("trigger" if node_id in triggers else "")
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
