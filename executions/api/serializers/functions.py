"""Seed 000 (Mudbase functions), camelCase: retry result, the log with its stats, one execution."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.models import (
    FunctionExecution,
)
from executions.work import Logs, secrets

from .common import (
    ChoiceParam,
    DateTimeParam,
    FilterQuery,
    IntParam,
    LogEntrySerializer,
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
    status = serializers.ChoiceField(choices=FunctionExecution.Status.choices)
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
