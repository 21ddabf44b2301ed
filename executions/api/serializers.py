"""Output shapes, one block per seed, in each seed's own spelling (snake_case for 001 and 002,
camelCase for 000, 003 and 004). They double as the OpenAPI schema (drf-spectacular), so what
the schema documents is what the views send.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions import heartbeats
from executions.models import (
    Attempt,
    AutomationExecution,
    AutomationRule,
    FunctionExecution,
    Job,
    Run,
    WorkflowExecution,
)

# --- shared fields ------------------------------------------------------------------------------


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 0, "nullable": True})
class EpochMsField(serializers.Field):
    """Seed 003's times: milliseconds since the epoch."""

    def to_representation(self, value) -> int:
        return int(value.timestamp() * 1000)


@extend_schema_field({"type": "object", "additionalProperties": {}, "nullable": True})
class ObjectOrNullField(serializers.Field):
    """A JSON object or null: a non-object JSON value is wrapped as {"value": ...} (the mudbase
    SDK types payload and result as objects)."""

    def to_representation(self, value) -> dict | None:
        if value is None or isinstance(value, dict):
            return value
        return {"value": value}


@extend_schema_field({"type": "object", "additionalProperties": {}})
class ObjectField(serializers.Field):
    def to_representation(self, value) -> dict:
        return value if isinstance(value, dict) else {}


def error_class(stack: str | None) -> str | None:
    """'ValueError' from a Python traceback's last line."""
    for line in reversed((stack or "").strip().splitlines()):
        head = line.split(":", 1)[0].strip()
        if head and " " not in head:
            return head.rsplit(".", 1)[-1]
        break
    return None


LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}


def log_entry(entry: Any) -> dict:
    entry = entry if isinstance(entry, dict) else {"message": str(entry)}
    out = {
        "timestamp": entry.get("timestamp"),
        "level": LOG_LEVELS.get(str(entry.get("level", "info")).lower(), "info"),
        "message": str(entry.get("message", "")),
        "metadata": entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {},
    }
    if isinstance(entry.get("action_index"), int):
        out["action_index"] = entry["action_index"]
    return out


class LogEntrySerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(allow_null=True)
    level = serializers.ChoiceField(choices=["debug", "info", "warn", "error"])
    message = serializers.CharField()
    action_index = serializers.IntegerField(required=False)
    metadata = serializers.DictField()


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "number",
            "status",
            "error_message",
            "error_stack",
            "logs",
            "details",
            "started_at",
            "finished_at",
            "recorded_at",
        ]


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

    @extend_schema_field(OpenApiTypes.STR)
    def get_errorClass(self, obj: FunctionExecution) -> str | None:
        return error_class(obj.error_stack)

    @extend_schema_field(CapturedLogsSerializer)
    def get_logs(self, obj: FunctionExecution) -> dict:
        entries = [log_entry(e) for e in obj.logs or []]
        stdout = "\n".join(
            f"[{e['level']}] {e['message']}" for e in entries if e["level"] != "error"
        )
        stderr = "\n".join(e["message"] for e in entries if e["level"] == "error")
        if obj.error_stack:
            stderr = f"{stderr}\n{obj.error_stack}".strip()
        return {
            "stdout": stdout,
            "stderr": stderr,
            "truncated": False,
            "bytes": len(stdout.encode()) + len(stderr.encode()),
        }

    @extend_schema_field(LogEntrySerializer(many=True))
    def get_logEntries(self, obj: FunctionExecution) -> list[dict]:
        return [log_entry(e) for e in obj.logs or []]

    @extend_schema_field({"type": "string", "nullable": True})
    def get_retriedBy(self, obj: FunctionExecution) -> str | None:
        return obj.retried_by_id  # its latest retry


class FunctionExecutionResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = FunctionExecutionDetailSerializer()


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
    execution_context = ObjectField()
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
    actions = serializers.ListField(child=serializers.DictField())
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    tenant = serializers.UUIDField(source="tenant_id")
    _links = serializers.SerializerMethodField()

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


# --- seed 002: jobs -----------------------------------------------------------------------------


class JobRetrySerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Job.Status.choices)
    revision = serializers.IntegerField()
    timestamp = serializers.DateTimeField(source="created_at")


class JobEventSerializer(serializers.Serializer):
    revision = serializers.IntegerField()
    type = serializers.CharField()
    data = ObjectField()
    timestamp = serializers.DateTimeField()


class JobSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Job.Status.choices)
    revision = serializers.IntegerField()
    operation = ObjectField()
    target_hostname = serializers.CharField()
    taken_by = serializers.CharField()
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(source="error_message", allow_null=True)
    retry_of = serializers.UUIDField(source="retry_of_id", allow_null=True)
    timestamp = serializers.DateTimeField(source="created_at")
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class JobDetailSerializer(JobSerializer):
    error_stack = serializers.CharField(allow_null=True)
    logs = serializers.SerializerMethodField()
    retried_by = serializers.SerializerMethodField()
    waiting = serializers.SerializerMethodField()
    events = JobEventSerializer(many=True)

    @extend_schema_field(LogEntrySerializer(many=True))
    def get_logs(self, obj: Job) -> list[dict]:
        return [log_entry(e) for e in obj.logs or []]

    @extend_schema_field({"type": "string", "format": "uuid", "nullable": True})
    def get_retried_by(self, obj: Job) -> str | None:
        return str(obj.retried_by_id) if obj.retried_by_id else None  # its latest clone

    @extend_schema_field(
        {
            "type": "string",
            "nullable": True,
            "description": "What an unprocessed job waits for, e.g. "
            "`no live worker for host web-01` (null when nothing is known to block it).",
        }
    )
    def get_waiting(self, obj: Job) -> str | None:
        return heartbeats.waiting_for_host([obj]).get(obj.pk)


class JobListSerializer(serializers.Serializer):
    jobs = JobSerializer(many=True)
    limit = serializers.IntegerField()
    next_cursor = serializers.CharField(allow_null=True)


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


def workflow_definition(tasks: list[dict]) -> dict:
    """The workflow's tasks in Cognite's definition shape (our tasks run Redrive handlers, shown
    as function tasks whose function external id is the handler name)."""
    out = []
    for task in tasks:
        out.append(
            {
                "externalId": task.get("externalId"),
                "type": "function",
                "parameters": {
                    "function": {
                        "externalId": task.get("handler", ""),
                        "data": task.get("params", {}),
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
    return {"hash": digest, "tasks": out}


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
        return "function"

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get_input(self, obj) -> dict:
        task = self._definition(obj)
        return {
            "function": {"externalId": task.get("handler", ""), "data": task.get("params", {})},
            "isAsyncComplete": False,
        }

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get_output(self, obj) -> dict:
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
        return workflow_definition(obj.workflow.tasks)

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


# --- seed 004: runs -----------------------------------------------------------------------------


class SimulationForkSerializer(serializers.Serializer):
    chainId = serializers.IntegerField()
    forkId = serializers.CharField()
    rpcUrl = serializers.CharField()


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
    workflowDefinition = ObjectField(source="workflow_definition")
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


# --- Redrive's own ------------------------------------------------------------------------------


class FailureSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["function", "automation", "job", "workflow", "run"])
    id = serializers.CharField()
    status = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    fingerprint = serializers.CharField()
    failedAt = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()
    retryUrl = serializers.CharField()


class FailureGroupSerializer(serializers.Serializer):
    kind = serializers.CharField()
    fingerprint = serializers.CharField()
    count = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)
    lastFailedAt = serializers.DateTimeField(allow_null=True)


class FailureListSerializer(serializers.Serializer):
    items = FailureSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True)
    groups = FailureGroupSerializer(many=True, required=False)


class PreviewKindSerializer(serializers.Serializer):
    will_retry = serializers.IntegerField()
    not_retryable = serializers.DictField(child=serializers.IntegerField())


class PreviewSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    total = serializers.IntegerField()
    will_retry = serializers.IntegerField()
    not_retryable = serializers.IntegerField()
    kinds = serializers.DictField(child=PreviewKindSerializer())


class BulkRetrySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    summary = ObjectField()
    actor = serializers.CharField()
    source = serializers.CharField()
    cancelRequested = serializers.BooleanField(source="cancel_requested")
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_url(self, obj) -> str:
        return reverse("api-bulk-retry", args=[str(obj.pk)])


class BulkRetryCancelSerializer(BulkRetrySerializer):
    cancelOutcome = serializers.ChoiceField(
        choices=["requested", "cancelled", "too_late"],
        help_text="requested: it stops before its next batch; cancelled: it is cancelled; "
        "too_late: it had already finished or started its last batch, nothing was changed",
    )
    message = serializers.CharField()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    tokenType = serializers.CharField()
    expiresIn = serializers.IntegerField()
    tenant = serializers.CharField()


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()
    database = serializers.CharField(required=False)


# --- request bodies (validated in the views, documented here) -----------------------------------


class JobRetryRequestSerializer(serializers.Serializer):
    target_hostname = serializers.CharField(
        required=False, help_text="Host to run the clone on; defaults to _any."
    )


class NonceSerializer(serializers.Serializer):
    nonce = serializers.CharField()


class WorkflowRetryRequestSerializer(serializers.Serializer):
    authentication = NonceSerializer()


class WorkflowListRequestSerializer(serializers.Serializer):
    filter = serializers.DictField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    cursor = serializers.CharField(required=False, allow_null=True)


class SessionItemRequestSerializer(serializers.Serializer):
    tokenExchange = serializers.BooleanField(required=False)
    oneshotTokenExchange = serializers.BooleanField(required=False)
    clientId = serializers.CharField(required=False)
    clientSecret = serializers.CharField(required=False)


class SessionCreateRequestSerializer(serializers.Serializer):
    items = SessionItemRequestSerializer(many=True)


class FailuresRetryRequestSerializer(serializers.Serializer):
    ids = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Ids per kind, e.g. {"job": ["<uuid>"], "run": ["run_..."]}.',
    )
    filter = serializers.DictField(
        required=False,
        help_text="The /api/failures filter: kind, status, since, until, range, q, "
        "fingerprint, name.",
    )
    dry_run = serializers.BooleanField(required=False, default=False)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()
    tenant = serializers.CharField(required=False, help_text="Tenant slug, when in several.")
