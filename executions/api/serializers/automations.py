"""Seed 001 (AlgaPSA automations), snake_case: executions with their `_links`, the rule."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.kinds.automations import definition
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
    DefinitionListQuery,
    Input,
    ListQuery,
    LogEntrySerializer,
    ObjectField,
    Param,
    TextParam,
    UuidParam,
    invalid,
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


def rule_links(obj: AutomationRule) -> dict:
    href = reverse("api-automation-rule", args=[str(obj.pk)])
    return {
        "self": {"href": href, "method": "GET"},
        "update": {"href": href, "method": "PUT"},
        "delete": {"href": href, "method": "DELETE"},
        "executions": {
            "href": f"{reverse('api-automation-executions')}?rule_id={obj.pk}",
            "method": "GET",
        },
        "collection": {"href": reverse("api-automation-rules"), "method": "POST"},
    }


class AutomationRuleSerializer(serializers.Serializer):
    rule_id = serializers.UUIDField(source="pk")
    name = serializers.CharField()
    trigger = ObjectField()
    conditions = serializers.ListField(child=serializers.DictField())
    actions = serializers.SerializerMethodField()
    enabled = serializers.BooleanField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deleted_at = serializers.DateTimeField(allow_null=True)
    tenant = serializers.UUIDField(source="tenant_id")
    _links = serializers.SerializerMethodField()

    @extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": {}}})
    def get_actions(self, obj: AutomationRule) -> list:
        return secrets.masked_deep(obj.actions if isinstance(obj.actions, list) else [])

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get__links(self, obj: AutomationRule) -> dict:
        return rule_links(obj)


class AutomationRuleResponseSerializer(serializers.Serializer):
    data = AutomationRuleSerializer()


class AutomationRuleListSerializer(serializers.Serializer):
    data = AutomationRuleSerializer(many=True)
    pagination = PaginationSerializer()
    _links = serializers.DictField()


class AutomationEventResultSerializer(serializers.Serializer):
    event_type = serializers.CharField()
    execution_ids = serializers.ListField(child=serializers.UUIDField())
    executions = AutomationExecutionSerializer(many=True)
    _links = serializers.DictField()


class AutomationEventResponseSerializer(serializers.Serializer):
    data = AutomationEventResultSerializer()


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


class AutomationRuleListQuery(DefinitionListQuery):
    enabled = ChoiceParam(choices=["true", "false"], help_text="filter")
    event = TextParam(maximum=200, help_text="the trigger's event type")

    lookups = {**DefinitionListQuery.lookups, "event": "trigger__event"}

    def apply(self, qs, data=None):
        qs = super().apply(qs, data)
        enabled = self.validated_data.get("enabled")
        return qs.filter(enabled=enabled == "true") if enabled else qs


# A rule's fields, each checked by kinds/automations/definition.py: its InvalidInput names the
# field (`actions[1].url`, `conditions[0].operator`) and is the seed's 400 as it stands.
class _RuleParam(Param):
    def __init__(self, clean, **kwargs: Any) -> None:
        self.clean = clean
        super().__init__(empty_ok=False, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return self.clean(data)


@extend_schema_field({"type": "string", "maxLength": definition.MAX_NAME})
class _NameParam(_RuleParam):
    pass


@extend_schema_field(
    {
        "type": "object",
        "required": ["event"],
        "properties": {
            "type": {"type": "string", "enum": ["event"], "default": "event"},
            "event": {"type": "string", "description": "the event type, e.g. ticket.created"},
        },
    }
)
class _TriggerParam(_RuleParam):
    pass


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["field"],
            "properties": {
                "field": {"type": "string", "description": "dotted path in the event's data"},
                "operator": {
                    "type": "string",
                    "enum": list(definition.OPERATORS),
                    "default": "equals",
                },
                "value": {},
            },
        },
    }
)
class _ConditionsParam(_RuleParam):
    pass


@extend_schema_field(
    {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "additionalProperties": {},
            "description": "a unit of work: {handler, params, timeout}, {url, method, headers, "
            "body|json, timeout, expectStatus} or {code, env, limits}",
        },
    }
)
class _ActionsParam(_RuleParam):
    pass


@extend_schema_field({"type": "boolean", "default": True})
class _EnabledParam(_RuleParam):
    pass


class AutomationRuleRequestSerializer(Input):
    """A whole rule: POST creates one, PUT replaces one's definition (a new version)."""

    body_required = True
    name = _NameParam(definition.clean_name, required=True)
    trigger = _TriggerParam(definition.clean_trigger, required=True)
    conditions = _ConditionsParam(definition.clean_conditions, default=list)
    actions = _ActionsParam(definition.clean_actions, required=True)
    enabled = _EnabledParam(definition.clean_enabled, default=True)


@extend_schema_field({"type": "string", "maxLength": definition.MAX_EVENT_TYPE})
class _EventTypeParam(Param):
    def to_internal_value(self, data: Any) -> str:
        return definition.clean_event_type(data, "type")


@extend_schema_field({"type": "object", "additionalProperties": {}})
class _EventDataParam(Param):
    def to_internal_value(self, data: Any) -> dict:
        if not isinstance(data, dict):
            raise invalid("data must be an object")
        return data


class AutomationEventRequestSerializer(Input):
    body_required = True
    type = _EventTypeParam(empty_ok=False, required=True, help_text="e.g. ticket.created")
    data = _EventDataParam(empty_ok=False, default=dict, help_text="the event's fields")
