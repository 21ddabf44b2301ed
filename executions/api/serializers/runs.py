"""Seed 004 (workflow runs), camelCase, every answer in the seed's envelope."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.errors import InvalidInput
from executions.kinds.runs import definition as definitions
from executions.models import Run

from .common import (
    ChoiceParam,
    DateTimeParam,
    DefinitionField,
    DefinitionListQuery,
    Input,
    ListQuery,
    ObjectField,
    TextParam,
    field_path,
    invalid,
    window_lookups,
)

# --- seed 004: runs -----------------------------------------------------------------------------


class SimulationForkSerializer(serializers.Serializer):
    chainId = serializers.IntegerField()
    forkId = serializers.CharField()
    rpcUrl = serializers.CharField()


@extend_schema_field({"type": "object", "additionalProperties": {}})
class RunSerializer(serializers.Serializer):
    """Every field of seed 004's run."""

    executionState = ObjectField(source="execution_state")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    id = serializers.CharField()
    isDustTest = serializers.BooleanField(source="is_dust_test")
    isSimulation = serializers.BooleanField(source="is_simulation")
    organizationId = serializers.CharField(source="tenant_id")
    propValues = ObjectField(source="prop_values")
    simulationForks = serializers.ListField(
        source="simulation_forks", child=serializers.DictField()
    )
    simulationMode = serializers.CharField(source="simulation_mode")
    sourceRunId = serializers.CharField(source="source_run_id", allow_null=True)
    startedAt = serializers.DateTimeField(source="started_at")
    status = serializers.ChoiceField(choices=Run.Status.choices)
    summary = serializers.CharField()
    totalCu = serializers.FloatField(source="total_cu")
    triggerNodeId = serializers.CharField(source="trigger_node_id")
    triggerSource = serializers.CharField(source="trigger_source")
    triggeredBy = serializers.CharField(source="triggered_by")
    workflowDefinition = DefinitionField(source="workflow_definition")
    workflowId = serializers.CharField(source="workflow_id")
    workflowOwnerUserId = serializers.CharField(source="workflow_owner_user_id")
    workflowVersion = serializers.IntegerField(source="workflow_version")


class RunDetailSerializer(RunSerializer):
    nodeStates = ObjectField(source="node_states")
    errorMessage = serializers.CharField(source="error_message", allow_null=True)
    errorStack = serializers.CharField(source="error_stack", allow_null=True)
    retriedBy = serializers.SerializerMethodField()
    progress = ObjectField()

    @extend_schema_field({"type": "string", "nullable": True})
    def get_retriedBy(self, obj: Run) -> str | None:
        return Run.objects.filter(source_run=obj.pk).values_list("pk", flat=True).first()


class RunEnvelopeSerializer(serializers.Serializer):
    code = serializers.IntegerField()
    data = RunSerializer()
    message = serializers.CharField()
    requestId = serializers.CharField()


class RunDetailEnvelopeSerializer(serializers.Serializer):
    code = serializers.IntegerField()
    data = RunDetailSerializer()
    message = serializers.CharField()
    requestId = serializers.CharField()


class RunListDataSerializer(serializers.Serializer):
    items = RunSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True)


class RunListEnvelopeSerializer(serializers.Serializer):
    code = serializers.IntegerField()
    data = RunListDataSerializer()
    message = serializers.CharField()
    requestId = serializers.CharField()


class SavedWorkflowSerializer(serializers.Serializer):
    """A saved workflow: the graph its runs snapshot (`version` goes up when it changes)."""

    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    definition = DefinitionField()
    version = serializers.IntegerField()
    organizationId = serializers.CharField(source="tenant_id")
    ownerUserId = serializers.CharField(source="owner_user_id")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class SavedWorkflowListDataSerializer(serializers.Serializer):
    items = SavedWorkflowSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True)


class SavedWorkflowListEnvelopeSerializer(serializers.Serializer):
    code = serializers.IntegerField()
    data = SavedWorkflowListDataSerializer()
    message = serializers.CharField()
    requestId = serializers.CharField()


class SavedWorkflowEnvelopeSerializer(serializers.Serializer):
    code = serializers.IntegerField()
    data = SavedWorkflowSerializer()
    message = serializers.CharField()
    requestId = serializers.CharField()


# --- inputs -------------------------------------------------------------------------------------


class RunListQuery(ListQuery):
    status = ChoiceParam(choices=Run.Status.values)
    workflowId = TextParam(maximum=100)
    since = DateTimeParam(help_text="ISO 8601 date-time (startedAt)")
    until = DateTimeParam(help_text="ISO 8601 date-time (startedAt)")

    lookups = {
        **ListQuery.lookups,
        "status": "status",
        "workflowId": "workflow_id",
        **window_lookups("started_at"),
    }


@extend_schema_field(
    {
        "type": "object",
        "required": ["nodes", "triggerNodeIds"],
        "properties": {
            "nodes": {"type": "object", "additionalProperties": {"type": "object"}},
            "triggerNodeIds": {"type": "array", "items": {"type": "string"}},
            "inputSchema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key"],
                    "properties": {
                        "key": {"type": "string"},
                        "type": {"type": "string", "enum": list(definitions.INPUT_TYPES)},
                        "required": {"type": "boolean"},
                        "description": {"type": "string"},
                    },
                },
            },
            "variableDefs": {"type": "array", "items": {"type": "object"}},
        },
    }
)
class DefinitionField(serializers.Field):
    """A workflow definition, checked whole by kinds/runs/definition.py (its messages name the
    field: `definition.nodes.charge.url ...`)."""

    def to_internal_value(self, data) -> dict:
        try:
            return definitions.clean(data, where=field_path(self))
        except InvalidInput as exc:
            raise invalid(exc.message) from None

    def to_representation(self, value):
        return value


class SavedWorkflowInput(Input):
    """POST /v1/workflows and PUT /v1/workflows/{id}: the whole workflow."""

    body_required = True

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, default=""
    )
    definition = DefinitionField()


class SavedWorkflowListQuery(DefinitionListQuery):
    """GET /v1/workflows: newest first, `q` in the name."""


class RunStartInput(Input):
    """POST /v1/workflows/{id}/runs: the run's inputs (checked against the workflow's
    inputSchema) and, for a workflow with several triggers, the one that fires (default: the
    first)."""

    inputs = serializers.DictField(required=False, default=dict)
    triggerNodeId = TextParam(maximum=64, required=False)
