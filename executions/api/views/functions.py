"""Seed 000 (Mudbase functions): retry by log index or by stable id, the log, one execution.

Errors: {"success": false, "error": "<message>"}; a successful or running execution is a 400.
"""

from __future__ import annotations

from django.db.models import Avg, Count, Max, Q
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.models import Function, FunctionExecution
from executions.tenancy import get_for_tenant

from .. import serializers as s
from ..base import (
    ApiView,
    query_choice,
    query_datetime,
    query_int,
    query_text,
    valid_id,
    valid_index,
    valid_object_id,
)
from ..docs import KEY_IN_FLIGHT, errors

TAG = ["functions (seed 000)"]
MAX_LOG_OFFSET = 100_000

PATH = [
    OpenApiParameter("projectId", str, OpenApiParameter.PATH, description="Project ID."),
    OpenApiParameter("functionId", str, OpenApiParameter.PATH, description="Function ID."),
]
RETRY_EXAMPLE = OpenApiExample(
    "Retry result",
    value={
        "success": True,
        "data": {
            "success": True,
            "result": {"ok": True},
            "error": None,
            "executionTime": 6544,
            "executionId": "6650e0c2a1b2c3d4e5f60718",
        },
    },
    response_only=True,
)
RETRY_ERRORS = errors(
    "000",
    400,
    401,
    403,
    404,
    409,
    415,
    422,
    messages={
        400: "Cannot retry successful execution (or: still running; or a malformed parameter).",
        404: "Function not found / Execution not found.",
        409: KEY_IN_FLIGHT,
    },
)


def function_for(actor, project_id: str, function_id: str) -> Function:
    return get_for_tenant(
        Function,
        actor.tenant,
        "Function not found",
        pk=function_id,
        tenant__functions_project_id=project_id,
    )


def retry_body(outcome: services.RetryOutcome) -> tuple[int, dict]:
    return 200, {"success": True, "data": s.FunctionRetryDataSerializer(outcome.obj).data}


class FunctionRetryByIndexApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="retryFunctionExecution",
        summary="Retry failed execution",
        description="Retry a failed execution by its index (0-based) in the logs (newest "
        "first). Cannot retry successful executions. The function is invoked again now, "
        "synchronously, with the original payload; `executionId` is the new execution.",
        tags=TAG,
        parameters=[
            *PATH,
            OpenApiParameter(
                "executionIndex", int, OpenApiParameter.PATH, description="0-based index in logs"
            ),
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        request=None,
        responses={200: s.FunctionRetryResponseSerializer, **RETRY_ERRORS},
        examples=[RETRY_EXAMPLE],
    )
    def post(self, request: Request, projectId: str, functionId: str, executionIndex: str):
        project_id = valid_id(projectId, "projectId")
        function_id = valid_id(functionId, "functionId")
        index = valid_index(executionIndex, "executionIndex")
        return self.idempotent(
            request,
            lambda claim: retry_body(
                services.retry_function(
                    self.actor,
                    project_id=project_id,
                    function_id=function_id,
                    index=index,
                    idempotency=claim,
                )
            ),
        )


class FunctionRetryByIdApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="retryFunctionExecutionById",
        summary="Retry failed execution by its stable id",
        description="Like the index route, but addresses the execution by its id, which does "
        "not shift as new executions arrive.",
        tags=TAG,
        parameters=[
            *PATH,
            OpenApiParameter("executionId", str, OpenApiParameter.PATH),
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        request=None,
        responses={200: s.FunctionRetryResponseSerializer, **RETRY_ERRORS},
        examples=[RETRY_EXAMPLE],
    )
    def post(self, request: Request, projectId: str, functionId: str, executionId: str):
        project_id = valid_id(projectId, "projectId")
        function_id = valid_id(functionId, "functionId")
        execution_id = valid_object_id(executionId, "executionId")
        return self.idempotent(
            request,
            lambda claim: retry_body(
                services.retry_function(
                    self.actor,
                    project_id=project_id,
                    function_id=function_id,
                    execution_id=execution_id,
                    idempotency=claim,
                )
            ),
        )


class FunctionLogsApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="getFunctionLogs",
        summary="Function execution logs",
        description="The function's executions, newest first (the order executionIndex "
        "counts in), with stats. Filters: status, since, until (ISO 8601), q (error text).",
        tags=TAG,
        parameters=[
            *PATH,
            OpenApiParameter("limit", int, description="1-100, default 50"),
            OpenApiParameter("offset", int, description="default 0"),
            OpenApiParameter(
                "status", str, enum=FunctionExecution.Status.values, description="filter"
            ),
            OpenApiParameter("since", str, description="ISO 8601 date-time"),
            OpenApiParameter("until", str, description="ISO 8601 date-time"),
            OpenApiParameter("q", str, description="text in the error message"),
        ],
        responses={200: s.FunctionLogsResponseSerializer, **errors("000", 400, 401, 403, 404)},
    )
    def get(self, request: Request, projectId: str, functionId: str):
        project_id = valid_id(projectId, "projectId")
        function_id = valid_id(functionId, "functionId")
        params = request.query_params
        limit = query_int(params, "limit", 50, minimum=1, maximum=100)
        offset = query_int(params, "offset", 0, minimum=0, maximum=MAX_LOG_OFFSET)
        filters = log_filters(params)
        self.actor.require("functions:read")
        function = function_for(self.actor, project_id, function_id)
        executions = FunctionExecution.objects.filter(function=function)
        rows = list(
            executions.filter(filters).order_by("-executed_at", "-id")[offset : offset + limit + 1]
        )
        # Stats cover the function's whole log (what Mudbase reports); one aggregate over the
        # function's own rows, served by the (function, executed_at) index.
        stats = executions.aggregate(
            totalExecutions=Count("pk"),
            successfulExecutions=Count("pk", filter=Q(status="success")),
            failedExecutions=Count("pk", filter=Q(status__in=["failed", "timeout"])),
            avgExecutionTime=Avg("execution_time"),
            lastExecution=Max("executed_at"),
        )
        stats["avgExecutionTime"] = round(stats["avgExecutionTime"] or 0, 3)
        data = {
            "executions": s.FunctionLogExecutionSerializer(rows[:limit], many=True).data,
            "stats": s.FunctionStatsSerializer(stats).data,
            "limit": limit,
            "offset": offset,
            "hasMore": len(rows) > limit,
        }
        return Response({"success": True, "data": data})


def log_filters(params) -> Q:
    q = Q()
    status = query_choice(params, "status", FunctionExecution.Status.values)
    if status:
        q &= Q(status=status)
    since, until = query_datetime(params, "since"), query_datetime(params, "until")
    if since:
        q &= Q(executed_at__gte=since)
    if until:
        q &= Q(executed_at__lt=until)
    text = query_text(params)
    if text:
        q &= Q(error_message__icontains=text)
    return q


class FunctionExecutionApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="getFunctionExecution",
        summary="One function execution",
        description="Status, input, result, error, stack, captured logs and lineage.",
        tags=TAG,
        parameters=[*PATH, OpenApiParameter("executionId", str, OpenApiParameter.PATH)],
        responses={
            200: s.FunctionExecutionResponseSerializer,
            **errors("000", 400, 401, 403, 404),
        },
    )
    def get(self, request: Request, projectId: str, functionId: str, executionId: str):
        project_id = valid_id(projectId, "projectId")
        function_id = valid_id(functionId, "functionId")
        execution_id = valid_object_id(executionId, "executionId")
        self.actor.require("functions:read")
        function = function_for(self.actor, project_id, function_id)
        execution = get_for_tenant(
            FunctionExecution.objects.filter(function=function),
            self.actor.tenant,
            "Execution not found",
            pk=execution_id,
        )
        return Response(
            {"success": True, "data": s.FunctionExecutionDetailSerializer(execution).data}
        )
