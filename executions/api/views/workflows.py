"""Seed 003 (Cognite Data Fusion workflow executions): retry resumes the same execution from its
failure points, authorised by a session nonce; sessions; list and detailed retrieve in Cognite's
own conventions ({"items": [...], "nextCursor": ...}, camelCase, epoch-ms times), so the
cognite-sdk works against these routes unchanged.

Errors: {"error": {"code": <int>, "message": "..."}}. Not retryable: 409.
"""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services, validation
from executions.errors import InvalidInput, NotFound
from executions.idempotency import Claim
from executions.models import ApiKey, WorkflowExecution
from executions.tenancy import Actor, get_for_tenant, scoped

from .. import serializers as s
from ..auth import ApiKeyAuthentication
from ..base import ApiView, keyset_page, query_int, valid_id, valid_uuid
from ..docs import errors

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
MAX_LIST = 1000


def check_project(actor: Actor, project: str) -> None:
    if valid_id(project, "project") != actor.tenant.workflows_project:
        raise NotFound("Project not found")


def executions_of(actor: Actor):
    return scoped(WorkflowExecution, actor.tenant).select_related("workflow")


class WorkflowRetryApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="retryWorkflowExecution",
        summary="Retry workflow execution",
        description="Restarts a failed, timed out or terminated workflow execution by retrying "
        "the tasks that ended CANCELED, FAILED, FAILED_WITH_TERMINAL_ERROR or TIMED_OUT "
        "(optional tasks are not retried; completed tasks keep their output). The nonce "
        "(from POST /sessions) is single-use; the retried tasks run as its session's "
        "identity. Requires workflowOrchestrationACL:WRITE.",
        tags=TAG,
        parameters=[
            PROJECT,
            EXECUTION_ID,
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        request=s.WorkflowRetryRequestSerializer,
        responses={
            200: s.WorkflowExecutionSerializer,
            **errors(
                "003",
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                422,
                messages={409: "The execution is not FAILED, TIMED_OUT or TERMINATED."},
            ),
        },
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
        body = self.body_object(request)
        auth = body.get("authentication")
        nonce = auth.get("nonce") if isinstance(auth, dict) else None
        if not isinstance(nonce, str) or not nonce.strip():
            raise InvalidInput("authentication.nonce is required", field="authentication.nonce")
        if "\x00" in nonce:  # no nonce has one, and PostgreSQL cannot even look it up
            raise InvalidInput(
                "authentication.nonce is not a valid, unused session nonce",
                field="authentication.nonce",
            )

        def perform(claim: Claim | None) -> tuple[int, dict]:
            outcome = services.retry_workflow(
                self.actor,
                project=project,
                execution_id=execution_id,
                nonce=nonce,
                idempotency=claim,
            )
            return 200, s.WorkflowExecutionSerializer(outcome.obj).data

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
        responses={200: s.WorkflowExecutionDetailSerializer, **errors("003", 400, 401, 403, 404)},
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
        return Response(s.WorkflowExecutionDetailSerializer(execution).data)


def _ms(value, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    return validation.epoch_milliseconds(value, field)


def _workflow_filter(w: object) -> bool:
    """{externalId, version?}: texts a lookup can carry (PostgreSQL refuses NUL)."""
    if not isinstance(w, dict) or not isinstance(w.get("externalId"), str):
        return False
    version = w.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int | str)):
        return False
    return all("\x00" not in str(v) for v in (w["externalId"], version or ""))


def list_executions(view: ApiView, project: str, flt: dict, limit, cursor) -> Response:
    view.actor.require("workflowOrchestrationACL:READ")
    check_project(view.actor, project)
    qs = executions_of(view.actor)
    statuses = flt.get("status") or []
    if isinstance(statuses, str):
        statuses = [part for part in statuses.split(",") if part]
    if not isinstance(statuses, list) or not all(
        isinstance(x, str) and x.upper() in WorkflowExecution.Status.values for x in statuses
    ):
        raise InvalidInput(
            f"filter.status must be a list of {', '.join(WorkflowExecution.Status.values)}",
            field="filter.status",
        )
    if statuses:
        qs = qs.filter(status__in=[x.upper() for x in statuses])
    start = _ms(flt.get("createdTimeStart"), "filter.createdTimeStart")
    end = _ms(flt.get("createdTimeEnd"), "filter.createdTimeEnd")
    if start:
        qs = qs.filter(created_time__gte=start)
    if end:
        qs = qs.filter(created_time__lte=end)
    workflows = flt.get("workflowFilters") or []
    if not isinstance(workflows, list) or not all(_workflow_filter(w) for w in workflows):
        raise InvalidInput(
            "filter.workflowFilters must be a list of {externalId, version}",
            field="filter.workflowFilters",
        )
    if workflows:
        from django.db.models import Q

        match = Q(pk__in=[])
        for w in workflows:
            one = Q(workflow__external_id=w["externalId"])
            if w.get("version") is not None:
                one &= Q(workflow__version=str(w["version"]))
            match |= one
        qs = qs.filter(match)
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidInput("cursor must be a string", field="cursor")
    rows, next_cursor = keyset_page(qs, "created_time", limit, cursor or None)
    return Response(
        {"items": s.WorkflowExecutionSerializer(rows, many=True).data, "nextCursor": next_cursor}
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
        responses={200: s.WorkflowExecutionListSerializer, **errors("003", 400, 401, 403, 404)},
    )
    def get(self, request: Request, project: str):
        project = valid_id(project, "project")
        params = request.query_params
        limit = query_int(params, "limit", 100, minimum=1, maximum=MAX_LIST)
        flt: dict = {
            "status": params.get("status") or [],
            "createdTimeStart": params.get("createdTimeStart"),
            "createdTimeEnd": params.get("createdTimeEnd"),
        }
        if params.get("workflowExternalId"):
            flt["workflowFilters"] = [{"externalId": params["workflowExternalId"]}]
        return list_executions(self, project, flt, limit, params.get("cursor"))


class WorkflowExecutionListPostApi(ApiView):
    seed = "003"

    @extend_schema(
        operation_id="listWorkflowExecutions",
        summary="List workflow executions (Cognite's POST /list)",
        description='Body: {"filter": {"workflowFilters": [{"externalId", "version"}], '
        '"createdTimeStart", "createdTimeEnd", "status": [...]}, "limit", "cursor"}.',
        tags=TAG,
        parameters=[PROJECT],
        request=s.WorkflowListRequestSerializer,
        responses={
            200: s.WorkflowExecutionListSerializer,
            **errors("003", 400, 401, 403, 404, 413, 415),
        },
    )
    def post(self, request: Request, project: str):
        project = valid_id(project, "project")
        body = self.body_object(request)
        flt = body.get("filter") or {}
        if not isinstance(flt, dict):
            raise InvalidInput("filter must be an object", field="filter")
        limit = body.get("limit", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIST}", field="limit")
        return list_executions(self, project, flt, limit, body.get("cursor"))


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
        request=s.SessionCreateRequestSerializer,
        responses={
            200: s.SessionListSerializer,
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
        body = self.body_object(request)
        items = body.get("items")
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
            raise InvalidInput("items must hold exactly one session request", field="items")
        item = items[0]
        check_project(self.actor, project)
        actor, session_type, client_id = self.actor, "", None
        if item.get("tokenExchange") is True:
            session_type = "TOKEN_EXCHANGE"
        elif item.get("oneshotTokenExchange") is True:
            session_type = "ONESHOT_TOKEN_EXCHANGE"
        elif "clientSecret" in item or "clientId" in item:
            actor, client_id = self._client_credentials(item)
            session_type = "CLIENT_CREDENTIALS"
        else:
            raise InvalidInput(
                "items[0] must be {tokenExchange: true} or {clientId, clientSecret}",
                field="items[0]",
            )
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
        client_id, secret = item.get("clientId"), item.get("clientSecret")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise InvalidInput("clientId and clientSecret are required", field="items[0]")
        if "\x00" in secret:  # no key has one, and PostgreSQL cannot even look it up
            raise InvalidInput("Invalid client credentials", field="items[0].clientSecret")
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
