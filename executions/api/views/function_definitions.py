"""Seed 000 (Mudbase functions), defining and starting them as mudbase's FunctionsApi does:
create/list/get/update/delete, activate/deactivate, versions/rollback, execute (asynchronous:
202 with the queued execution's id) and the public webhook trigger.

Errors: {"success": false, "error": "<message>"}. The state changes live in
executions/kinds/functions/defining.py and starting.py.
"""

from __future__ import annotations

import hmac
import math

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions.errors import NotFound
from executions.kinds.functions import defining, starting
from executions.models import Function, FunctionExecution
from executions.tenancy import Actor

from ..base import ApiView, valid_id
from ..docs import IDEMPOTENCY_KEY, errors
from ..errors import Unauthorized
from ..serializers import functions as fn
from .functions import PATH, TAG, function_for, function_stats

PROJECT = [OpenApiParameter("projectId", str, OpenApiParameter.PATH, description="Project ID.")]
WRITE, EXECUTE, READ = "functions:write", "functions:execute", "functions:read"

FUNCTION = {
    "_id": "6650e0c2a1b2c3d4e5f60718",
    "name": "charge-card",
    "description": "Charges the order's card",
    "projectId": "6650e0c2a1b2c3d4e5f60001",
    "trigger": {"type": "http"},
    "isActive": True,
    "code": "if (payload.fail) throw new Error('card declined');\nreturn {charged: true};",
    "version": 1,
    "environment": {"REGION": "eu", "API_KEY": {"secret": True, "value": "sk_…9f"}},
    "limits": {
        "timeout": 30000,
        "maxPayloadSize": 1048576,
        "maxExecutionsPerMinute": None,
        "maxExecutionsPerHour": None,
    },
    "retryPolicy": {"enabled": False, "maxRetries": 3, "backoffMs": 1000},
    "nextFireAt": None,
    "createdBy": "key:rk_live_ab12",
    "createdAt": "2026-05-01T09:30:00Z",
    "updatedAt": "2026-05-01T09:30:00Z",
}
CREATE_EXAMPLE = OpenApiExample(
    "Create",
    value={
        "name": "charge-card",
        "description": "Charges the order's card",
        "code": FUNCTION["code"],
        "trigger": {"type": "http"},
        "environment": {"REGION": "eu"},
    },
    request_only=True,
)
UPDATE_EXAMPLE = OpenApiExample(
    "Update",
    value={
        "code": "return {charged: true, amount: payload.amount};",
        "versionComment": "no longer fails on a declined card",
        "limits": {"timeout": 5000, "maxExecutionsPerMinute": 60},
        "retryPolicy": {"enabled": True, "maxRetries": 3, "backoffMs": 2000},
    },
    request_only=True,
)
FUNCTION_EXAMPLE = OpenApiExample(
    "Function", value={"success": True, "data": FUNCTION}, response_only=True
)
QUEUED_EXAMPLE = OpenApiExample(
    "Queued",
    value={
        "success": True,
        "data": {"executionId": "6650e0c2a1b2c3d4e5f60799", "status": "queued"},
    },
    response_only=True,
)


def _function(actor: Actor, project_id: str, function_id: str) -> Function:
    return function_for(
        actor, valid_id(project_id, "projectId"), valid_id(function_id, "functionId")
    )


def _check_project(actor: Actor, project_id: str) -> None:
    if valid_id(project_id, "projectId") != actor.tenant.functions_project_id:
        raise NotFound("Project not found")


def _body(function: Function, status: int = 200) -> tuple[int, dict]:
    return status, {"success": True, "data": fn.FunctionSerializer(function).data}


class FunctionListApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="listFunctions",
        summary="List functions",
        description="The project's functions, newest first; search (name or description), "
        "triggerType and isActive filter, page and limit paginate.",
        tags=TAG,
        parameters=[*PROJECT, fn.FunctionListQuery],
        responses={
            200: fn.FunctionListResponseSerializer,
            **errors("000", 400, 401, 403, 404),
        },
        examples=[
            OpenApiExample(
                "Functions",
                value={
                    "success": True,
                    "data": {
                        "functions": [FUNCTION],
                        "pagination": {"page": 1, "limit": 20, "total": 1, "totalPages": 1},
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, projectId: str):
        query = fn.FunctionListQuery.parse(request)
        self.actor.require(READ)
        _check_project(self.actor, projectId)
        page, limit = query.validated_data["page"], query.validated_data["limit"]
        qs = query.apply(Function.objects.filter(tenant=self.actor.tenant))
        total = qs.count()
        rows = qs.select_related("tenant").order_by("-created_at", "-pk")[
            (page - 1) * limit : page * limit
        ]
        pagination = {
            "page": page,
            "limit": limit,
            "total": total,
            "totalPages": math.ceil(total / limit),
        }
        data = {"functions": fn.FunctionSerializer(rows, many=True).data, "pagination": pagination}
        return Response({"success": True, "data": data})

    @extend_schema(
        operation_id="createFunction",
        summary="Create function",
        description="A function: JavaScript `code` (the body of an async function that sees "
        "`payload`, `context`, `env` and `console`; it must compile), a `trigger` (http, "
        "webhook, or cron with a `schedule`: minutely, hourly, daily, weekly or a cron "
        "expression) and an `environment`. Its code is version 1. With an Idempotency-Key, a "
        "replay answers the same 201.",
        tags=TAG,
        parameters=[*PROJECT, IDEMPOTENCY_KEY],
        request=fn.CreateFunctionInput,
        responses={
            201: fn.FunctionResponseSerializer,
            **errors("000", 400, 401, 403, 404, 409, 413, 415, 422),
        },
        examples=[CREATE_EXAMPLE, FUNCTION_EXAMPLE],
    )
    def post(self, request: Request, projectId: str):
        self.actor.require(WRITE)
        _check_project(self.actor, projectId)
        data = fn.CreateFunctionInput.check(request.data)
        return self.idempotent(request, lambda claim: _body(defining.create(self.actor, data), 201))


class FunctionApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="getFunction",
        summary="Get function",
        description="The function with its code, version, limits, retry policy and stats "
        "(environment secrets masked).",
        tags=TAG,
        parameters=PATH,
        responses={200: fn.FunctionResponseSerializer, **errors("000", 400, 401, 403, 404)},
        examples=[FUNCTION_EXAMPLE],
    )
    def get(self, request: Request, projectId: str, functionId: str):
        self.actor.require(READ)
        function = _function(self.actor, projectId, functionId)
        status, body = _body(function)
        executions = FunctionExecution.objects.filter(function=function)
        stats = function_stats(executions)
        body["data"]["stats"] = fn.FunctionStatsSerializer(stats).data
        return Response(body, status=status)

    @extend_schema(
        operation_id="updateFunction",
        summary="Update function",
        description="Change any of name, description, code (a new version; `versionComment` "
        "notes it), trigger, environment, isActive, limits (timeout ms, maxPayloadSize bytes, "
        "maxExecutionsPerMinute/PerHour: 429 past them) and retryPolicy (enabled, maxRetries, "
        "backoffMs: a failed execution is retried by itself, each retry a new execution in "
        "its lineage). Fields not given stay as they are.",
        tags=TAG,
        parameters=PATH,
        request=fn.UpdateFunctionInput,
        responses={
            200: fn.FunctionResponseSerializer,
            **errors("000", 400, 401, 403, 404, 413, 415),
        },
        examples=[UPDATE_EXAMPLE, FUNCTION_EXAMPLE],
    )
    def put(self, request: Request, projectId: str, functionId: str):
        self.actor.require(WRITE)
        function = _function(self.actor, projectId, functionId)
        data = fn.UpdateFunctionInput.check(request.data)
        status, body = _body(defining.update(self.actor, function, data))
        return Response(body, status=status)

    @extend_schema(
        operation_id="deleteFunction",
        summary="Delete function",
        description="The function, its versions and its executions.",
        tags=TAG,
        parameters=PATH,
        responses={200: fn.FunctionDeletedResponseSerializer, **errors("000", 400, 401, 403, 404)},
        examples=[
            OpenApiExample(
                "Deleted",
                value={"success": True, "message": "Function deleted"},
                response_only=True,
            )
        ],
    )
    def delete(self, request: Request, projectId: str, functionId: str):
        self.actor.require(WRITE)
        defining.delete(_function(self.actor, projectId, functionId))
        return Response({"success": True, "message": "Function deleted"})


def _activation(active: bool):
    word = "Activate" if active else "Deactivate"

    class FunctionActivationApi(ApiView):
        seed = "000"

        @extend_schema(
            operation_id=f"{word.lower()}Function",
            summary=f"{word} function",
            description=(
                "The function runs again when executed, triggered or due."
                if active
                else "A deactivated function refuses execution (400 saying so); its webhook "
                "and cron triggers do not fire."
            ),
            tags=TAG,
            parameters=PATH,
            request=None,
            responses={200: fn.FunctionResponseSerializer, **errors("000", 400, 401, 403, 404)},
            examples=[FUNCTION_EXAMPLE],
        )
        def post(self, request: Request, projectId: str, functionId: str):
            self.actor.require(WRITE)
            function = _function(self.actor, projectId, functionId)
            status, body = _body(defining.set_active(function, active))
            return Response(body, status=status)

    FunctionActivationApi.__name__ = f"Function{word}Api"
    return FunctionActivationApi


FunctionActivateApi = _activation(True)
FunctionDeactivateApi = _activation(False)


class FunctionExecuteApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="executeFunction",
        summary="Execute function",
        description="Asynchronous: queues an execution for a worker and answers 202 with its "
        "id; read its outcome with getFunctionExecution until `status` leaves "
        "queued/running. 400 for a deactivated function or a payload over maxPayloadSize, "
        "429 past maxExecutionsPerMinute/PerHour.",
        tags=TAG,
        parameters=[*PATH, IDEMPOTENCY_KEY],
        request=fn.FunctionExecuteInput,
        responses={
            202: fn.FunctionExecutionQueuedResponseSerializer,
            **errors("000", 400, 401, 403, 404, 409, 413, 415, 422, 429),
        },
        examples=[
            OpenApiExample("Execute", value={"payload": {"orderId": 42}}, request_only=True),
            QUEUED_EXAMPLE,
        ],
    )
    def post(self, request: Request, projectId: str, functionId: str):
        self.actor.require(EXECUTE)
        function = _function(self.actor, projectId, functionId)
        payload = fn.FunctionExecuteInput.check(request.data).get("payload") or {}
        invoked_by = "api_key" if self.actor.api_key is not None else "manual"

        def perform(claim) -> tuple[int, dict]:
            execution = starting.start(function, payload, invoked_by=invoked_by)
            return 202, {"success": True, "data": {"executionId": execution.pk, "status": "queued"}}

        return self.idempotent(request, perform)


class FunctionVersionsApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="getFunctionVersions",
        summary="Function versions",
        description="Every code the function has had, newest first. An execution records the "
        "version it ran (`functionVersion`).",
        tags=TAG,
        parameters=PATH,
        responses={
            200: fn.FunctionVersionsResponseSerializer,
            **errors("000", 400, 401, 403, 404),
        },
        examples=[
            OpenApiExample(
                "Versions",
                value={
                    "success": True,
                    "data": {
                        "versions": [
                            {
                                "_id": "6650e0c2a1b2c3d4e5f60718:2",
                                "code": "return {charged: true};",
                                "version": 2,
                                "createdAt": "2026-05-01T10:00:00Z",
                                "createdBy": "key:rk_live_ab12",
                                "comment": "no longer fails",
                            }
                        ]
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, projectId: str, functionId: str):
        self.actor.require(READ)
        function = _function(self.actor, projectId, functionId)
        versions = fn.FunctionVersionSerializer(defining.versions(function), many=True).data
        return Response({"success": True, "data": {"versions": versions}})


class FunctionRollbackApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="rollbackFunction",
        summary="Roll back function",
        description="The code of `version` becomes the function's code again, as a new "
        "version. Retries run the function's current code: roll back first to retry with an "
        "older one. 404 for a version it never had.",
        tags=TAG,
        parameters=PATH,
        request=fn.FunctionRollbackInput,
        responses={
            200: fn.FunctionResponseSerializer,
            **errors("000", 400, 401, 403, 404, 413, 415),
        },
        examples=[
            OpenApiExample("Rollback", value={"version": 1}, request_only=True),
            FUNCTION_EXAMPLE,
        ],
    )
    def post(self, request: Request, projectId: str, functionId: str):
        self.actor.require(WRITE)
        function = _function(self.actor, projectId, functionId)
        version = fn.FunctionRollbackInput.check(request.data)["version"]
        status, body = _body(defining.rollback(self.actor, function, version))
        return Response(body, status=status)


class FunctionWebhookApi(ApiView):
    """Public, as Mudbase's: whoever knows the project id (and the secret, when
    REDRIVE_FUNCTION_WEBHOOK_SECRET is set) triggers its active webhook functions."""

    seed = "000"
    authenticated = False

    @extend_schema(
        operation_id="triggerFunctionWebhook",
        summary="Trigger webhook functions",
        description="Starts one execution of each active function of the project whose "
        "trigger type is webhook, with the request body as payload. No authentication; "
        "X-Webhook-Secret is checked when the server has REDRIVE_FUNCTION_WEBHOOK_SECRET set.",
        tags=TAG,
        auth=[],
        parameters=[
            *PROJECT,
            OpenApiParameter("X-Webhook-Secret", str, OpenApiParameter.HEADER, required=False),
        ],
        request={"application/json": {"type": "object"}},
        responses={
            200: fn.FunctionWebhookResponseSerializer,
            **errors("000", 400, 401, 404, 413, 415),
        },
        examples=[
            OpenApiExample(
                "Triggered",
                value={
                    "success": True,
                    "triggered": 1,
                    "results": [
                        {
                            "functionId": "6650e0c2a1b2c3d4e5f60718",
                            "executionId": "6650e0c2a1b2c3d4e5f60799",
                            "status": "queued",
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, projectId: str):
        project_id = valid_id(projectId, "projectId")
        secret = settings.REDRIVE_FUNCTION_WEBHOOK_SECRET
        given = request.headers.get("X-Webhook-Secret", "")
        if secret and not hmac.compare_digest(secret.encode(), given.encode()):
            raise Unauthorized("Invalid webhook secret")
        functions = list(starting.webhook_functions(project_id))
        if not functions:
            raise NotFound("No active webhook function in this project")
        body = request.data if isinstance(request.data, dict) else {"value": request.data}
        results = starting.fire_webhook(functions, body)
        started = sum(1 for r in results if "executionId" in r)
        return Response({"success": True, "triggered": started, "results": results})
