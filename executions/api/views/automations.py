"""Seed 001 (AlgaPSA automation executions): retry resets the same failed execution to pending and
really queues it; list, detail (with attempt history) and the rule, so every `_links` entry
resolves.

Errors: {"error": {"code": "<CODE>", "message": "..."}}. Missing or other tenant: 404 (the seed's
product answers 500); not failed: 400.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.idempotency import Claim
from executions.models import AutomationExecution, AutomationRule, Kind
from executions.tenancy import get_for_tenant, scoped

from ..base import ApiView, query_page, valid_uuid
from ..docs import KEY_IN_FLIGHT, errors, retry_schema
from ..serializers import automations as au

TAG = ["automation (seed 001)"]
ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="Automation execution UUID.")


class AutomationRetryApi(ApiView):
    seed = "001"

    @retry_schema(
        "001",
        au.AutomationExecutionResponseSerializer,
        path=[ID],
        messages={
            400: "Invalid execution UUID format, or the execution is not failed.",
            409: KEY_IN_FLIGHT,
        },
        operation_id="retryAutomationExecution",
        summary="Retry automation execution",
        description="Resets a failed execution to pending, clears completion/error counters "
        "(the failed attempt is kept in the attempt history), queues it and publishes "
        "automation.execution.retried after commit. Requires automation:execute.",
        tags=TAG,
    )
    def post(self, request: Request, id: str):
        execution_id = valid_uuid(id, "id")

        def perform(claim: Claim | None) -> tuple[int, dict]:
            outcome = services.retry_automation(self.actor, execution_id, idempotency=claim)
            return 200, {"data": _execution_data(outcome.obj)}

        return self.idempotent(request, perform)


_EXECUTION = au.AutomationExecutionSerializer()


def _execution_data(obj: AutomationExecution) -> dict:
    """AutomationExecutionSerializer(obj).data through one serializer built once: its fields
    are deep-copied per instance (a third of its cost), and to_representation keeps no state,
    so threads can share it."""
    return _EXECUTION.to_representation(obj)


class AutomationExecutionApi(ApiView):
    seed = "001"

    @extend_schema(
        operation_id="getAutomationExecution",
        summary="Get automation execution",
        tags=TAG,
        parameters=[ID],
        responses={
            200: au.AutomationExecutionDetailResponseSerializer,
            **errors("001", 400, 401, 403, 404),
        },
    )
    def get(self, request: Request, id: str):
        execution_id = valid_uuid(id, "id")
        self.actor.require("automation:read")
        execution = get_for_tenant(
            AutomationExecution,
            self.actor.tenant,
            "Automation execution not found",
            pk=execution_id,
        )
        return Response({"data": au.AutomationExecutionDetailSerializer(execution).data})


class AutomationExecutionListApi(ApiView):
    seed = "001"

    @extend_schema(
        operation_id="listAutomationExecutions",
        summary="List automation executions",
        description="Newest first (by started_at), keyset-paginated: pass `next_cursor` back "
        "as `cursor`.",
        tags=TAG,
        parameters=[au.AutomationExecutionListQuery],
        responses={200: au.AutomationExecutionListSerializer, **errors("001", 400, 401, 403)},
    )
    def get(self, request: Request):
        query = au.AutomationExecutionListQuery.parse(request)
        self.actor.require("automation:read")
        qs = scoped(AutomationExecution, self.actor.tenant)
        rows, cursor = query_page(query, qs, Kind.AUTOMATION, "started_at")
        return Response(
            {
                "data": au.AutomationExecutionSerializer(rows, many=True).data,
                "pagination": {
                    "limit": query.validated_data["limit"],
                    "next_cursor": cursor,
                    "has_next": bool(cursor),
                },
            }
        )


class AutomationRuleApi(ApiView):
    seed = "001"

    @extend_schema(
        operation_id="getAutomationRule",
        summary="Get automation rule",
        tags=TAG,
        parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="Rule UUID")],
        responses={
            200: au.AutomationRuleResponseSerializer,
            **errors("001", 400, 401, 403, 404),
        },
        examples=[
            OpenApiExample(
                "Rule",
                value={
                    "data": {
                        "rule_id": "0b6c1c1e-5a7e-4f55-9f0e-3c0d7f1f2a10",
                        "name": "Notify on ticket",
                        "trigger": {"event": "ticket.created"},
                        "actions": [{"handler": "ok", "params": {}}],
                        "version": 1,
                        "created_at": "2026-01-01T00:00:00Z",
                        "tenant": "9a1d5a8e-1f0e-4c6b-9d0e-2f4a6b8c0d1e",
                        "_links": {},
                    }
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, id: str):
        rule_id = valid_uuid(id, "id")
        self.actor.require("automation:read")
        rule = get_for_tenant(
            AutomationRule, self.actor.tenant, "Automation rule not found", pk=rule_id
        )
        return Response({"data": au.AutomationRuleSerializer(rule).data})
