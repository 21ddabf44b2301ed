"""Seed 002 (jobs): retry clones a finished job (201); list and detail with the event timeline.

Errors: {"error": "...", "details": "...", "code": <int>}. A job still in flight: 400. Retrying
needs jobs:write and the original operation's permission (command.exec -> command:execute).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.errors import InvalidInput
from executions.idempotency import Claim
from executions.models import Job
from executions.tenancy import get_for_tenant, scoped
from executions.validation import HOSTNAME_RE

from .. import serializers as s
from ..base import ApiView, keyset_page, query_choice, query_int, query_text, valid_uuid
from ..docs import KEY_IN_FLIGHT, errors

TAG = ["jobs (seed 002)"]
ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="UUID of the job.")


class JobRetryApi(ApiView):
    seed = "002"

    @extend_schema(
        operation_id="retryJob",
        summary="Retry a job",
        description="Create a new job using the same operation data as an existing job. The "
        "original job is preserved (it gets a `retried` event naming the new job). Returns "
        "the new job ID.",
        tags=TAG,
        parameters=[
            ID,
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        request=s.JobRetryRequestSerializer,
        responses={
            201: s.JobRetrySerializer,
            **errors(
                "002",
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                422,
                messages={
                    400: "Invalid request parameters (or the job is still in flight).",
                    401: "Unauthorized - API key required",
                    403: "Forbidden - Insufficient permissions",
                    404: "Job not found.",
                    409: KEY_IN_FLIGHT,
                },
            ),
        },
        examples=[
            OpenApiExample(
                "Created",
                value={
                    "job_id": "550e8400-e29b-41d4-a716-446655440000",
                    "status": "unprocessed",
                    "revision": 1,
                    "timestamp": "2025-06-14T10:00:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample("Body", value={"target_hostname": "worker-1"}, request_only=True),
        ],
    )
    def post(self, request: Request, id: str):
        job_id = valid_uuid(id, "id")
        body = self.body_object(request)
        target = body.get("target_hostname", Job.ANY_HOST)
        if not isinstance(target, str) or not HOSTNAME_RE.match(target):
            raise InvalidInput("target_hostname must be a valid hostname", field="target_hostname")

        def perform(claim: Claim | None) -> tuple[int, dict]:
            outcome = services.retry_job(
                self.actor, job_id, target_hostname=target, idempotency=claim
            )
            return 201, s.JobRetrySerializer(outcome.obj).data

        return self.idempotent(request, perform)


class JobApi(ApiView):
    seed = "002"

    @extend_schema(
        operation_id="getJob",
        summary="Get a job with its event timeline",
        tags=TAG,
        parameters=[ID],
        responses={200: s.JobDetailSerializer, **errors("002", 400, 401, 403, 404)},
    )
    def get(self, request: Request, id: str):
        job_id = valid_uuid(id, "id")
        self.actor.require("jobs:read")
        job = get_for_tenant(
            Job.objects.prefetch_related("events"), self.actor.tenant, "Job not found", pk=job_id
        )
        data = s.JobDetailSerializer(job).data
        return Response(data)


class JobListApi(ApiView):
    seed = "002"

    @extend_schema(
        operation_id="listJobs",
        summary="List jobs",
        description="Newest first, keyset-paginated (pass `next_cursor` back as `cursor`).",
        tags=TAG,
        parameters=[
            OpenApiParameter("status", str, enum=Job.Status.values),
            OpenApiParameter("operation_type", str),
            OpenApiParameter("q", str, description="text in the error message"),
            OpenApiParameter("limit", int, description="1-100, default 25"),
            OpenApiParameter("cursor", str),
        ],
        responses={200: s.JobListSerializer, **errors("002", 400, 401, 403)},
    )
    def get(self, request: Request):
        params = request.query_params
        status = query_choice(params, "status", Job.Status.values)
        op_type = query_text(params, "operation_type", 64)
        text = query_text(params)
        limit = query_int(params, "limit", 25, minimum=1, maximum=100)
        self.actor.require("jobs:read")
        qs = scoped(Job, self.actor.tenant)
        if status:
            qs = qs.filter(status=status)
        if op_type:
            qs = qs.filter(operation_type=op_type)
        if text:
            qs = qs.filter(error_message__icontains=text)
        rows, cursor = keyset_page(qs, "created_at", limit, params.get("cursor"))
        return Response(
            {
                "jobs": s.JobSerializer(rows, many=True).data,
                "limit": limit,
                "next_cursor": cursor,
            }
        )
