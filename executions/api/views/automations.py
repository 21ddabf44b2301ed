"""Seed 001 (AlgaPSA automation executions): retry resets the same failed execution to pending and
really queues it; list, detail (with attempt history) and the rule, so every `_links` entry
resolves. Rules are created, replaced and deleted here, and events fire them.

Errors: {"error": {"code": "<CODE>", "message": "..."}}. Missing or other tenant: 404 (the seed's
product answers 500); not failed: 400.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.idempotency import Claim
from executions.models import AutomationExecution, AutomationRule, Kind
from executions.tenancy import get_for_tenant, scoped

from ..base import ApiView, query_page, valid_uuid
from ..docs import IDEMPOTENCY_KEY, KEY_IN_FLIGHT, errors, retry_schema
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


RULE_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="Rule UUID")
RULE_EXAMPLE = {
    "rule_id": "0b6c1c1e-5a7e-4f55-9f0e-3c0d7f1f2a10",
    "name": "Escalate urgent tickets",
    "trigger": {"type": "event", "event": "ticket.created"},
    "conditions": [{"field": "ticket.priority", "operator": "equals", "value": "urgent"}],
    "actions": [
        {"handler": "pager.notify", "params": {"team": "support"}},
        {"url": "https://hooks.example.com/escalate", "method": "POST", "json": {}},
    ],
    "enabled": True,
    "version": 1,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "deleted_at": None,
    "tenant": "9a1d5a8e-1f0e-4c6b-9d0e-2f4a6b8c0d1e",
    "_links": {
        "self": {
            "href": "/api/v1/automation/rules/0b6c1c1e-5a7e-4f55-9f0e-3c0d7f1f2a10",
            "method": "GET",
        },
        "update": {
            "href": "/api/v1/automation/rules/0b6c1c1e-5a7e-4f55-9f0e-3c0d7f1f2a10",
            "method": "PUT",
        },
        "delete": {
            "href": "/api/v1/automation/rules/0b6c1c1e-5a7e-4f55-9f0e-3c0d7f1f2a10",
            "method": "DELETE",
        },
        "executions": {
            "href": "/api/v1/automation/executions?rule_id=0b6c1c1e-5a7e-4f55-9f0e-3c0d7f1f2a10",
            "method": "GET",
        },
        "collection": {"href": "/api/v1/automation/rules", "method": "POST"},
    },
}
RULE_BODY_EXAMPLE = OpenApiExample(
    "Rule",
    value={k: RULE_EXAMPLE[k] for k in ("name", "trigger", "conditions", "actions", "enabled")},
    request_only=True,
)
RULE_WRITE_ERRORS = (400, 401, 403, 413, 415)


def _rule(actor, rule_id: str) -> AutomationRule:
    return get_for_tenant(AutomationRule, actor.tenant, services.RULE_NOT_FOUND, pk=rule_id)


class AutomationRuleListApi(ApiView):
    seed = "001"

    @extend_schema(
        operation_id="listAutomationRules",
        summary="List automation rules",
        description="The tenant's rules (deleted ones left out), newest first, keyset-paginated: "
        "pass `next_cursor` back as `cursor`. `q` searches the name; `enabled` and `event` (the "
        "trigger's event type) filter. Requires automation:read.",
        tags=TAG,
        parameters=[au.AutomationRuleListQuery],
        responses={200: au.AutomationRuleListSerializer, **errors("001", 400, 401, 403)},
        examples=[
            OpenApiExample(
                "Rules",
                value={
                    "data": [RULE_EXAMPLE],
                    "pagination": {"limit": 25, "next_cursor": None, "has_next": False},
                    "_links": {
                        "self": {"href": "/api/v1/automation/rules", "method": "GET"},
                        "create": {"href": "/api/v1/automation/rules", "method": "POST"},
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request):
        query = au.AutomationRuleListQuery.parse(request)
        self.actor.require("automation:read")
        qs = scoped(AutomationRule, self.actor.tenant).filter(deleted_at__isnull=True)
        # The cursor is the seed's one (a rule's id is a UUID like an execution's); ordered by
        # created_at, so an execution list's cursor is refused here and the other way round.
        rows, cursor = query_page(query, qs, Kind.AUTOMATION, "created_at")
        return Response(
            {
                "data": au.AutomationRuleSerializer(rows, many=True).data,
                "pagination": {
                    "limit": query.validated_data["limit"],
                    "next_cursor": cursor,
                    "has_next": bool(cursor),
                },
                "_links": {
                    "self": {"href": reverse("api-automation-rules"), "method": "GET"},
                    "create": {"href": reverse("api-automation-rules"), "method": "POST"},
                },
            }
        )

    @extend_schema(
        operation_id="createAutomationRule",
        summary="Create automation rule",
        description="A rule fires on events of its trigger's type whose data meets all its "
        "conditions, as one execution running its actions (units of work: handler, http, "
        "javascript) in order. Each field is checked now: a 400 names it. Requires "
        "automation:write.",
        tags=TAG,
        parameters=[IDEMPOTENCY_KEY],
        request=au.AutomationRuleRequestSerializer,
        responses={
            201: au.AutomationRuleResponseSerializer,
            **errors("001", *RULE_WRITE_ERRORS, 409, 422, messages={409: KEY_IN_FLIGHT}),
        },
        examples=[
            RULE_BODY_EXAMPLE,
            OpenApiExample(
                "Created", value={"data": RULE_EXAMPLE}, response_only=True, status_codes=["201"]
            ),
        ],
    )
    def post(self, request: Request):
        body = au.AutomationRuleRequestSerializer.check(request.data)

        def perform(claim: Claim | None) -> tuple[int, dict]:
            rule = services.create_automation_rule(self.actor, body, idempotency=claim)
            return 201, {"data": au.AutomationRuleSerializer(rule).data}

        return self.idempotent(request, perform)


class AutomationRuleApi(ApiView):
    seed = "001"

    @extend_schema(
        operation_id="getAutomationRule",
        summary="Get automation rule",
        description="A deleted rule is still answered (with `deleted_at`), so the `rule` link "
        "of its executions resolves.",
        tags=TAG,
        parameters=[RULE_ID],
        responses={
            200: au.AutomationRuleResponseSerializer,
            **errors("001", 400, 401, 403, 404),
        },
        examples=[OpenApiExample("Rule", value={"data": RULE_EXAMPLE}, response_only=True)],
    )
    def get(self, request: Request, id: str):
        rule_id = valid_uuid(id, "id")
        self.actor.require("automation:read")
        return Response({"data": au.AutomationRuleSerializer(_rule(self.actor, rule_id)).data})

    @extend_schema(
        operation_id="updateAutomationRule",
        summary="Update automation rule",
        description="Replaces the rule's definition (every field, as on create) as a new "
        "version; executions already started keep the actions they started with. A deleted "
        "rule: 404. Requires automation:write.",
        tags=TAG,
        parameters=[RULE_ID],
        request=au.AutomationRuleRequestSerializer,
        responses={
            200: au.AutomationRuleResponseSerializer,
            **errors("001", *RULE_WRITE_ERRORS, 404),
        },
        examples=[
            RULE_BODY_EXAMPLE,
            OpenApiExample(
                "Updated",
                value={"data": {**RULE_EXAMPLE, "version": 2}},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def put(self, request: Request, id: str):
        rule_id = valid_uuid(id, "id")
        body = au.AutomationRuleRequestSerializer.check(request.data)
        rule = services.update_automation_rule(self.actor, rule_id, body)
        return Response({"data": au.AutomationRuleSerializer(rule).data})

    @extend_schema(
        operation_id="deleteAutomationRule",
        summary="Delete automation rule",
        description="The rule stops firing and can no longer be changed; it and its "
        "executions are kept (evidence). Requires automation:write.",
        tags=TAG,
        parameters=[RULE_ID],
        request=None,
        responses={204: None, **errors("001", 400, 401, 403, 404)},
    )
    def delete(self, request: Request, id: str):
        rule_id = valid_uuid(id, "id")
        services.delete_automation_rule(self.actor, rule_id)
        return Response(status=204)


class AutomationEventApi(ApiView):
    seed = "001"

    @extend_schema(
        operation_id="publishAutomationEvent",
        summary="Publish an event",
        description="Fires every enabled rule whose trigger names the event's type and whose "
        "conditions hold of its data: one execution per rule, queued for the workers (202, "
        "with their ids; none match: an empty list). Requires automation:execute.",
        tags=TAG,
        parameters=[IDEMPOTENCY_KEY],
        request=au.AutomationEventRequestSerializer,
        responses={
            202: au.AutomationEventResponseSerializer,
            **errors("001", 400, 401, 403, 409, 413, 415, 422, messages={409: KEY_IN_FLIGHT}),
        },
        examples=[
            OpenApiExample(
                "Event",
                value={
                    "type": "ticket.created",
                    "data": {"ticket": {"id": "T-1042", "priority": "urgent"}},
                },
                request_only=True,
            ),
            OpenApiExample(
                "Fired",
                value={
                    "data": {
                        "event_type": "ticket.created",
                        "execution_ids": ["3c1f7d2e-8b4a-4c0e-9f6d-1a2b3c4d5e6f"],
                        "executions": [],
                        "_links": {
                            "executions": {
                                "href": "/api/v1/automation/executions",
                                "method": "GET",
                            }
                        },
                    }
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
    )
    def post(self, request: Request):
        body = au.AutomationEventRequestSerializer.check(request.data)

        def perform(claim: Claim | None) -> tuple[int, dict]:
            fired = services.fire_automation_event(
                self.actor, body["type"], body["data"], idempotency=claim
            )
            data = {
                "event_type": body["type"],
                "execution_ids": [str(e.pk) for e in fired],
                "executions": [_execution_data(e) for e in fired],
                "_links": {
                    "executions": {
                        "href": reverse("api-automation-executions"),
                        "method": "GET",
                    }
                },
            }
            return 202, {"data": data}

        return self.idempotent(request, perform)
