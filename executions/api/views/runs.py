"""Seed 004 (workflow runs): retry creates a new run resuming from the failure point; list and
detail; saved workflows (create, replace, read) and starting a run of one.

Every answer is the seed's envelope {"code", "data"|"message", "requestId"}.

Errors: {"code": <int>, "message": "...", "requestId": "..."}. Already retried or not failed: 409
(naming the run that already retried it).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import services
from executions.idempotency import Claim
from executions.kinds.runs import saved
from executions.models import Kind, Run, SavedWorkflow
from executions.tenancy import get_for_tenant, scoped

from ..base import ApiView, query_page, valid_id
from ..docs import IDEMPOTENCY_KEY, errors, retry_schema
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


# --- saved workflows: define one, change it, start a run of it ------------------------------------

WF_TAG = ["runs (seed 004): workflows"]
WF_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="Workflow ID")
WF_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422)
EXAMPLE_DEFINITION = {
    "nodes": {
        "root": {"type": "trigger"},
        "quote": {
            "type": "code",
            "code": "return {orderId: payload.orderId, total: payload.qty * 250};",
            "params": {"orderId": "{{root.orderId}}", "qty": "{{root.qty}}"},
            "dependsOn": ["root"],
        },
        "charge": {
            "type": "http",
            "url": "https://billing.example.com/charges",
            "method": "POST",
            "headers": {"Authorization": {"value": "Bearer sk_live_...", "secret": True}},
            "json": {"order": "{{quote.orderId}}", "amount": "{{quote.total}}"},
            "dependsOn": ["quote"],
        },
        "notify": {
            "type": "handler",
            "handler": "send_email",
            "params": {"to": "ops@example.com", "charge": "{{charge.json.id}}"},
            "dependsOn": ["charge"],
        },
    },
    "triggerNodeIds": ["root"],
    "inputSchema": [
        {"key": "orderId", "type": "string", "required": True, "description": "the order"},
        {"key": "qty", "type": "number", "required": True, "description": "how many"},
    ],
}
EXAMPLE_WORKFLOW = {
    "id": "wf_3c1e0a9b7d5f4e2a8c6b4d2f0e1a3c5b",
    "name": "charge an order",
    "description": "quote, charge, tell ops",
    "definition": {
        **EXAMPLE_DEFINITION,
        "nodes": {
            **EXAMPLE_DEFINITION["nodes"],
            "charge": {
                **EXAMPLE_DEFINITION["nodes"]["charge"],
                "headers": {"Authorization": {"value": "********", "secret": True}},
            },
        },
        "variableDefs": [],
    },
    "version": 1,
    "organizationId": "9a1d5a8e-1f0e-4c6b-9d0e-2f4a6b8c0d1e",
    "ownerUserId": "key:AbCd1234",
    "createdAt": "2026-01-01T00:00:00Z",
    "updatedAt": "2026-01-01T00:00:00Z",
}
BAD_REFERENCE = (
    "definition.nodes.quote.params.total: {{charge.amount}} references node 'charge', which is "
    "not upstream of 'quote' (add it to dependsOn, directly or through another node)"
)


def wf_envelope(request: Request, data, code: int = 200) -> dict:
    return {"code": code, "data": data, "message": "success", "requestId": request.request_id}


def _workflow_schema(status: int, summary: str, description: str, **kw):
    return extend_schema(
        summary=summary,
        description=description,
        tags=WF_TAG,
        request=rn.SavedWorkflowInput,
        responses={
            status: rn.SavedWorkflowEnvelopeSerializer,
            **errors("004", *WF_ERRORS, messages={400: BAD_REFERENCE}),
        },
        examples=[
            OpenApiExample(
                "request",
                value={
                    "name": EXAMPLE_WORKFLOW["name"],
                    "description": EXAMPLE_WORKFLOW["description"],
                    "definition": EXAMPLE_DEFINITION,
                },
                request_only=True,
            ),
            OpenApiExample(
                f"{status} Response",
                value=wf_envelope_example(status),
                response_only=True,
                status_codes=[str(status)],
            ),
        ],
        **kw,
    )


def wf_envelope_example(status: int) -> dict:
    return {"code": status, "data": EXAMPLE_WORKFLOW, "message": "success", "requestId": "abc-123"}


class WorkflowCreateApi(ApiView):
    seed = "004"

    @extend_schema(
        operation_id="listWorkflows",
        summary="List saved workflows",
        description="The organization's saved workflows, newest first (createdAt), secrets "
        "masked. `q` searches the name. Pass `nextCursor` back as `cursor`. Requires runs:read.",
        tags=WF_TAG,
        parameters=[rn.SavedWorkflowListQuery],
        responses={
            200: rn.SavedWorkflowListEnvelopeSerializer,
            **errors("004", 400, 401, 403),
        },
        examples=[
            OpenApiExample(
                "200 Response",
                value={
                    "code": 200,
                    "data": {"items": [EXAMPLE_WORKFLOW], "nextCursor": None},
                    "message": "success",
                    "requestId": "abc-123",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request):
        query = rn.SavedWorkflowListQuery.parse(request)
        self.actor.require("runs:read")
        # The seed's cursor (Kind.RUN's: a saved workflow's id is a string like a run's),
        # ordered by createdAt, so a run list's cursor is refused here and the other way round.
        qs = scoped(SavedWorkflow, self.actor.tenant)
        rows, cursor = query_page(query, qs, Kind.RUN, "created_at")
        data = {"items": rn.SavedWorkflowSerializer(rows, many=True).data, "nextCursor": cursor}
        return Response(envelope(request, data))

    @_workflow_schema(
        201,
        "Save a workflow",
        "A workflow whose runs execute its definition: trigger nodes (their output is the run's "
        "inputs) and nodes of type code (JavaScript), http or handler, run after the nodes in "
        "their dependsOn. `{{node.field}}` in a node's params, url, headers, body or json is an "
        "upstream node's output (`{{root.key}}`: an input), filled in when the node runs. Every "
        "error names its field. With an Idempotency-Key, the same request again answers the "
        "first answer.",
        operation_id="createWorkflow",
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request):
        self.actor.require(saved.PERMISSION)

        def perform(claim: Claim | None) -> tuple[int, dict]:
            data = rn.SavedWorkflowInput.check(request.data)
            workflow = saved.create_workflow(self.actor, **data, idempotency=claim)
            return 201, wf_envelope(request, rn.SavedWorkflowSerializer(workflow).data, 201)

        return self.idempotent(request, perform)


class WorkflowApi(ApiView):
    seed = "004"

    @extend_schema(
        operation_id="getWorkflow",
        summary="Get a saved workflow",
        description="Its definition (secret header and env values masked) and version.",
        tags=WF_TAG,
        parameters=[WF_ID],
        responses={
            200: rn.SavedWorkflowEnvelopeSerializer,
            **errors("004", 400, 401, 403, 404),
        },
        examples=[OpenApiExample("200 Response", value=wf_envelope_example(200))],
    )
    def get(self, request: Request, id: str):
        workflow_id = valid_id(id, "id")
        workflow = saved.get_workflow(self.actor, workflow_id)
        return Response(wf_envelope(request, rn.SavedWorkflowSerializer(workflow).data))

    @_workflow_schema(
        200,
        "Replace a saved workflow",
        "Name, description and definition, checked as on create. A changed definition is a new "
        "version; runs already started keep the definition they started with (a retry resumes "
        "that one), new runs take this one. A secret sent back masked, as GET shows it, keeps "
        "its stored value.",
        operation_id="updateWorkflow",
        parameters=[WF_ID],
    )
    def put(self, request: Request, id: str):
        workflow_id = valid_id(id, "id")
        self.actor.require(saved.PERMISSION)
        data = rn.SavedWorkflowInput.check(request.data)
        workflow = saved.update_workflow(self.actor, workflow_id, **data)
        return Response(wf_envelope(request, rn.SavedWorkflowSerializer(workflow).data))


class WorkflowRunsApi(ApiView):
    seed = "004"

    @extend_schema(
        operation_id="startWorkflowRun",
        summary="Start a run of a saved workflow",
        description="A run of the workflow's current definition and version, with `inputs` "
        "checked against its inputSchema (a 400 names the input); it is queued for a worker and "
        "answered `running` (follow it at GET /v1/runs/{id}). With an Idempotency-Key, the same "
        "request again answers the same run.",
        tags=WF_TAG,
        parameters=[WF_ID, IDEMPOTENCY_KEY],
        request=rn.RunStartInput,
        responses={
            201: rn.RunEnvelopeSerializer,
            **errors("004", *WF_ERRORS, messages={400: "inputs.qty must be a number"}),
        },
        examples=[
            OpenApiExample(
                "request", value={"inputs": {"orderId": "ord_42", "qty": 2}}, request_only=True
            ),
            OpenApiExample(
                "201 Response",
                value={
                    "code": 201,
                    "data": {
                        "executionState": {},
                        "finishedAt": None,
                        "id": "run_5f0c6a3e9b1d4c2a8e7f6d5c4b3a2910",
                        "isDustTest": False,
                        "isSimulation": False,
                        "organizationId": "9a1d5a8e-1f0e-4c6b-9d0e-2f4a6b8c0d1e",
                        "propValues": {"orderId": "ord_42", "qty": 2},
                        "simulationForks": [],
                        "simulationMode": "",
                        "sourceRunId": None,
                        "startedAt": "2026-01-01T00:00:00Z",
                        "status": "running",
                        "summary": "",
                        "totalCu": 0,
                        "triggerNodeId": "root",
                        "triggerSource": "api",
                        "triggeredBy": "key:AbCd1234",
                        "workflowDefinition": EXAMPLE_WORKFLOW["definition"],
                        "workflowId": EXAMPLE_WORKFLOW["id"],
                        "workflowOwnerUserId": "key:AbCd1234",
                        "workflowVersion": 1,
                    },
                    "message": "success",
                    "requestId": "abc-123",
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request: Request, id: str):
        workflow_id = valid_id(id, "id")
        self.actor.require(saved.PERMISSION)

        def perform(claim: Claim | None) -> tuple[int, dict]:
            data = rn.RunStartInput.check(request.data)
            run = saved.start_workflow_run(
                self.actor,
                workflow_id,
                inputs=data["inputs"],
                trigger_node_id=data.get("triggerNodeId") or "",
                idempotency=claim,
            )
            return 201, wf_envelope(request, rn.RunSerializer(run).data, 201)

        return self.idempotent(request, perform)
