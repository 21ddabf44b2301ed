"""Seed 000 (Mudbase functions): retry by log index or by stable id, the log, one execution.

Errors: {"success": false, "error": "<message>"}; a successful or running execution is a 400.
"""

from __future__ import annotations

from django.db.models import Avg, Count, Max, Q
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.models import FunctionExecution
from executions.tenancy import get_for_tenant

from ..base import ApiView, valid_id, valid_index, valid_object_id
from ..docs import KEY_IN_FLIGHT, errors, retry_schema
from ..serializers import functions as fn

TAG = ["functions (seed 000)"]

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
RETRY_MESSAGES = {
    400: "Cannot retry successful execution (or: still running; or a malformed parameter).",
    404: "Function not found / Execution not found.",
    409: KEY_IN_FLIGHT,
}


function_for = services.function_for


def retry_body(outcome: services.RetryOutcome) -> tuple[int, dict]:
    return 200, {"success": True, "data": fn.FunctionRetryDataSerializer(outcome.obj).data}


def retry(view: ApiView, request: Request, project_id: str, function_id: str, **execution):
    """Both retry routes: `execution` is index=<n> or execution_id=<id>."""
    project_id = valid_id(project_id, "projectId")
    function_id = valid_id(function_id, "functionId")
    return view.idempotent(
        request,
        lambda claim: retry_body(
            services.retry_function(
                view.actor,
                project_id=project_id,
                function_id=function_id,
                idempotency=claim,
                **execution,
            )
        ),
    )


def function_retry_schema(operation_id: str, summary: str, description: str, execution):
    return retry_schema(
        "000",
        fn.FunctionRetryResponseSerializer,
        path=[*PATH, execution],
        messages=RETRY_MESSAGES,
        operation_id=operation_id,
        summary=summary,
        description=description,
        tags=TAG,
        examples=[RETRY_EXAMPLE],
    )


class FunctionRetryByIndexApi(ApiView):
    seed = "000"

    @function_retry_schema(
        "retryFunctionExecution",
        "Retry failed execution",
        "Retry a failed execution by its index (0-based) in the logs (newest first). Cannot "
        "retry successful executions. The function is invoked again now, synchronously, with "
        "the original payload; `executionId` is the new execution.",
        OpenApiParameter(
            "executionIndex", int, OpenApiParameter.PATH, description="0-based index in logs"
        ),
    )
    def post(self, request: Request, projectId: str, functionId: str, executionIndex: str):
        index = valid_index(executionIndex, "executionIndex")
        return retry(self, request, projectId, functionId, index=index)


class FunctionRetryByIdApi(ApiView):
    seed = "000"

    @function_retry_schema(
        "retryFunctionExecutionById",
        "Retry failed execution by its stable id",
        "Like the index route, but addresses the execution by its id, which does not shift as "
        "new executions arrive.",
        OpenApiParameter("executionId", str, OpenApiParameter.PATH),
    )
    def post(self, request: Request, projectId: str, functionId: str, executionId: str):
        execution_id = valid_object_id(executionId, "executionId")
        return retry(self, request, projectId, functionId, execution_id=execution_id)


class FunctionLogsApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="getFunctionLogs",
        summary="Function execution logs",
        description="The function's executions, newest first (the order executionIndex "
        "counts in), with stats. Filters: status, since, until (ISO 8601), q (error text).",
        tags=TAG,
        parameters=[*PATH, fn.FunctionLogsQuery],
        responses={200: fn.FunctionLogsResponseSerializer, **errors("000", 400, 401, 403, 404)},
    )
    def get(self, request: Request, projectId: str, functionId: str):
        project_id = valid_id(projectId, "projectId")
        function_id = valid_id(functionId, "functionId")
        query = fn.FunctionLogsQuery.parse(request)
        limit, offset = query.validated_data["limit"], query.validated_data["offset"]
        self.actor.require("functions:read")
        function = function_for(self.actor, project_id, function_id)
        executions = FunctionExecution.objects.filter(function=function)
        rows = list(
            query.apply(executions).order_by("-executed_at", "-id")[offset : offset + limit + 1]
        )
        # Stats cover the function's whole log (what Mudbase reports); one aggregate over the
        # function's own rows, served by the (function, executed_at) index.
        stats = function_stats(executions)
        data = {
            "executions": fn.FunctionLogExecutionSerializer(rows[:limit], many=True).data,
            "stats": fn.FunctionStatsSerializer(stats).data,
            "limit": limit,
            "offset": offset,
            "hasMore": len(rows) > limit,
        }
        return Response({"success": True, "data": data})


class FunctionExecutionApi(ApiView):
    seed = "000"

    @extend_schema(
        operation_id="getFunctionExecution",
        summary="One function execution",
        description="Status, input, result, error, stack, captured logs and lineage.",
        tags=TAG,
        parameters=[*PATH, OpenApiParameter("executionId", str, OpenApiParameter.PATH)],
        responses={
            200: fn.FunctionExecutionResponseSerializer,
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
            {"success": True, "data": fn.FunctionExecutionDetailSerializer(execution).data}
        )


def function_stats(executions) -> dict:
    """Mudbase's `stats` of a function's log: one aggregate over its own executions."""
    stats = executions.aggregate(
        totalExecutions=Count("pk"),
        successfulExecutions=Count("pk", filter=Q(status="success")),
        failedExecutions=Count("pk", filter=Q(status__in=["failed", "timeout"])),
        avgExecutionTime=Avg("execution_time"),
        lastExecution=Max("executed_at"),
    )
    stats["avgExecutionTime"] = round(stats["avgExecutionTime"] or 0, 3)
    return stats
