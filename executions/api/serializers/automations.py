"""Seed 001 (AlgaPSA automations), snake_case: executions with their `_links`, the rule."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.models import (
    Attempt,
    AutomationExecution,
    AutomationRule,
)
from executions.work import secrets

from .common import (
    AttemptSerializer,
    ChoiceParam,
    DateTimeParam,
    DefinitionField,
    ListQuery,
    LogEntrySerializer,
    ObjectField,
    UuidParam,
    log_entry,
    window_lookups,
)

# --- seed 001: automations ----------------------------------------------------------------------


class LinkSerializer(serializers.Serializer):
    href = serializers.CharField()
    method = serializers.ChoiceField(choices=["GET", "POST"])


class AutomationLinksSerializer(serializers.Serializer):
    self = LinkSerializer()
    retry = LinkSerializer()
    rule = LinkSerializer()
    collection = LinkSerializer()


def automation_links(obj: AutomationExecution) -> dict:
    pk = str(obj.pk)
    return {
        "self": {"href": reverse("api-automation-execution", args=[pk]), "method": "GET"},
        "retry": {"href": reverse("api-automation-retry", args=[pk]), "method": "POST"},
        "rule": {
            "href": reverse("api-automation-rule", args=[str(obj.automation_rule_id)]),
            "method": "GET",
        },
        "collection": {"href": reverse("api-automation-executions"), "method": "GET"},
    }


class AutomationExecutionSerializer(serializers.Serializer):
    """Every field of seed 001's AutomationExecutionResponse."""

    execution_id = serializers.UUIDField()
    automation_rule_id = serializers.UUIDField()
    trigger_data = ObjectField()
    status = serializers.ChoiceField(choices=AutomationExecution.Status.choices)
    started_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True, min_value=0)
    actions_total = serializers.IntegerField(min_value=0)
    actions_successful = serializers.IntegerField(min_value=0)
    actions_failed = serializers.IntegerField(min_value=0)
    error_message = serializers.CharField(allow_null=True)
    error_stack = serializers.CharField(allow_null=True)
    failed_action_index = serializers.IntegerField(allow_null=True)
    execution_context = DefinitionField()
    logs = serializers.SerializerMethodField()
    tenant = serializers.UUIDField(source="tenant_id")
    _links = serializers.SerializerMethodField()

    @extend_schema_field(LogEntrySerializer(many=True))
    def get_logs(self, obj: AutomationExecution) -> list[dict]:
        return [log_entry(e) for e in obj.logs or []]

    @extend_schema_field(AutomationLinksSerializer)
    def get__links(self, obj: AutomationExecution) -> dict:
        return automation_links(obj)


class AutomationExecutionDetailSerializer(AutomationExecutionSerializer):
    """The detail adds the attempt history (earlier failed attempts, never overwritten)."""

    attempt = serializers.IntegerField()
    attempts = serializers.SerializerMethodField()

    @extend_schema_field(AttemptSerializer(many=True))
    def get_attempts(self, obj: AutomationExecution) -> list[dict]:
        rows = Attempt.objects.filter(kind="automation", object_id=str(obj.pk)).order_by("number")
        return AttemptSerializer(rows, many=True).data


class AutomationExecutionResponseSerializer(serializers.Serializer):
    data = AutomationExecutionSerializer()


class AutomationExecutionDetailResponseSerializer(serializers.Serializer):
    data = AutomationExecutionDetailSerializer()


class PaginationSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    next_cursor = serializers.CharField(allow_null=True)
    has_next = serializers.BooleanField()


class AutomationExecutionListSerializer(serializers.Serializer):
    data = AutomationExecutionSerializer(many=True)
    pagination = PaginationSerializer()


class AutomationRuleSerializer(serializers.Serializer):
    rule_id = serializers.UUIDField(source="pk")
    name = serializers.CharField()
    trigger = ObjectField()
    actions = serializers.SerializerMethodField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    tenant = serializers.UUIDField(source="tenant_id")
    _links = serializers.SerializerMethodField()

    @extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": {}}})
    def get_actions(self, obj: AutomationRule) -> list:
        return secrets.masked_deep(obj.actions if isinstance(obj.actions, list) else [])

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get__links(self, obj: AutomationRule) -> dict:
        return {
            "self": {"href": reverse("api-automation-rule", args=[str(obj.pk)]), "method": "GET"},
            "executions": {
                "href": f"{reverse('api-automation-executions')}?rule_id={obj.pk}",
                "method": "GET",
            },
        }


class AutomationRuleResponseSerializer(serializers.Serializer):
    data = AutomationRuleSerializer()


# --- inputs -------------------------------------------------------------------------------------


class AutomationExecutionListQuery(ListQuery):
    status = ChoiceParam(choices=AutomationExecution.Status.values)
    rule_id = UuidParam(help_text="automation rule UUID")
    since = DateTimeParam(help_text="ISO 8601 date-time (started_at)")
    until = DateTimeParam(help_text="ISO 8601 date-time (started_at)")

    lookups = {
        **ListQuery.lookups,
        "status": "status",
        "rule_id": "automation_rule_id",
        **window_lookups("started_at"),
    }
