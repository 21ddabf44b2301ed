"""What automations show in the console and link to in the API (kinds/shown.py)."""

from __future__ import annotations

from django.contrib.admin.utils import quote
from django.urls import reverse

from ...work import secrets
from ..base import unit_name
from ..shown import Shown, log_lines, pretty


def _definition(action: dict) -> dict:
    """What the console shows of an action: a handler's params, else the whole unit (an HTTP
    request's url and headers, say), secret values masked."""
    shown = action.get("params", {}) if "handler" in action else action
    return secrets.masked_deep(shown)


class AutomationShown(Shown):
    short = "Automation"
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

    def definition(self, obj):
        # Rules are edited in the admin (their actions checked there as by the API).
        url = reverse(
            "admin:executions_automationrule_change", args=[quote(obj.automation_rule_id)]
        )
        return f"rule {obj.automation_rule.name} (now v{obj.automation_rule.version})", url

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
                    "handler": unit_name(action) if is_dict else str(action),
                    "params": pretty(_definition(action)) if is_dict else "",
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
