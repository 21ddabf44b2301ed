"""Redrive's own endpoints across all five kinds: the failures inbox (the console's, read through
executions.selectors: the same rows, order, cursor and groups), bulk retry (preview with
dry_run, else 202 and a bulk id, rate limited per caller) and bulk progress.

Errors: {"error": {"code": "<CODE>", "message": "...", "field": "...", "requestId": "..."}}.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import filters, selectors, services, staged
from executions import kinds as registry
from executions.errors import InvalidInput, PermissionDenied
from executions.idempotency import Claim
from executions.models import BulkRetry
from executions.tenancy import Actor, get_for_tenant

from ..base import ApiView, query_int, valid_uuid
from ..docs import IDEMPOTENCY_KEY, KEY_IN_FLIGHT, errors
from ..serializers import failures as fl
from ..throttling import BulkRetryThrottle

TAG = ["failures (Redrive)"]


def readable_kinds(actor: Actor, flt: filters.FailureFilter, explicit: bool) -> list[str]:
    if explicit:
        for kind in flt.kinds:
            actor.require(registry.get(kind).read_permission)
        return list(flt.kinds)
    kinds = [k for k in flt.kinds if actor.can(registry.get(k).read_permission)]
    if not kinds:
        raise PermissionDenied(registry.get(flt.kinds[0]).read_permission)
    return kinds


def failure_page(
    actor: Actor, flt: filters.FailureFilter, limit: int, cursor: str | None
) -> tuple[list[dict], str | None]:
    """The console's inbox page (selectors.inbox: the same merge, order and cursor), as the API
    lists it."""
    page = selectors.inbox(actor.tenant, flt, cursor=cursor, limit=limit)
    items = []
    for row in page.rows:
        url, retry_url = row.shown.api_urls(actor.tenant, row.obj)
        items.append(
            {
                "kind": row.kind,
                "id": row.id,
                "status": row.status,
                "name": row.name,
                "error": row.error_message,
                "fingerprint": row.fingerprint,
                "state": row.triage,
                "chain": row.chain,
                "failedAt": row.when,
                "url": url,
                "retryUrl": retry_url,
            }
        )
    return items, page.next_cursor


# The API lists a group per kind and fingerprint; at most this many, the biggest first.
MAX_GROUPS = 50


def failure_groups(actor: Actor, flt: filters.FailureFilter) -> list[dict]:
    """The console's groups (selectors.group_by_fingerprint, from the failure-count rollup where
    it answers), split per kind as the API lists them."""
    per_kind = [
        (kind, group)
        for whole in selectors.group_by_fingerprint(actor.tenant, flt, limit=None)
        for kind, group in whole.by_kind.items()
    ]
    per_kind.sort(key=lambda pair: selectors.groups.sort_key(pair[1]))
    return [
        {
            "kind": kind,
            "fingerprint": group.fingerprint,
            "count": group.count,
            "error": group.sample,
            "lastFailedAt": group.last_seen,
        }
        for kind, group in per_kind[:MAX_GROUPS]
    ]


class FailureListApi(ApiView):
    @extend_schema(
        operation_id="listFailures",
        summary="Failures across all five kinds",
        description="Newest first, keyset-paginated (pass nextCursor back as cursor). "
        "group=fingerprint adds counts per kind and error fingerprint (the 50 biggest; only "
        "when asked).",
        tags=TAG,
        parameters=[
            OpenApiParameter(
                "kind", str, description="function, automation, job, workflow, run (comma list)"
            ),
            OpenApiParameter("status", str, description="status names (comma list)"),
            OpenApiParameter("since", str, description="ISO 8601 date-time"),
            OpenApiParameter("until", str, description="ISO 8601 date-time"),
            OpenApiParameter("range", str, enum=list(filters.RANGES)),
            OpenApiParameter("q", str, description="text in the error message"),
            OpenApiParameter("fingerprint", str, description="16 hex characters"),
            OpenApiParameter("name", str, description="function/rule/operation/workflow name"),
            OpenApiParameter(
                "state", str, enum=list(filters.STATES), description="triage; default open"
            ),
            OpenApiParameter("group", str, enum=["fingerprint"]),
            OpenApiParameter("limit", int, description="1-200, default 50"),
            OpenApiParameter("cursor", str),
        ],
        responses={200: fl.FailureListSerializer, **errors("redrive", 400, 401, 403)},
    )
    def get(self, request: Request):
        params = request.query_params
        flt = filters.parse(params)
        limit = query_int(params, "limit", 50, minimum=1, maximum=200)
        group = params.get("group", "")
        if group not in ("", "fingerprint"):
            raise InvalidInput("group must be fingerprint", field="group")
        kinds = readable_kinds(self.actor, flt, explicit=bool(params.get("kind")))
        flt = replace(flt, kinds=tuple(kinds))
        items, cursor = failure_page(self.actor, flt, limit, params.get("cursor"))
        body: dict[str, Any] = {
            "items": fl.FailureSerializer(items, many=True).data,
            "nextCursor": cursor,
        }
        if group:
            body["groups"] = fl.FailureGroupSerializer(
                failure_groups(self.actor, flt), many=True
            ).data
        return Response(body)


def selected_kinds(selection: dict) -> list[str]:
    if "ids" in selection:
        return list(selection["ids"])
    return list(selection["filter"].kinds)


class FailureRetryApi(ApiView):
    throttle_classes = [BulkRetryThrottle]

    @extend_schema(
        operation_id="retryFailures",
        summary="Retry selected failures, or all matching a filter",
        description="dry_run: true answers the preview (what would be retried, what not and "
        "why). Otherwise the retry runs in a worker: 202 with the bulk retry to poll. "
        "Rate-limited per caller (429 with Retry-After).",
        tags=TAG,
        parameters=[IDEMPOTENCY_KEY],
        request=fl.FailuresRetryRequestDoc,
        responses={
            200: fl.PreviewSerializer,
            202: fl.BulkRetrySerializer,
            **errors(
                "redrive", 400, 401, 403, 409, 413, 415, 422, 429, messages={409: KEY_IN_FLIGHT}
            ),
        },
        examples=[
            OpenApiExample(
                "By filter",
                value={"filter": {"kind": "job", "range": "24h"}, "dry_run": True},
                request_only=True,
            ),
            OpenApiExample(
                "By ids",
                value={"ids": {"run": ["run_0a1b2c3d4e5f60718293a4b5c6d7e8f9"]}},
                request_only=True,
            ),
            OpenApiExample(
                "Staged, with a reason",
                value={
                    "filter": {"kind": "job", "range": "24h"},
                    "reason": "upstream fixed",
                    "canary": {"size": 10, "minSuccessRate": 0.9},
                    "ratePerSecond": 50,
                    "stopWhenFailedAgainRate": 0.5,
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request):
        body = fl.FailuresRetryRequestSerializer.check(request.data)
        dry_run, selection = body["dry_run"], body["selection"]
        options = staged.clean_options(request.data)
        kinds = selected_kinds(selection)
        if not any(self.actor.can(registry.get(k).permission) for k in kinds):
            raise PermissionDenied(registry.get(kinds[0]).permission)
        if dry_run:
            preview = services.preview_retry(self.actor, selection)
            return Response(fl.PreviewSerializer({"dry_run": True, **preview}).data)

        def perform(claim: Claim | None) -> tuple[int, dict]:
            bulk = services.start_bulk_retry(
                self.actor, selection, idempotency=claim, options=options
            )
            return 202, fl.BulkRetrySerializer(bulk).data

        response = self.idempotent(request, perform)
        if response.status_code == 202:
            response["Location"] = response.data["url"]
        return response


ITEM_FIELDS = ("reason", "input")


class FailureItemRetryApi(ApiView):
    @extend_schema(
        operation_id="retryFailure",
        summary="Retry one failure, with a reason and an edited input",
        description="Any kind. `reason` is kept in the audit; `input` replaces what the retry "
        "runs with (a function's payload, an automation's event data, a job's operation data, a "
        "workflow's input, a run's inputs): functions, jobs and runs get a new attempt with it; "
        "automations and workflows retry the same record, whose input changes (the audit keeps "
        "the one before and the diff). Queued, not awaited.",
        tags=TAG,
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=registry.names()),
            OpenApiParameter("id", str, OpenApiParameter.PATH),
            IDEMPOTENCY_KEY,
        ],
        request=fl.ItemRetryRequestSerializer,
        responses={
            200: fl.ItemRetrySerializer,
            **errors("redrive", 400, 401, 403, 404, 409, 415, 422, messages={409: KEY_IN_FLIGHT}),
        },
        examples=[
            OpenApiExample("With a reason", value={"reason": "upstream fixed"}, request_only=True),
            OpenApiExample(
                "With an edited input",
                value={"reason": "wrong customer id", "input": {"customerId": 42}},
                request_only=True,
            ),
            OpenApiExample(
                "200 Response",
                value={
                    "kind": "job",
                    "id": "0b6f4c1e-7f1a-4f5e-9a7d-1c2b3d4e5f60",
                    "newId": "5d2e8a4f-3b1c-4d6e-8f7a-9b0c1d2e3f40",
                    "status": "unprocessed",
                    "url": "/executions/job/5d2e8a4f-3b1c-4d6e-8f7a-9b0c1d2e3f40/",
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, kind: str, id: str):
        body = request.data if request.data is not None else {}
        if not isinstance(body, dict):
            raise InvalidInput("Request body must be a JSON object", field="body")
        unknown = sorted(set(body) - set(ITEM_FIELDS))
        if unknown:
            raise InvalidInput(f"{unknown[0]} is not a field of a retry", field=unknown[0])
        options = {k: body[k] for k in ITEM_FIELDS if k in body and body[k] is not None}
        if kind not in registry.names():
            raise InvalidInput(f"kind must be one of {', '.join(registry.names())}", field="kind")

        def perform(claim: Claim | None) -> tuple[int, dict]:
            outcome = services.retry_failure(self.actor, kind, id, idempotency=claim, **options)
            return 200, {
                "kind": outcome.kind,
                "id": outcome.target_id,
                "newId": outcome.new_id,
                "status": outcome.obj.status,
                "url": reverse("detail", kwargs={"kind": kind, "object_id": outcome.new_id}),
            }

        return self.idempotent(request, perform)


class BulkRetryApi(ApiView):
    @extend_schema(
        operation_id="getBulkRetry",
        summary="Bulk retry progress",
        tags=TAG,
        parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH)],
        responses={200: fl.BulkRetrySerializer, **errors("redrive", 400, 401, 404)},
    )
    def get(self, request: Request, id: str):
        bulk_id = valid_uuid(id, "id")
        bulk = get_for_tenant(BulkRetry, self.actor.tenant, "Bulk retry not found", pk=bulk_id)
        return Response(fl.BulkRetrySerializer(bulk).data)


class BulkRetryCancelApi(ApiView):
    @extend_schema(
        operation_id="cancelBulkRetry",
        summary="Cancel a bulk retry",
        description="Stops before the next batch; what was retried stays retried. A cancel "
        "after the bulk retry finished or started its last batch changes nothing: "
        '`cancelOutcome` is then "too_late", and `message` says so.',
        tags=TAG,
        parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH)],
        request=None,
        responses={
            200: fl.BulkRetryCancelSerializer,
            **errors("redrive", 400, 401, 403, 404, 415),
        },
    )
    def post(self, request: Request, id: str):
        bulk_id = valid_uuid(id, "id")
        cancel = services.cancel_bulk_retry(self.actor, bulk_id)
        body = fl.BulkRetrySerializer(cancel.bulk).data
        return Response({**body, "cancelOutcome": cancel.outcome, "message": cancel.message})
