"""Seed 003 (Cognite Data Fusion workflow executions): retry resumes the same execution from its
failure points, authorised by a session nonce; sessions; list and detailed retrieve in Cognite's
own conventions ({"items": [...], "nextCursor": ...}, camelCase, epoch-ms times), so the
cognite-sdk works against these routes unchanged.

Errors: {"error": {"code": <int>, "message": "..."}}. Not retryable: 409.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.errors import InvalidInput, NotFound
from executions.idempotency import Claim
from executions.models import ApiKey, Kind, WorkflowExecution
from executions.selectors.cursor import keyset_page
from executions.tenancy import Actor, get_for_tenant, scoped

from ..auth import ApiKeyAuthentication
from ..base import ApiView, valid_id, valid_uuid
from ..docs import errors, retry_schema
from ..serializers import workflows as wf

TAG = ["workflows (seed 003)"]
PROJECT = OpenApiParameter("project", str, OpenApiParameter.PATH, description="CDF project.")
EXECUTION_ID = OpenApiParameter(
    "executionId", str, OpenApiParameter.PATH, description="UUIDv4 of the workflow execution."
)
EXECUTION_EXAMPLE = {
    "id": "059edaa4-a17a-4102-910e-2c3591500cce",
    "workflowExternalId": "nightly-etl",
    "status": "RUNNING",
    "engineExecutionId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    "createdTime": 1730204346000,
    "metadata": {},
    "version": "1",
    "startTime": 1730204346000,
    "endTime": None,
    "reasonForIncompletion": None,
}


def check_project(actor: Actor, project: str) -> None:
    if valid_id(project, "project") != actor.tenant.workflows_project:
        raise NotFound("Project not found")


def executions_of(actor: Actor):
    return scoped(WorkflowExecution, actor.tenant).select_related("workflow")


class WorkflowRetryApi(ApiView):
    seed = "003"

    @retry_schema(
        "003",
        wf.WorkflowExecutionSerializer,
        path=[PROJECT, EXECUTION_ID],
        messages={409: "The execution is not FAILED, TIMED_OUT or TERMINATED."},
        operation_id="retryWorkflowExecution",
        summary="Retry workflow execution",
        description="Restarts a failed, timed out or terminated workflow execution by retrying "
        "the tasks that ended CANCELED, FAILED, FAILED_WITH_TERMINAL_ERROR or TIMED_OUT "
        "(optional tasks are not retried; completed tasks keep their output). The nonce "
        "(from POST /sessions) is single-use; the retried tasks run as its session's "
        "identity. Requires workflowOrchestrationACL:WRITE.",
        tags=TAG,
        body=wf.WorkflowRetryRequestSerializer,
        examples=[
            OpenApiExample(
                "Updated workflow execution", value=EXECUTION_EXAMPLE, response_only=True
            ),
            OpenApiExample(
                "Body", value={"authentication": {"nonce": "hOfy4Zop4N2SPRfl"}}, request_only=True
            ),
        ],
    )
    def post(self, request: Request, project: str, executionId: str):
        project = valid_id(project, "project")
        execution_id = valid_uuid(executionId, "executionId")
        nonce = wf.WorkflowRetryRequestSerializer.check(request.data)["authentication"]

        def perform(claim: Claim | None) -> tuple[int, dict]:
            outcome = services.retry_workflow(
                self.actor,
                project=project,
                execution_id=execution_id,
                nonce=nonce,
                idempotency=claim,
            )
            return 200, wf.WorkflowExecutionSerializer(outcome.obj).data

        return self.idempotent(request, perform)


class WorkflowExecutionApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="retrieveWorkflowExecutionDetails",
        summary="Retrieve workflow execution details",
        description="The execution with its definition, its tasks (executedTasks) and the "
        "history of earlier attempts.",
        tags=TAG,
        parameters=[PROJECT, EXECUTION_ID],
        responses={200: wf.WorkflowExecutionDetailSerializer, **errors("003", 400, 401, 403, 404)},
    )
    def get(self, request: Request, project: str, executionId: str):
        project = valid_id(project, "project")
        execution_id = valid_uuid(executionId, "executionId")
        self.actor.require("workflowOrchestrationACL:READ")
        check_project(self.actor, project)
        execution = get_for_tenant(
            executions_of(self.actor),
            self.actor.tenant,
            "Workflow execution not found",
            pk=execution_id,
        )
        return Response(wf.WorkflowExecutionDetailSerializer(execution).data)


def list_executions(view: ApiView, project: str, body: dict) -> Response:
    """Both list routes, once `body` is validated (WorkflowListRequestSerializer)."""
    view.actor.require("workflowOrchestrationACL:READ")
    check_project(view.actor, project)
    qs = executions_of(view.actor)
    if body.get("filter"):
        qs = wf.WorkflowExecutionFilter().apply(qs, body["filter"])
    rows, next_cursor = keyset_page(
        qs, Kind.WORKFLOW, "created_time", body["limit"], body.get("cursor")
    )
    return Response(
        {"items": wf.WorkflowExecutionSerializer(rows, many=True).data, "nextCursor": next_cursor}
    )


class WorkflowExecutionListApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="listWorkflowExecutionsGet",
        summary="List workflow executions",
        description="Newest first. Pass `nextCursor` back as `cursor`.",
        tags=TAG,
        parameters=[
            PROJECT,
            OpenApiParameter("status", str, description="comma-separated statuses"),
            OpenApiParameter("workflowExternalId", str),
            OpenApiParameter("createdTimeStart", int, description="epoch ms"),
            OpenApiParameter("createdTimeEnd", int, description="epoch ms"),
            OpenApiParameter("limit", int, description="1-1000, default 100"),
            OpenApiParameter("cursor", str),
        ],
        responses={200: wf.WorkflowExecutionListSerializer, **errors("003", 400, 401, 403, 404)},
    )
    def get(self, request: Request, project: str):
        project = valid_id(project, "project")
        params = request.query_params
        flt = {
            "status": params.get("status"),
            "createdTimeStart": params.get("createdTimeStart"),
            "createdTimeEnd": params.get("createdTimeEnd"),
        }
        if params.get("workflowExternalId"):
            flt["workflowFilters"] = [{"externalId": params["workflowExternalId"]}]
        # Cognite's GET is its POST /list with the filter in the query: one serializer for both.
        body = {"filter": flt, "limit": params.get("limit"), "cursor": params.get("cursor")}
        return list_executions(self, project, wf.WorkflowListRequestSerializer.check(body))


class WorkflowExecutionListPostApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="listWorkflowExecutions",
        summary="List workflow executions (Cognite's POST /list)",
        description='Body: {"filter": {"workflowFilters": [{"externalId", "version"}], '
        '"createdTimeStart", "createdTimeEnd", "status": [...]}, "limit", "cursor"}.',
        tags=TAG,
        parameters=[PROJECT],
        request=wf.WorkflowListRequestSerializer,
        responses={
            200: wf.WorkflowExecutionListSerializer,
            **errors("003", 400, 401, 403, 404, 413, 415),
        },
    )
    def post(self, request: Request, project: str):
        project = valid_id(project, "project")
        body = wf.WorkflowListRequestSerializer.check(request.data)
        return list_executions(self, project, body)


class SessionCreateApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="createSessions",
        summary="Create a session",
        description='{"items": [{"tokenExchange": true}]} creates a session for the caller; '
        '{"items": [{"clientId": "<key prefix>", "clientSecret": "<API key>"}]} one for that '
        "API key. The nonce is random, single-use and expires after one hour.",
        tags=TAG,
        parameters=[PROJECT],
        request=wf.SessionCreateRequestSerializer,
        responses={
            200: wf.SessionListSerializer,
            **errors("003", 400, 401, 404, 413, 415),
        },
        examples=[
            OpenApiExample(
                "Token exchange", value={"items": [{"tokenExchange": True}]}, request_only=True
            ),
            OpenApiExample(
                "Created",
                value={
                    "items": [
                        {"id": 42, "type": "TOKEN_EXCHANGE", "status": "READY", "nonce": "hOfy4Z"}
                    ]
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, project: str):
        project = valid_id(project, "project")
        session_type, item = wf.SessionCreateRequestSerializer.check(request.data)["items"]
        check_project(self.actor, project)
        actor, client_id = self.actor, None
        if session_type == "CLIENT_CREDENTIALS":
            actor, client_id = self._client_credentials(item)
        session = services.create_session(actor, session_type=session_type)
        item_out = {
            "id": session.pk,
            "type": session.type,
            "status": "READY",
            "nonce": session.nonce,
        }
        if client_id:
            item_out["clientId"] = client_id
        return Response({"items": [item_out]})

    def _client_credentials(self, item: dict) -> tuple[Actor, str]:
        """Client credentials are an API key of this tenant: clientId = its prefix,
        clientSecret = the key. The session then runs as that key."""
        client_id, secret = item["clientId"], item["clientSecret"]
        try:
            key: ApiKey = ApiKeyAuthentication._lookup(secret)
        except exceptions.AuthenticationFailed:
            key = None
        if key is None or key.prefix != client_id or key.tenant_id != self.actor.tenant.pk:
            raise InvalidInput("Invalid client credentials", field="items[0].clientSecret")
        return (
            Actor.for_api_key(
                key, source="api", request_id=self.actor.request_id, ip=self.actor.ip
            ),
            client_id,
        )
