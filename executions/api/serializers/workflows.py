"""Seed 003 (Cognite workflows), camelCase and epoch-ms times: executions, their tasks and
definition, sessions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import empty

from executions.kinds.workflows import cognite as definition
from executions.models import (
    Attempt,
    WorkflowExecution,
)
from executions.work import secrets

from ..errors import OWN
from .common import (
    AttemptSerializer,
    CursorParam,
    EpochMsField,
    EpochMsParam,
    FilterQuery,
    Input,
    IntParam,
    ObjectField,
    Param,
    invalid,
    invalid_at,
)

# --- seed 003: workflows ------------------------------------------------------------------------


class WorkflowExecutionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    workflowExternalId = serializers.CharField(source="workflow.external_id")
    status = serializers.ChoiceField(choices=WorkflowExecution.Status.choices)
    engineExecutionId = serializers.UUIDField(source="engine_execution_id")
    createdTime = EpochMsField(source="created_time")
    metadata = ObjectField()
    version = serializers.CharField(source="workflow.version")
    startTime = EpochMsField(source="start_time", allow_null=True)
    endTime = EpochMsField(source="end_time", allow_null=True)
    reasonForIncompletion = serializers.CharField(source="reason_for_incompletion", allow_null=True)


def workflow_definition(tasks: list[dict], description: str | None = None) -> dict:
    """The workflow's tasks in Cognite's definition shape: those saved through the API as they
    were saved; seed_demo's handler tasks as function tasks whose function external id is the
    handler name."""
    out = []
    for task in tasks:
        if definition.is_typed(task):
            out.append(definition.cognite_task(task))
            continue
        out.append(
            {
                "externalId": task.get("externalId"),
                "type": "function",
                "parameters": {
                    "function": {
                        "externalId": task.get("handler", ""),
                        "data": secrets.masked_deep(task.get("params", {})),
                    },
                    "isAsyncComplete": False,
                },
                "retries": int(task.get("retries", 0)),
                "timeout": task.get("timeout"),
                "onFailure": "skipTask" if task.get("isOptional") else "abortWorkflow",
                "isOptional": bool(task.get("isOptional")),
                "dependsOn": [{"externalId": d} for d in task.get("dependsOn", [])],
            }
        )
    digest = hashlib.sha256(json.dumps(tasks, sort_keys=True).encode()).hexdigest()[:32]
    return {"hash": digest, "description": description, "tasks": out}


class WorkflowTaskExecutionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    externalId = serializers.CharField(source="task_external_id")
    status = serializers.CharField()
    taskType = serializers.SerializerMethodField()
    input = serializers.SerializerMethodField()
    output = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    startTime = EpochMsField(source="started_at", allow_null=True)
    endTime = EpochMsField(source="ended_at", allow_null=True)
    reasonForIncompletion = serializers.CharField(source="error_message", allow_null=True)
    attempts = serializers.IntegerField()
    maxAttempts = serializers.IntegerField(source="max_attempts")
    runAs = serializers.CharField(source="run_as")

    def _definition(self, obj) -> dict:
        tasks = self.context.get("definitions", {})
        return tasks.get(obj.task_external_id, {})

    @extend_schema_field(OpenApiTypes.STR)
    def get_taskType(self, obj) -> str:
        return self._definition(obj).get("type", "function")

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get_input(self, obj) -> dict:
        task = self._definition(obj)
        if definition.is_typed(task):
            return task["parameters"]
        return {
            "function": {
                "externalId": task.get("handler", ""),
                "data": secrets.masked_deep(task.get("params", {})),
            },
            "isAsyncComplete": False,
        }

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get_output(self, obj) -> dict:
        task = self._definition(obj)
        if definition.is_typed(task):
            return definition.cognite_output(task, obj.output)
        return {"callId": None, "functionId": None, "response": obj.output}

    @extend_schema_field({"type": "string", "nullable": True})
    def get_version(self, obj) -> str | None:
        return self.context.get("version")


class WorkflowExecutionDetailSerializer(WorkflowExecutionSerializer):
    input = ObjectField()
    workflowDefinition = serializers.SerializerMethodField()
    executedTasks = serializers.SerializerMethodField()
    attempt = serializers.IntegerField()
    attempts = serializers.SerializerMethodField()

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get_workflowDefinition(self, obj: WorkflowExecution) -> dict:
        return workflow_definition(obj.workflow.tasks, obj.workflow.description)

    @extend_schema_field(WorkflowTaskExecutionSerializer(many=True))
    def get_executedTasks(self, obj: WorkflowExecution) -> list[dict]:
        definitions = {t.get("externalId"): t for t in obj.workflow.tasks}
        tasks = obj.task_executions.order_by("started_at", "task_external_id")
        return WorkflowTaskExecutionSerializer(
            tasks, many=True, context={"definitions": definitions, "version": obj.workflow.version}
        ).data

    @extend_schema_field(AttemptSerializer(many=True))
    def get_attempts(self, obj: WorkflowExecution) -> list[dict]:
        rows = Attempt.objects.filter(kind="workflow", object_id=str(obj.pk)).order_by("number")
        return AttemptSerializer(rows, many=True).data


class WorkflowExecutionListSerializer(serializers.Serializer):
    items = WorkflowExecutionSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True)


class SessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    status = serializers.CharField()
    nonce = serializers.CharField()


class SessionListSerializer(serializers.Serializer):
    items = SessionSerializer(many=True)


class NonceSerializer(serializers.Serializer):
    nonce = serializers.CharField()


class SessionItemRequestSerializer(serializers.Serializer):
    tokenExchange = serializers.BooleanField(required=False)
    oneshotTokenExchange = serializers.BooleanField(required=False)
    clientId = serializers.CharField(required=False)
    clientSecret = serializers.CharField(required=False)


# --- inputs -------------------------------------------------------------------------------------


class Given(Param):
    """A required field whose absence is an error of the field's own (not DRF's "This field is
    required."): missing, null and "" all reach to_internal_value."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=True, **kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        return False, None if data is empty else data


@extend_schema_field(NonceSerializer)
class AuthenticationParam(Given):
    """{"nonce": ...}; errors name authentication.nonce, as the cognite-sdk reports them."""

    def to_internal_value(self, data: Any) -> str:
        nonce = data.get("nonce") if isinstance(data, dict) else None
        if not isinstance(nonce, str) or not nonce.strip():
            raise invalid_at("nonce", f"{self.path}.nonce is required")
        if "\x00" in nonce:  # no nonce has one, and PostgreSQL cannot even look it up
            raise invalid_at("nonce", f"{self.path}.nonce is not a valid, unused session nonce")
        return nonce


class WorkflowRetryRequestSerializer(Input):
    authentication = AuthenticationParam()


STATUSES = WorkflowExecution.Status.values


@extend_schema_field({"type": "array", "items": {"type": "string", "enum": STATUSES}})
class StatusListParam(Param):
    """A list of statuses (any case), or the GET route's comma-separated text."""

    def to_internal_value(self, data: Any) -> list[str] | None:
        if isinstance(data, str):
            data = [part for part in data.split(",") if part]
        if not isinstance(data, list) or not all(
            isinstance(x, str) and x.upper() in STATUSES for x in data
        ):
            raise invalid(f"{self.path} must be a list of {', '.join(STATUSES)}")
        return [x.upper() for x in data] or None


def _workflow_filter(w: object) -> bool:
    """{externalId, version?}: texts a lookup can carry (PostgreSQL refuses NUL)."""
    if not isinstance(w, dict) or not isinstance(w.get("externalId"), str):
        return False
    version = w.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int | str)):
        return False
    return all("\x00" not in str(v) for v in (w["externalId"], version or ""))


@extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": {}}})
class WorkflowFiltersParam(Param):
    def to_internal_value(self, data: Any) -> list[dict] | None:
        if not isinstance(data, list) or not all(_workflow_filter(w) for w in data):
            raise invalid(f"{self.path} must be a list of {{externalId, version}}")
        return data or None


class WorkflowExecutionFilter(FilterQuery):
    workflowFilters = WorkflowFiltersParam()
    createdTimeStart = EpochMsParam()
    createdTimeEnd = EpochMsParam()
    status = StatusListParam()

    lookups = {
        "status": "status__in",
        "createdTimeStart": "created_time__gte",
        "createdTimeEnd": "created_time__lte",
    }

    def apply(self, qs, data: dict | None = None):
        data = self.validated_data if data is None else data
        qs = super().apply(qs, data)
        if data.get("workflowFilters"):
            match = Q(pk__in=[])
            for w in data["workflowFilters"]:
                one = Q(workflow__external_id=w["externalId"])
                if w.get("version") is not None:
                    one &= Q(workflow__version=str(w["version"]))
                match |= one
            qs = qs.filter(match)
        return qs


MAX_LIST = 1000


class WorkflowListRequestSerializer(Input):
    """Cognite's POST .../executions/list body; the GET route reads its query into the same."""

    filter = WorkflowExecutionFilter(
        required=False, allow_null=True, error_messages={"invalid": "filter must be an object"}
    )
    limit = IntParam(minimum=1, maximum=MAX_LIST, default=100, help_text="1-1000, default 100")
    cursor = CursorParam(allow_null=True)


@extend_schema_field(SessionItemRequestSerializer(many=True))
class SessionItemsParam(Given):
    """Exactly one session request -> (session type, the item)."""

    def to_internal_value(self, data: Any) -> tuple[str, dict]:
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
            raise invalid(f"{self.path} must hold exactly one session request")
        item = data[0]
        if item.get("tokenExchange") is True:
            return "TOKEN_EXCHANGE", item
        if item.get("oneshotTokenExchange") is True:
            return "ONESHOT_TOKEN_EXCHANGE", item
        if "clientSecret" not in item and "clientId" not in item:
            raise invalid(
                f"{self.path}[0] must be {{tokenExchange: true}} or {{clientId, clientSecret}}"
            )
        client_id, secret = item.get("clientId"), item.get("clientSecret")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise serializers.ValidationError(
                {0: [ErrorDetail("clientId and clientSecret are required", OWN)]}
            )
        if "\x00" in secret:  # no key has one, and PostgreSQL cannot even look it up
            raise serializers.ValidationError(
                {0: {"clientSecret": [ErrorDetail("Invalid client credentials", OWN)]}}
            )
        return "CLIENT_CREDENTIALS", item


class SessionCreateRequestSerializer(Input):
    items = SessionItemsParam()


# --- seed 003: defining and starting workflows --------------------------------------------------


class WorkflowSerializer(serializers.Serializer):
    externalId = serializers.CharField(source="external_id")
    description = serializers.CharField(allow_null=True)
    dataSetId = serializers.IntegerField(source="data_set_id", allow_null=True)
    maxConcurrentExecutions = serializers.IntegerField(
        source="max_concurrent_executions", allow_null=True
    )
    createdTime = EpochMsField(source="created_at")
    lastUpdatedTime = EpochMsField(source="updated_at")


class WorkflowListSerializer(serializers.Serializer):
    items = WorkflowSerializer(many=True)


class WorkflowVersionSerializer(serializers.Serializer):
    workflowExternalId = serializers.CharField(source="external_id")
    version = serializers.CharField()
    workflowDefinition = serializers.SerializerMethodField()
    createdTime = EpochMsField(source="created_at")
    lastUpdatedTime = EpochMsField(source="updated_at")

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get_workflowDefinition(self, obj) -> dict:
        return workflow_definition(obj.tasks, obj.description)


class WorkflowVersionListSerializer(serializers.Serializer):
    items = WorkflowVersionSerializer(many=True)


class ExternalIdField(serializers.CharField):
    """Cognite's identifiers: 1-255 characters, no leading or trailing spaces, no NUL."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=255, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value != value.strip():
            raise serializers.ValidationError("must not start or end with spaces")
        return value


class WorkflowUpsertItemSerializer(serializers.Serializer):
    externalId = ExternalIdField()
    description = serializers.CharField(
        max_length=500, required=False, allow_null=True, allow_blank=True
    )
    dataSetId = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**53
    )
    maxConcurrentExecutions = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10_000
    )


class WorkflowUpsertRequestSerializer(Input):
    body_required = True
    items = WorkflowUpsertItemSerializer(many=True, min_length=1, max_length=100)


class WorkflowDefinitionUpsertSerializer(serializers.Serializer):
    # Each task is checked against the tenant's functions when saved (definition.clean_tasks).
    tasks = serializers.ListField(child=serializers.JSONField(), min_length=1, max_length=200)
    description = serializers.CharField(
        max_length=500, required=False, allow_null=True, allow_blank=True
    )


class WorkflowVersionUpsertItemSerializer(serializers.Serializer):
    workflowExternalId = ExternalIdField()
    version = ExternalIdField()
    workflowDefinition = WorkflowDefinitionUpsertSerializer()


class WorkflowVersionUpsertRequestSerializer(Input):
    body_required = True
    items = WorkflowVersionUpsertItemSerializer(many=True, min_length=1, max_length=100)


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class MetadataParam(Param):
    """Cognite's metadata: at most 10 text values, keys of at most 32 characters, values 255."""

    def to_internal_value(self, data: Any) -> dict:
        if not isinstance(data, dict) or len(data) > 10:
            raise invalid(f"{self.path} must be an object of at most 10 keys")
        for key, value in data.items():
            if len(key) > 32 or not isinstance(value, str) or len(value) > 255:
                raise invalid_at(
                    key, f"{self.path}.{key}: keys of at most 32 characters, text values of 255"
                )
            if "\x00" in key or "\x00" in value:
                raise invalid_at(key, f"{self.path}.{key} must not contain NUL")
        return data


@extend_schema_field({"type": "object", "additionalProperties": {}})
class ObjectParam(Param):
    def to_internal_value(self, data: Any) -> dict:
        if not isinstance(data, dict):
            raise invalid(f"{self.path} must be an object")
        return data


class WorkflowRunRequestSerializer(Input):
    authentication = AuthenticationParam()
    input = ObjectParam(required=False, allow_null=True)
    metadata = MetadataParam(required=False, allow_null=True)


class WorkflowCancelRequestSerializer(Input):
    reason = serializers.CharField(max_length=1000, required=False, allow_null=True)
