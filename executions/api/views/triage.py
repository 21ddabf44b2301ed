"""Redrive's own triage endpoints: ignore or reopen one failure, or a whole error group
(fingerprint). The state changes are executions/triage.py's; operators and admins may, viewers
may not (the kind's retry permission)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from executions import triage

from ..base import ApiView
from ..docs import errors

TAG = ["failures (Redrive)"]
KIND = OpenApiParameter(
    "kind", str, OpenApiParameter.PATH, enum=["function", "automation", "job", "workflow", "run"]
)
ID = OpenApiParameter("id", str, OpenApiParameter.PATH)
FINGERPRINT = OpenApiParameter(
    "fingerprint", str, OpenApiParameter.PATH, description="16 lowercase hex characters"
)


class IgnoreSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    until = serializers.CharField(
        required=False, help_text='"again" (default): until it fails again; or an ISO date-time'
    )


class FailureStateSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.CharField()
    state = serializers.ChoiceField(choices=["open", "regressed", "resolved", "ignored"])
    until = serializers.DateTimeField(allow_null=True)


class GroupStateSerializer(serializers.Serializer):
    kind = serializers.CharField()
    fingerprint = serializers.CharField()
    state = serializers.ChoiceField(choices=["open", "resolved", "ignored"])
    until = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    failures = serializers.IntegerField(help_text="how many failures this call changed")


IGNORE_EXAMPLES = [
    OpenApiExample(
        "Until it happens again",
        value={"reason": "known outage", "until": "again"},
        request_only=True,
    ),
    OpenApiExample(
        "Until a date",
        value={"reason": "vendor fix due", "until": "2027-01-15T00:00:00Z"},
        request_only=True,
    ),
]


def _failure(kind: str, obj) -> dict:
    return {"kind": kind, "id": str(obj.pk), "state": obj.triage, "until": obj.triage_until}


def _group(actor, fingerprint: str, n: int) -> dict:
    group = triage.group_states(actor.tenant, [fingerprint])[fingerprint]
    return {
        "kind": group.kind,
        "fingerprint": fingerprint,
        "state": group.state,
        "until": group.until,
        "reason": group.reason,
        "failures": n,
    }


class FailureIgnoreApi(ApiView):
    @extend_schema(
        operation_id="ignoreFailure",
        summary="Ignore one failure",
        description='Until its fingerprint fails again (`"until": "again"`, the default) or a '
        "failure of it after the given date; audited with the reason.",
        tags=TAG,
        parameters=[KIND, ID],
        request=IgnoreSerializer,
        responses={
            200: FailureStateSerializer,
            **errors("redrive", 400, 401, 403, 404, 413, 415),
        },
        examples=[
            *IGNORE_EXAMPLES,
            OpenApiExample(
                "Ignored",
                value={"kind": "job", "id": "9b2d…", "state": "ignored", "until": None},
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, kind: str, id: str):
        reason, until = triage.parse_ignore(request.data)
        obj = triage.ignore(self.actor, kind, id, reason=reason, until=until)
        return Response(_failure(kind, obj))


class FailureReopenApi(ApiView):
    @extend_schema(
        operation_id="reopenFailure",
        summary="Open an ignored or resolved failure again",
        tags=TAG,
        parameters=[KIND, ID],
        request=None,
        responses={200: FailureStateSerializer, **errors("redrive", 400, 401, 403, 404, 415)},
        examples=[
            OpenApiExample(
                "Open",
                value={"kind": "job", "id": "9b2d…", "state": "open", "until": None},
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, kind: str, id: str):
        return Response(_failure(kind, triage.reopen(self.actor, kind, id)))


class GroupIgnoreApi(ApiView):
    @extend_schema(
        operation_id="ignoreGroup",
        summary="Ignore an error group",
        description="Its open failures now, and its new ones until the fingerprint fails again "
        "(then it regresses: `failure.regressed`) or until the date.",
        tags=TAG,
        parameters=[FINGERPRINT],
        request=IgnoreSerializer,
        responses={
            200: GroupStateSerializer,
            **errors("redrive", 400, 401, 403, 404, 413, 415),
        },
        examples=[
            *IGNORE_EXAMPLES,
            OpenApiExample(
                "Ignored",
                value={
                    "kind": "job",
                    "fingerprint": "3f2a9c0d1b6e4a57",
                    "state": "ignored",
                    "until": None,
                    "reason": "known outage",
                    "failures": 1325,
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, fingerprint: str):
        reason, until = triage.parse_ignore(request.data)
        n = triage.ignore_group(self.actor, fingerprint, reason=reason, until=until)
        return Response(_group(self.actor, fingerprint, n))


class GroupReopenApi(ApiView):
    @extend_schema(
        operation_id="reopenGroup",
        summary="Open an ignored or resolved error group again, with its ignored failures",
        tags=TAG,
        parameters=[FINGERPRINT],
        request=None,
        responses={200: GroupStateSerializer, **errors("redrive", 400, 401, 403, 404, 415)},
        examples=[
            OpenApiExample(
                "Open",
                value={
                    "kind": "job",
                    "fingerprint": "3f2a9c0d1b6e4a57",
                    "state": "open",
                    "until": None,
                    "reason": "",
                    "failures": 1325,
                },
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, fingerprint: str):
        n = triage.reopen_group(self.actor, fingerprint)
        return Response(_group(self.actor, fingerprint, n))
