"""Seed 000 (Mudbase functions), camelCase: retry result, the log with its stats, one execution."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.kinds.functions import defining, definition
from executions.models import (
    FunctionExecution,
)
from executions.work import Logs, javascript, secrets

from .common import (
    ChoiceParam,
    DateTimeParam,
    FilterQuery,
    Input,
    IntParam,
    LogEntrySerializer,
    ObjectField,
    ObjectOrNullField,
    TextParam,
    error_class,
    log_entry,
    window_lookups,
)

# --- seed 000: functions ------------------------------------------------------------------------


class FunctionRetryDataSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    result = ObjectOrNullField()
    error = serializers.CharField(source="error_message", allow_null=True)
    executionTime = serializers.IntegerField(source="execution_time", allow_null=True)
    executionId = serializers.CharField(source="pk")


class FunctionRetryResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = FunctionRetryDataSerializer()


class FunctionLogExecutionSerializer(serializers.Serializer):
    _id = serializers.CharField(source="pk")
    executedAt = serializers.DateTimeField(source="executed_at")
    executionTime = serializers.IntegerField(source="execution_time", allow_null=True)
    success = serializers.BooleanField()
    status = serializers.ChoiceField(choices=FunctionExecution.Status.choices)
    payload = ObjectOrNullField()
    result = ObjectOrNullField()
    error = serializers.CharField(source="error_message", allow_null=True)
    invokedBy = serializers.ChoiceField(
        source="invoked_by", choices=FunctionExecution.InvokedBy.values
    )
    retryCount = serializers.IntegerField(source="retry_count")
    retryOf = serializers.CharField(source="retry_of_id", allow_null=True)


class FunctionStatsSerializer(serializers.Serializer):
    totalExecutions = serializers.IntegerField()
    successfulExecutions = serializers.IntegerField()
    failedExecutions = serializers.IntegerField()
    avgExecutionTime = serializers.FloatField()
    lastExecution = serializers.DateTimeField(allow_null=True)


class FunctionLogsDataSerializer(serializers.Serializer):
    executions = FunctionLogExecutionSerializer(many=True)
    stats = FunctionStatsSerializer()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    hasMore = serializers.BooleanField()


class FunctionLogsResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = FunctionLogsDataSerializer()


class CapturedLogsSerializer(serializers.Serializer):
    stdout = serializers.CharField()
    stderr = serializers.CharField()
    truncated = serializers.BooleanField()
    bytes = serializers.IntegerField()


class FunctionExecutionDetailSerializer(serializers.Serializer):
    """Mudbase's execution status shape, plus Redrive's evidence (input, stack, lineage)."""

    executionId = serializers.CharField(source="pk")
    functionId = serializers.CharField(source="function_id")
    status = serializers.SerializerMethodField()
    success = serializers.BooleanField()
    durationMs = serializers.IntegerField(source="execution_time", allow_null=True)
    payload = ObjectOrNullField()
    result = ObjectOrNullField()
    error = serializers.CharField(source="error_message", allow_null=True)
    errorClass = serializers.SerializerMethodField()
    errorStack = serializers.CharField(source="error_stack", allow_null=True)
    logs = serializers.SerializerMethodField()
    logEntries = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="executed_at")
    startedAt = serializers.DateTimeField(source="executed_at")
    completedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    invokedBy = serializers.ChoiceField(
        source="invoked_by", choices=FunctionExecution.InvokedBy.values
    )
    retryCount = serializers.IntegerField(source="retry_count")
    retryOf = serializers.CharField(source="retry_of_id", allow_null=True)
    retriedBy = serializers.SerializerMethodField()
    functionVersion = serializers.IntegerField(source="function_version")
    code = serializers.CharField()
    environment = serializers.SerializerMethodField()

    @extend_schema_field({"type": "string", "enum": ["queued", *FunctionExecution.Status.values]})
    def get_status(self, obj: FunctionExecution) -> str:
        """`queued` until a worker claims it (a claim bumps the lease token)."""
        if obj.status == FunctionExecution.Status.RUNNING and not obj.lease_token:
            return "queued"
        return obj.status

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_environment(self, obj: FunctionExecution) -> dict:
        """The environment that ran, each secret value masked."""
        return secrets.masked_values(obj.environment or {})

    @extend_schema_field(OpenApiTypes.STR)
    def get_errorClass(self, obj: FunctionExecution) -> str | None:
        return obj.error_class or error_class(obj.error_stack)

    @extend_schema_field(CapturedLogsSerializer)
    def get_logs(self, obj: FunctionExecution) -> dict:
        """Mudbase's shape (work.Logs.stdio), the error's stack last on stderr."""
        logs = Logs(
            entries=[log_entry(e) for e in obj.logs or []],
            truncated=obj.logs_truncated,
            bytes=obj.logs_bytes,
        ).stdio()
        if obj.error_stack:
            logs["stderr"] = f"{logs['stderr']}\n{obj.error_stack}".strip()
        return logs

    @extend_schema_field(LogEntrySerializer(many=True))
    def get_logEntries(self, obj: FunctionExecution) -> list[dict]:
        return [log_entry(e) for e in obj.logs or []]

    @extend_schema_field({"type": "string", "nullable": True})
    def get_retriedBy(self, obj: FunctionExecution) -> str | None:
        return obj.retried_by_id  # its latest retry


class FunctionExecutionResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = FunctionExecutionDetailSerializer()


# --- inputs -------------------------------------------------------------------------------------

MAX_LOG_OFFSET = 100_000


class FunctionLogsQuery(FilterQuery):
    """GET .../logs: offset-paginated like Mudbase's, so executionIndex counts in the same order."""

    limit = IntParam(minimum=1, maximum=100, default=50, help_text="1-100, default 50")
    offset = IntParam(minimum=0, maximum=MAX_LOG_OFFSET, default=0, help_text="default 0")
    status = ChoiceParam(choices=FunctionExecution.Status.values, help_text="filter")
    since = DateTimeParam(help_text="ISO 8601 date-time")
    until = DateTimeParam(help_text="ISO 8601 date-time")
    q = TextParam(help_text="text in the error message")

    lookups = {
        "status": "status",
        **window_lookups("executed_at"),
        "q": "error_message__icontains",
    }


# --- defining and starting functions (mudbase's FunctionsApi) -----------------------------------

MAX_NAME = 200
MAX_PAYLOAD_SIZE = 10 * 1024 * 1024
MAX_RATE = 1_000_000
MAX_RETRIES = 10
MAX_BACKOFF_MS = 60 * 60 * 1000


class FunctionTriggerSerializer(serializers.Serializer):
    """Mudbase's FunctionTrigger; Redrive runs the http, webhook and cron types."""

    type = serializers.CharField()
    schedule = serializers.CharField(required=False, allow_null=True)
    path = serializers.CharField(required=False, allow_null=True)
    method = serializers.ChoiceField(
        choices=["GET", "POST", "PUT", "DELETE"], required=False, allow_null=True
    )
    event = serializers.CharField(required=False, allow_null=True)
    collectionId = serializers.CharField(required=False, allow_null=True)
    bucketId = serializers.CharField(required=False, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        return definition.clean_trigger(attrs)


class FunctionCode(serializers.CharField):
    """JavaScript, compiled in V8 when saved: code that does not compile is a 400."""

    def to_internal_value(self, data):
        return definition.clean_code(super().to_internal_value(data))


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"value": {"type": "string"}, "secret": {"type": "boolean"}},
                    "required": ["value"],
                },
            ]
        },
        "nullable": True,
    }
)
class EnvironmentField(serializers.Field):
    """Names to values; a value may be a secret {"value": "...", "secret": true} (masked when
    shown)."""

    def to_internal_value(self, data):
        return definition.clean_environment(data)


class CreateFunctionInput(Input):
    body_required = True
    name = serializers.CharField(max_length=MAX_NAME)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    code = FunctionCode(trim_whitespace=False)
    trigger = FunctionTriggerSerializer()
    environment = EnvironmentField(required=False, allow_null=True)


class FunctionLimitsSerializer(serializers.Serializer):
    timeout = serializers.IntegerField(
        min_value=1, max_value=javascript.MAX_TIMEOUT_MS, required=False
    )
    maxPayloadSize = serializers.IntegerField(
        min_value=1, max_value=MAX_PAYLOAD_SIZE, required=False
    )
    maxExecutionsPerMinute = serializers.IntegerField(
        min_value=1, max_value=MAX_RATE, required=False, allow_null=True
    )
    maxExecutionsPerHour = serializers.IntegerField(
        min_value=1, max_value=MAX_RATE, required=False, allow_null=True
    )


class FunctionRetryPolicySerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    maxRetries = serializers.IntegerField(min_value=0, max_value=MAX_RETRIES, required=False)
    backoffMs = serializers.IntegerField(min_value=0, max_value=MAX_BACKOFF_MS, required=False)


class UpdateFunctionInput(Input):
    body_required = True
    name = serializers.CharField(max_length=MAX_NAME, required=False)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    code = FunctionCode(trim_whitespace=False, required=False)
    trigger = FunctionTriggerSerializer(required=False)
    environment = EnvironmentField(required=False, allow_null=True)
    isActive = serializers.BooleanField(required=False)
    limits = FunctionLimitsSerializer(required=False)
    retryPolicy = FunctionRetryPolicySerializer(required=False)
    versionComment = serializers.CharField(required=False, allow_blank=True, max_length=500)


class FunctionRollbackInput(Input):
    body_required = True
    version = serializers.IntegerField(min_value=1)


class FunctionExecuteInput(Input):
    payload = serializers.DictField(required=False, allow_null=True)


class FunctionListQuery(FilterQuery):
    page = IntParam(minimum=1, maximum=100_000, default=1, help_text="default 1")
    limit = IntParam(minimum=1, maximum=100, default=20, help_text="1-100, default 20")
    search = TextParam(help_text="in the name or description")
    triggerType = ChoiceParam(choices=list(defining.TRIGGER_TYPES), help_text="filter")
    isActive = ChoiceParam(choices=["true", "false"], help_text="filter")

    lookups = {"triggerType": "trigger__type"}

    def apply(self, qs, data=None):
        qs = super().apply(qs, data)
        data = self.validated_data
        if data.get("search"):
            qs = qs.filter(
                Q(name__icontains=data["search"]) | Q(description__icontains=data["search"])
            )
        if data.get("isActive"):
            qs = qs.filter(is_active=data["isActive"] == "true")
        return qs


class FunctionSerializer(serializers.Serializer):
    """Mudbase's Function, plus what Redrive keeps of it (code, version, limits, retryPolicy)."""

    _id = serializers.CharField(source="pk")
    name = serializers.CharField()
    description = serializers.CharField()
    projectId = serializers.CharField(source="tenant.functions_project_id")
    trigger = ObjectField()
    isActive = serializers.BooleanField(source="is_active")
    code = serializers.CharField()
    version = serializers.IntegerField()
    environment = serializers.SerializerMethodField()
    limits = serializers.SerializerMethodField()
    retryPolicy = serializers.SerializerMethodField()
    nextFireAt = serializers.DateTimeField(source="next_fire_at", allow_null=True)
    createdBy = serializers.CharField(source="created_by")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_environment(self, obj) -> dict:
        return secrets.masked_values(obj.environment or {})

    @extend_schema_field(FunctionLimitsSerializer)
    def get_limits(self, obj) -> dict:
        return {name: getattr(obj, field) for name, field in defining.LIMITS.items()}

    @extend_schema_field(FunctionRetryPolicySerializer)
    def get_retryPolicy(self, obj) -> dict:
        return {name: getattr(obj, field) for name, field in defining.RETRY_POLICY.items()}


class FunctionResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = FunctionSerializer()


class FunctionPaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    limit = serializers.IntegerField()
    total = serializers.IntegerField()
    totalPages = serializers.IntegerField()


class FunctionListDataSerializer(serializers.Serializer):
    functions = FunctionSerializer(many=True)
    pagination = FunctionPaginationSerializer()


class FunctionListResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = FunctionListDataSerializer()


class FunctionVersionSerializer(serializers.Serializer):
    _id = serializers.SerializerMethodField()
    code = serializers.CharField()
    version = serializers.IntegerField()
    createdAt = serializers.DateTimeField(source="created_at")
    createdBy = serializers.CharField(source="created_by")
    comment = serializers.CharField()

    @extend_schema_field(OpenApiTypes.STR)
    def get__id(self, obj) -> str:
        return f"{obj.function_id}:{obj.version}"


class FunctionVersionsDataSerializer(serializers.Serializer):
    versions = FunctionVersionSerializer(many=True)


class FunctionVersionsResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = FunctionVersionsDataSerializer()


class FunctionExecutionQueuedDataSerializer(serializers.Serializer):
    executionId = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued"])


class FunctionExecutionQueuedResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = FunctionExecutionQueuedDataSerializer()


class FunctionDeletedResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()


class FunctionWebhookResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    triggered = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField())
