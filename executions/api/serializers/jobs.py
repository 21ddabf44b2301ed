"""Seed 002 (jobs), snake_case: the retry answer, jobs with their event timeline."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions import heartbeats
from executions.kinds.jobs import start as jobs_start
from executions.models import (
    Job,
)
from executions.validation import HOSTNAME_RE

from .common import (
    ChoiceParam,
    DefinitionField,
    Input,
    ListQuery,
    LogEntrySerializer,
    Param,
    TextParam,
    invalid,
    log_entry,
)

# --- seed 002: jobs -----------------------------------------------------------------------------


class JobRetrySerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Job.Status.choices)
    revision = serializers.IntegerField()
    timestamp = serializers.DateTimeField(source="created_at")


class JobEventSerializer(serializers.Serializer):
    revision = serializers.IntegerField()
    type = serializers.CharField()
    data = DefinitionField()
    timestamp = serializers.DateTimeField()


class JobSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Job.Status.choices)
    revision = serializers.IntegerField()
    operation = DefinitionField()
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


# --- inputs -------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.STR)
class HostnameParam(Param):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or not HOSTNAME_RE.match(data):
            raise invalid(f"{self.path} must be a valid hostname")
        return data


class JobRetryRequestSerializer(Input):
    # null is not "not given" here: the seed's SDK never sends it, so it is a mistake to name.
    target_hostname = HostnameParam(
        empty_ok=False,
        default=Job.ANY_HOST,
        help_text="Host to run the clone on; defaults to _any.",
    )


@extend_schema_field(
    {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {
                "type": "string",
                "description": "`command.exec` (a command, on workers started with "
                "--allow-commands) or a registered handler's name (`manage.py handlers`).",
            },
            "data": {
                "type": "object",
                "additionalProperties": {},
                "description": "command.exec: `command`, `args`, `cwd`, `timeout`, `env`; a "
                "handler: its params (and `timeout` in seconds).",
            },
        },
    }
)
class OperationParam(Param):
    """Checked as the worker will run it (kinds/jobs/start.py): its InvalidInput names the
    field (`operation.type`, `operation.data.args`, ...)."""

    def to_internal_value(self, data: Any) -> dict:
        return jobs_start.clean_operation(data)


class JobCreateRequestSerializer(Input):
    body_required = True
    operation = OperationParam(empty_ok=False, required=True)
    target_hostname = HostnameParam(
        empty_ok=False,
        default=Job.ANY_HOST,
        help_text="Host whose worker (`--hostname`) runs the job; `_any` (default): any worker.",
    )


class JobListQuery(ListQuery):
    status = ChoiceParam(choices=Job.Status.values)
    operation_type = TextParam(maximum=64)

    lookups = {**ListQuery.lookups, "status": "status", "operation_type": "operation_type"}
