"""Seed 004 (workflow runs): retry creates a new run resuming from the failure point; list and
detail. Every answer is the seed's envelope {"code", "data"|"message", "requestId"}.

Errors: {"code": <int>, "message": "...", "requestId": "..."}. Already retried or not failed: 409
(naming the run that already retried it).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.idempotency import Claim
from executions.models import Kind, Run
from executions.tenancy import get_for_tenant, scoped

from ..base import ApiView, query_page, valid_id
from ..docs import errors, retry_schema
from ..serializers import runs as rn

TAG = ["runs (seed 004)"]
ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="Run ID")


def envelope(request: Request, data) -> dict:
    return {"code": 200, "data": data, "message": "success", "requestId": request.request_id}


class RunRetryApi(ApiView):
    seed = "004"

    @retry_schema(
        "004",
        rn.RunEnvelopeSerializer,
        path=[ID],
        messages={409: "Run <id> was already retried by run <new>, or is not failed."},
        operation_id="retryRun",
        summary="Retry a failed or cancelled run from its failure point",
        description="A new run with sourceRunId = this run: node outputs that succeeded are "
        "carried over in executionState and not executed again; failed and never-run nodes "
        "run. A run is retried at most once (409 names the run that retried it).",
        tags=TAG,
        examples=[
            OpenApiExample(
                "200 Response",
                value={
                    "code": 200,
                    "data": {
                        "executionState": {"root": {}},
                        "finishedAt": None,
                        "id": "run_5f0c6a3e9b1d4c2a8e7f6d5c4b3a2910",
                        "isDustTest": False,
                        "isSimulation": False,
                        "organizationId": "9a1d5a8e-1f0e-4c6b-9d0e-2f4a6b8c0d1e",
                        "propValues": {},
                        "simulationForks": [],
                        "simulationMode": "",
                        "sourceRunId": "run_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                        "startedAt": "2026-01-01T00:00:00Z",
                        "status": "running",
                        "summary": "",
                        "totalCu": 0,
                        "triggerNodeId": "root",
                        "triggerSource": "manual",
                        "triggeredBy": "key:AbCd1234",
                        "workflowDefinition": {"nodes": {}, "triggerNodeIds": ["root"]},
                        "workflowId": "wf_payments",
                        "workflowOwnerUserId": "",
                        "workflowVersion": 1,
                    },
                    "message": "success",
                    "requestId": "abc-123",
                },
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, id: str):
        run_id = valid_id(id, "id")

        def perform(claim: Claim | None) -> tuple[int, dict]:
            outcome = services.retry_run(self.actor, run_id, idempotency=claim)
            return 200, envelope(request, rn.RunSerializer(outcome.obj).data)

        return self.idempotent(request, perform)


class RunApi(ApiView):
    seed = "004"

    @extend_schema(
        operation_id="getRun",
        summary="Get a run",
        description="The run with per-node states, error, stack and lineage (sourceRunId, "
        "retriedBy).",
        tags=TAG,
        parameters=[ID],
        responses={200: rn.RunDetailEnvelopeSerializer, **errors("004", 400, 401, 403, 404)},
    )
    def get(self, request: Request, id: str):
        run_id = valid_id(id, "id")
        self.actor.require("runs:read")
        run = get_for_tenant(Run, self.actor.tenant, "Run not found", pk=run_id)
        return Response(envelope(request, rn.RunDetailSerializer(run).data))


class RunListApi(ApiView):
    seed = "004"

    @extend_schema(
        operation_id="listRuns",
        summary="List runs",
        description="Newest first (startedAt). Pass `nextCursor` back as `cursor`.",
        tags=TAG,
        parameters=[rn.RunListQuery],
        responses={200: rn.RunListEnvelopeSerializer, **errors("004", 400, 401, 403)},
    )
    def get(self, request: Request):
        query = rn.RunListQuery.parse(request)
        self.actor.require("runs:read")
        rows, cursor = query_page(query, scoped(Run, self.actor.tenant), Kind.RUN, "started_at")
        data = {"items": rn.RunSerializer(rows, many=True).data, "nextCursor": cursor}
        return Response(envelope(request, data))
