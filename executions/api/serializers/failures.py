"""Redrive's own across the kinds: the failures inbox, bulk retry (preview, progress, cancel)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions import filters
from executions import kinds as registry

from .common import Input, ObjectField, Param, invalid, invalid_at

# --- Redrive's own ------------------------------------------------------------------------------


class FailureSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["function", "automation", "job", "workflow", "run"])
    id = serializers.CharField()
    status = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    fingerprint = serializers.CharField()
    state = serializers.ChoiceField(choices=["open", "regressed", "resolved", "ignored"])
    chain = serializers.CharField(help_text='where its retry chain ended: "retried 2× → success"')
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


class PreviewItemSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class PreviewSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    total = serializers.IntegerField()
    will_retry = serializers.IntegerField()
    not_retryable = serializers.IntegerField()
    kinds = serializers.DictField(child=PreviewKindSerializer())
    items = PreviewItemSerializer(many=True, help_text="The first 50 that will be retried")
    more = serializers.IntegerField(help_text="How many more than `items` will be retried")


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
    stage = serializers.CharField(
        help_text="A staged bulk's stage: canary, waiting, rest, stopped, finished (empty if "
        "not staged)"
    )
    progress = serializers.SerializerMethodField(
        help_text="A staged bulk's outcomes: succeeded, failedAgain, pending, failedAgainItems, "
        "stoppedBecause, options ({} if not staged)"
    )

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_progress(self, obj) -> dict:
        from executions import staged

        return staged.progress(obj)

    @extend_schema_field(OpenApiTypes.STR)
    def get_url(self, obj) -> str:
        return reverse("api-bulk-retry", args=[str(obj.pk)])


class ItemRetryRequestSerializer(serializers.Serializer):
    """For the schema only: executions/retry_input.py checks the body (errors name the field)."""

    reason = serializers.CharField(
        required=False, max_length=500, help_text="Why; kept in the audit (at most 500 characters)"
    )
    input = ObjectField(
        required=False,
        help_text="The edited input the retry runs with: a function's payload, an automation's "
        "event data, a job's operation data, a workflow's input, a run's inputs",
    )


class ItemRetrySerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.CharField()
    newId = serializers.CharField(
        help_text="The new attempt (the same id for automations and workflows)"
    )
    status = serializers.CharField(help_text="The new attempt's status now")
    url = serializers.CharField(help_text="The new attempt in the console")


class BulkRetryCancelSerializer(BulkRetrySerializer):
    cancelOutcome = serializers.ChoiceField(
        choices=["requested", "cancelled", "too_late"],
        help_text="requested: it stops before its next batch; cancelled: it is cancelled; "
        "too_late: it had already finished or started its last batch, nothing was changed",
    )
    message = serializers.CharField()


# --- inputs -------------------------------------------------------------------------------------

# A list of ids is for "retry these"; anything larger is what the filter form is for.
MAX_IDS = 10_000


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "description": 'Ids per kind, e.g. {"job": ["<uuid>"], "run": ["run_..."]}.',
    }
)
class IdsParam(Param):
    def to_internal_value(self, ids: Any) -> dict[str, list[str]]:
        if not isinstance(ids, dict) or not ids:
            raise invalid(f"{self.path} must map a kind to a list of ids")
        total = 0
        for kind, values in ids.items():
            if kind not in registry.BY_NAME:
                known = ", ".join(registry.names())
                raise invalid(f"ids: kind must be one of {known}; got {kind!r}")
            if not isinstance(values, list) or not all(
                isinstance(v, str) and 0 < len(v) <= 64 for v in values
            ):
                raise invalid_at(kind, f"{self.path}.{kind} must be a list of ids")
            total += len(values)
        if total > MAX_IDS:
            raise invalid(f"at most {MAX_IDS} ids; use a filter for more")
        return ids


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {},
        "description": "The /api/failures filter: kind, status, since, until, range, q, "
        "fingerprint, name.",
    }
)
class FilterParam(Param):
    def to_internal_value(self, data: Any) -> dict:
        if not isinstance(data, dict):
            raise invalid(f"{self.path} must be an object")
        return data


@extend_schema_field(OpenApiTypes.BOOL)
class BoolParam(Param):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise invalid(f"{self.path} must be true or false")
        return data


# Validated: {"dry_run": bool, "selection": {"ids": {kind: [id, ...]}} or {"filter": FailureFilter}}
class FailuresRetryRequestSerializer(Input):
    body_required = True

    dry_run = BoolParam(empty_ok=False, default=False)
    ids = IdsParam()
    filter = FilterParam()

    def validate(self, attrs: dict) -> dict:
        if (attrs.get("ids") is None) == (attrs.get("filter") is None):
            raise invalid_at("ids", "give exactly one of ids or filter")
        if attrs.get("filter") is not None:
            # The inbox's own parser: its errors name the filter's field (kind, since, ...).
            selection = {"filter": filters.parse(attrs["filter"])}
        else:
            selection = {"ids": attrs["ids"]}
        return {"dry_run": attrs["dry_run"], "selection": selection}


class StagingCanarySerializer(serializers.Serializer):
    size = serializers.IntegerField(min_value=1, help_text="Retry these first")
    minSuccessRate = serializers.FloatField(
        required=False, min_value=0, max_value=1, help_text="Then go on if this share succeeded"
    )


class FailuresRetryRequestDoc(FailuresRetryRequestSerializer):
    """For the schema only: the bulk's own options, checked by executions/staged.py."""

    reason = serializers.CharField(required=False, max_length=500, help_text="Kept in the audit")
    canary = StagingCanarySerializer(required=False)
    ratePerSecond = serializers.FloatField(required=False, help_text="Items retried per second")
    stopWhenFailedAgainRate = serializers.FloatField(
        required=False,
        help_text="Stop when more than this share of the retried items failed again",
    )
