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
from executions.models import ApiKey, Kind, Workflow, WorkflowExecution, WorkflowHeader
from executions.selectors.cursor import keyset_page
from executions.tenancy import Actor, get_for_tenant, scoped

from ..auth import ApiKeyAuthentication
from ..base import ApiView, valid_id, valid_uuid
from ..docs import IDEMPOTENCY_KEY, errors, retry_schema
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


# --- defining and starting workflows (Cognite's upserts, run, cancel) ----------------------------

WORKFLOW_EXAMPLE = {
    "externalId": "nightly-etl",
    "description": "Extract, transform, load",
    "dataSetId": None,
    "maxConcurrentExecutions": None,
    "createdTime": 1730204346000,
    "lastUpdatedTime": 1730204346000,
}
TASKS_EXAMPLE = [
    {
        "externalId": "extract",
        "type": "function",
        "parameters": {"function": {"externalId": "extract-orders", "data": "${workflow.input}"}},
        "retries": 3,
        "timeout": 3600,
        "onFailure": "abortWorkflow",
    },
    {
        "externalId": "load",
        "type": "http",
        "parameters": {
            "http": {
                "url": "https://warehouse.example.com/load",
                "method": "POST",
                "body": {"rows": "${extract.output.response}"},
                "timeout": 30,
            }
        },
        "dependsOn": [{"externalId": "extract"}],
    },
    {
        "externalId": "report",
        "type": "cdf",
        "parameters": {
            "cdfRequest": {"resourcePath": "/workflows/executions/list", "method": "POST"}
        },
        "onFailure": "skipTask",
        "dependsOn": [{"externalId": "load"}],
    },
]
VERSION_EXAMPLE = {
    "workflowExternalId": "nightly-etl",
    "version": "1",
    "workflowDefinition": {"description": "Nightly", "tasks": TASKS_EXAMPLE},
}


def path_text(value: str, field: str) -> str:
    """A workflow's external id or version in the path: 1-255 characters, no NUL."""
    if not value or len(value) > 255 or "\x00" in value or value != value.strip():
        raise InvalidInput(f"{field} must be 1 to 255 characters", field=field)
    return value


class WorkflowUpsertApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="CreateOrUpdateWorkflow",
        summary="Create or update workflows",
        description="Upserts each workflow by externalId (replace mode: a missing description "
        "clears it). Requires workflowOrchestrationACL:WRITE. Idempotency-Key: the same request "
        "again answers the first response.",
        tags=TAG,
        parameters=[PROJECT, IDEMPOTENCY_KEY],
        request=wf.WorkflowUpsertRequestSerializer,
        responses={
            201: wf.WorkflowListSerializer,
            **errors("003", 400, 401, 403, 404, 409, 413, 415, 422),
        },
        examples=[
            OpenApiExample(
                "Body",
                value={"items": [{"externalId": "nightly-etl", "description": "ETL"}]},
                request_only=True,
            ),
            OpenApiExample("Upserted", value={"items": [WORKFLOW_EXAMPLE]}, response_only=True),
        ],
    )
    def post(self, request: Request, project: str):
        project = valid_id(project, "project")
        items = wf.WorkflowUpsertRequestSerializer.check(request.data)["items"]

        def perform(claim: Claim | None) -> tuple[int, dict]:
            rows = services.upsert_workflows(self.actor, project, items)
            return 201, {"items": wf.WorkflowSerializer(rows, many=True).data}

        return self.idempotent(request, perform)


class WorkflowVersionUpsertApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="CreateOrUpdateWorkflowVersion",
        summary="Create or update workflow versions",
        description="Upserts each version of a workflow (made if new). Task types: `function` "
        "(parameters.function.externalId: a function of this tenant by name or id; data: its "
        "payload), `cdf` (parameters.cdfRequest: resourcePath under the project, method, "
        "queryParameters, body, requestTimeoutInMillis; made as the user of the session that "
        "started the execution), and Redrive's `http` (parameters.http: url, method, headers, "
        "body, timeout) and `handler` (parameters.handler: name, params). retries (default 3), "
        "timeout (s, default 3600), onFailure (abortWorkflow | skipTask), dependsOn as Cognite "
        "defines them; `${workflow.input}` and `${<task>.output...}` are resolved when a task "
        "runs. Requires workflowOrchestrationACL:WRITE.",
        tags=TAG,
        parameters=[PROJECT, IDEMPOTENCY_KEY],
        request=wf.WorkflowVersionUpsertRequestSerializer,
        responses={
            201: wf.WorkflowVersionListSerializer,
            **errors("003", 400, 401, 403, 404, 409, 413, 415, 422),
        },
        examples=[
            OpenApiExample("Body", value={"items": [VERSION_EXAMPLE]}, request_only=True),
            OpenApiExample(
                "Upserted",
                value={
                    "items": [
                        {
                            **VERSION_EXAMPLE,
                            "workflowDefinition": {
                                "hash": "5c8e0f3a9d4b7e21c6a0f9b8d7e6c5b4",
                                "description": "Nightly",
                                "tasks": TASKS_EXAMPLE,
                            },
                            "createdTime": 1730204346000,
                            "lastUpdatedTime": 1730204346000,
                        }
                    ]
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, project: str):
        project = valid_id(project, "project")
        items = wf.WorkflowVersionUpsertRequestSerializer.check(request.data)["items"]

        def perform(claim: Claim | None) -> tuple[int, dict]:
            rows = services.upsert_workflow_versions(self.actor, project, items)
            return 201, {"items": wf.WorkflowVersionSerializer(rows, many=True).data}

        return self.idempotent(request, perform)


class WorkflowRunApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="TriggerRunOfSpecificVersionOfWorkflow",
        summary="Run a workflow version",
        description="Starts a new execution (RUNNING, queued for a worker) with `input` and "
        "`metadata`. authentication.nonce (POST /sessions) is single-use; the execution's "
        "tasks run as its session's identity. Requires workflowOrchestrationACL:WRITE. "
        "Idempotency-Key: the same request again answers the same execution.",
        tags=TAG,
        parameters=[
            PROJECT,
            OpenApiParameter("workflowExternalId", str, OpenApiParameter.PATH),
            OpenApiParameter("version", str, OpenApiParameter.PATH),
            IDEMPOTENCY_KEY,
        ],
        request=wf.WorkflowRunRequestSerializer,
        responses={
            201: wf.WorkflowExecutionSerializer,
            **errors("003", 400, 401, 403, 404, 409, 413, 415, 422),
        },
        examples=[
            OpenApiExample(
                "Body",
                value={
                    "authentication": {"nonce": "hOfy4Zop4N2SPRfl"},
                    "input": {"day": "2026-12-01"},
                    "metadata": {"source": "cron"},
                },
                request_only=True,
            ),
            OpenApiExample("Started", value=EXECUTION_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request: Request, project: str, workflowExternalId: str, version: str):
        project = valid_id(project, "project")
        external_id = path_text(workflowExternalId, "workflowExternalId")
        version = path_text(version, "version")
        body = wf.WorkflowRunRequestSerializer.check(request.data)

        def perform(claim: Claim | None) -> tuple[int, dict]:
            execution = services.run_workflow(
                self.actor,
                project,
                external_id,
                version,
                nonce=body["authentication"],
                input_data=body.get("input"),
                metadata=body.get("metadata"),
            )
            return 201, wf.WorkflowExecutionSerializer(execution).data

        return self.idempotent(request, perform)


class WorkflowCancelApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="CancelWorkflowExecution",
        summary="Cancel a workflow execution",
        description="A RUNNING execution becomes TERMINATED with `reason`; its started tasks "
        "are CANCELED (a retry runs them again). Not RUNNING: 409. Requires "
        "workflowOrchestrationACL:WRITE.",
        tags=TAG,
        parameters=[PROJECT, EXECUTION_ID],
        request=wf.WorkflowCancelRequestSerializer,
        responses={
            200: wf.WorkflowExecutionSerializer,
            **errors("003", 400, 401, 403, 404, 409, 413, 415),
        },
        examples=[
            OpenApiExample("Body", value={"reason": "wrong input"}, request_only=True),
            OpenApiExample(
                "Canceled",
                value={
                    **EXECUTION_EXAMPLE,
                    "status": "TERMINATED",
                    "endTime": 1730204399000,
                    "reasonForIncompletion": "wrong input",
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, project: str, executionId: str):
        project = valid_id(project, "project")
        execution_id = valid_uuid(executionId, "executionId")
        reason = wf.WorkflowCancelRequestSerializer.check(request.data).get("reason")
        execution = services.cancel_workflow(self.actor, project, execution_id, reason)
        return Response(wf.WorkflowExecutionSerializer(execution).data)


class WorkflowApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="RetrieveWorkflow",
        summary="Retrieve a workflow",
        description="Requires workflowOrchestrationACL:READ. Unknown (or another tenant's): 404, "
        "which the cognite-sdk's `workflows.retrieve` turns into None.",
        tags=TAG,
        parameters=[PROJECT, OpenApiParameter("workflowExternalId", str, OpenApiParameter.PATH)],
        responses={200: wf.WorkflowSerializer, **errors("003", 400, 401, 403, 404)},
        examples=[OpenApiExample("Workflow", value=WORKFLOW_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, project: str, workflowExternalId: str):
        project = valid_id(project, "project")
        external_id = path_text(workflowExternalId, "workflowExternalId")
        self.actor.require("workflowOrchestrationACL:READ")
        check_project(self.actor, project)
        header = get_for_tenant(
            WorkflowHeader, self.actor.tenant, "Workflow not found", external_id=external_id
        )
        return Response(wf.WorkflowSerializer(header).data)


class WorkflowVersionApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="RetrieveWorkflowVersion",
        summary="Retrieve a workflow version",
        description="Its definition in Cognite's shape. Requires workflowOrchestrationACL:READ; "
        "unknown: 404 (the cognite-sdk's `versions.retrieve` returns None).",
        tags=TAG,
        parameters=[
            PROJECT,
            OpenApiParameter("workflowExternalId", str, OpenApiParameter.PATH),
            OpenApiParameter("version", str, OpenApiParameter.PATH),
        ],
        responses={200: wf.WorkflowVersionSerializer, **errors("003", 400, 401, 403, 404)},
        examples=[
            OpenApiExample(
                "Version",
                value={
                    **VERSION_EXAMPLE,
                    "workflowDefinition": {
                        "hash": "5c8e0f3a9d4b7e21c6a0f9b8d7e6c5b4",
                        "description": "Nightly",
                        "tasks": TASKS_EXAMPLE,
                    },
                    "createdTime": 1730204346000,
                    "lastUpdatedTime": 1730204346000,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, project: str, workflowExternalId: str, version: str):
        project = valid_id(project, "project")
        external_id = path_text(workflowExternalId, "workflowExternalId")
        version = path_text(version, "version")
        self.actor.require("workflowOrchestrationACL:READ")
        check_project(self.actor, project)
        row = get_for_tenant(
            Workflow,
            self.actor.tenant,
            "Workflow version not found",
            external_id=external_id,
            version=version,
        )
        return Response(wf.WorkflowVersionSerializer(row).data)
