"""What functions show in the console and link to in the API (kinds/shown.py)."""

from __future__ import annotations

from django.contrib.admin.utils import quote
from django.urls import reverse

from ...work import secrets
from ..shown import Shown


class FunctionShown(Shown):
    short = "Function"
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

    def definition(self, obj):
        # Edited in the admin (a code editor field) as through the API: both make versions.
        url = reverse("admin:executions_function_change", args=[quote(obj.function_id)])
        return f"{obj.function.name} (now v{obj.function.version})", url

    def extras(self, obj):
        """The JavaScript that ran and its environment, each secret value masked."""
        return {"environment": secrets.masked_values(obj.environment or {})}

    def attempts(self, obj):
        return obj.retry_count + 1
