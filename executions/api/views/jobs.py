"""Seed 002 (jobs): create a job for a host (201), retry clones a finished job (201); list and
detail with the event timeline (and what an unprocessed job waits for).

Errors: {"error": "...", "details": "...", "code": <int>}. A job still in flight: 400. Retrying
needs jobs:write and the original operation's permission (command.exec -> command:execute).
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.idempotency import Claim
from executions.models import Job, Kind
from executions.tenancy import get_for_tenant, scoped

from ..base import ApiView, query_page, valid_uuid
from ..docs import IDEMPOTENCY_KEY, KEY_IN_FLIGHT, errors, retry_schema
from ..serializers import jobs as jb

TAG = ["jobs (seed 002)"]
ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="UUID of the job.")


CREATED_EXAMPLE = OpenApiExample(
    "Created",
    value={
        "job_id": "550e8400-e29b-41d4-a716-446655440000",
        "status": "unprocessed",
        "revision": 1,
        "timestamp": "2025-06-14T10:00:00Z",
    },
    response_only=True,
    status_codes=["201"],
)


class JobRetryApi(ApiView):
    seed = "002"

    @retry_schema(
        "002",
        jb.JobRetrySerializer,
        path=[ID],
        status=201,
        messages={
            400: "Invalid request parameters (or the job is still in flight).",
            401: "Unauthorized - API key required",
            403: "Forbidden - Insufficient permissions",
            404: "Job not found.",
            409: KEY_IN_FLIGHT,
        },
        operation_id="retryJob",
        summary="Retry a job",
        description="Create a new job using the same operation data as an existing job. The "
        "original job is preserved (it gets a `retried` event naming the new job). Returns "
        "the new job ID.",
        tags=TAG,
        body=jb.JobRetryRequestSerializer,
        examples=[
            CREATED_EXAMPLE,
            OpenApiExample("Body", value={"target_hostname": "worker-1"}, request_only=True),
        ],
    )
    def post(self, request: Request, id: str):
        job_id = valid_uuid(id, "id")
        target = jb.JobRetryRequestSerializer.check(request.data)["target_hostname"]

        def perform(claim: Claim | None) -> tuple[int, dict]:
            outcome = services.retry_job(
                self.actor, job_id, target_hostname=target, idempotency=claim
            )
            return 201, jb.JobRetrySerializer(outcome.obj).data

        return self.idempotent(request, perform)


class JobApi(ApiView):
    seed = "002"

    @extend_schema(
        operation_id="getJob",
        summary="Get a job with its event timeline",
        tags=TAG,
        parameters=[ID],
        responses={200: jb.JobDetailSerializer, **errors("002", 400, 401, 403, 404)},
    )
    def get(self, request: Request, id: str):
        job_id = valid_uuid(id, "id")
        self.actor.require("jobs:read")
        job = get_for_tenant(
            Job.objects.prefetch_related("events"), self.actor.tenant, "Job not found", pk=job_id
        )
        data = jb.JobDetailSerializer(job).data
        return Response(data)


class JobListApi(ApiView):
    seed = "002"

    @extend_schema(
        operation_id="createJob",
        summary="Create a job",
        description="Queue an operation for the worker started with `--hostname` equal to "
        "`target_hostname` (any worker for `_any`, the default). `operation.type` is "
        "`command.exec` or a registered handler's name; the data is checked now (400 naming the "
        "field). Needs `jobs:write` and the operation's own permission (`command:execute` for "
        "`command.exec`). Answers in the retry's shape; `GET /job/{id}` then says what it waits "
        "for (`waiting`: `no live worker for host web-01`) while its host has no live worker.",
        tags=TAG,
        parameters=[IDEMPOTENCY_KEY],
        request=jb.JobCreateRequestSerializer,
        responses={
            201: jb.JobRetrySerializer,
            **errors("002", 400, 401, 403, 409, 413, 415, 422, messages={409: KEY_IN_FLIGHT}),
        },
        examples=[
            CREATED_EXAMPLE,
            OpenApiExample(
                "A command on one host",
                value={
                    "operation": {
                        "type": "command.exec",
                        "data": {"command": "systemctl", "args": ["restart", "nginx"]},
                    },
                    "target_hostname": "web-01",
                },
                request_only=True,
            ),
            OpenApiExample(
                "A handler on any worker",
                value={
                    "operation": {"type": "billing.charge", "data": {"invoice": "INV-1042"}},
                    "target_hostname": "_any",
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request):
        body = jb.JobCreateRequestSerializer.check(request.data)

        def perform(claim: Claim | None) -> tuple[int, dict]:
            job = services.start_job(
                self.actor, body["operation"], body["target_hostname"], idempotency=claim
            )
            return 201, jb.JobRetrySerializer(job).data

        response = self.idempotent(request, perform)
        if response.status_code == 201:
            response["Location"] = reverse("api-job", args=[response.data["job_id"]])
        return response

    @extend_schema(
        operation_id="listJobs",
        summary="List jobs",
        description="Newest first, keyset-paginated (pass `next_cursor` back as `cursor`).",
        tags=TAG,
        parameters=[jb.JobListQuery],
        responses={200: jb.JobListSerializer, **errors("002", 400, 401, 403)},
    )
    def get(self, request: Request):
        query = jb.JobListQuery.parse(request)
        self.actor.require("jobs:read")
        rows, cursor = query_page(query, scoped(Job, self.actor.tenant), Kind.JOB, "created_at")
        return Response(
            {
                "jobs": jb.JobSerializer(rows, many=True).data,
                "limit": query.validated_data["limit"],
                "next_cursor": cursor,
            }
        )
