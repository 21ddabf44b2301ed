"""Redrive's own endpoints across all five kinds: the failures inbox (keyset-paginated, optional
grouping by error fingerprint), bulk retry (preview with dry_run, else 202 and a bulk id, rate
limited per caller) and bulk progress.

Errors: {"error": {"code": "<CODE>", "message": "...", "field": "...", "requestId": "..."}}.
"""

from __future__ import annotations

import heapq
from typing import Any

from django.db.models import Count, F, Max, Min, Q
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from executions import filters, services
from executions.errors import InvalidInput, PermissionDenied
from executions.idempotency import Claim
from executions.models import BulkRetry, Kind
from executions.tenancy import Actor, get_for_tenant

from ..base import ApiView, decode_cursor, encode_cursor, parse_time, query_int, valid_uuid
from ..docs import IDEMPOTENCY_KEY, KEY_IN_FLIGHT, errors
from ..serializers import failures as fl
from ..throttling import BulkRetryThrottle

TAG = ["failures (Redrive)"]

READ_PERMISSION = {
    Kind.FUNCTION: "functions:read",
    Kind.AUTOMATION: "automation:read",
    Kind.JOB: "jobs:read",
    Kind.WORKFLOW: "workflowOrchestrationACL:READ",
    Kind.RUN: "runs:read",
}
RETRY_PERMISSION = {
    Kind.FUNCTION: "functions:retry",
    Kind.AUTOMATION: "automation:execute",
    Kind.JOB: "jobs:write",
    Kind.WORKFLOW: "workflowOrchestrationACL:WRITE",
    Kind.RUN: "runs:write",
}


def readable_kinds(actor: Actor, flt: filters.FailureFilter, explicit: bool) -> list[str]:
    if explicit:
        for kind in flt.kinds:
            actor.require(READ_PERMISSION[kind])
        return list(flt.kinds)
    kinds = [k for k in flt.kinds if actor.can(READ_PERMISSION[k])]
    if not kinds:
        raise PermissionDenied(READ_PERMISSION[flt.kinds[0]])
    return kinds


def links(kind: str, row: dict, actor: Actor) -> tuple[str, str]:
    pk = str(row["pk"])
    tenant = actor.tenant
    if kind == Kind.FUNCTION:
        args = [tenant.functions_project_id, row["function_id"], pk]
        return reverse("api-function-execution", args=args), reverse(
            "api-function-retry-by-id", args=args
        )
    if kind == Kind.AUTOMATION:
        return reverse("api-automation-execution", args=[pk]), reverse(
            "api-automation-retry", args=[pk]
        )
    if kind == Kind.JOB:
        return reverse("api-job", args=[pk]), reverse("api-job-retry", args=[pk])
    if kind == Kind.WORKFLOW:
        args = [tenant.workflows_project, pk]
        return reverse("api-workflow-execution", args=args), reverse(
            "api-workflow-retry", args=args
        )
    return reverse("api-run", args=[pk]), reverse("api-run-retry", args=[pk])


def failure_page(
    actor: Actor, flt: filters.FailureFilter, kinds: list[str], limit: int, cursor: str | None
) -> tuple[list[dict], str | None]:
    """Newest first across kinds by (time, kind, pk): each kind's page comes from its own
    indexed query (limit + 1 rows past the cursor), merged here. No COUNT(*)."""
    after = None
    if cursor:
        when, ckind, cpk = decode_cursor(cursor, 3)
        if ckind not in filters.KINDS:
            raise InvalidInput("cursor is not a cursor this API returned", field="cursor")
        after = (parse_time(when), ckind, cpk)
    streams = []
    for kind in kinds:
        meta = filters.KINDS[kind]
        tf = meta.time_field
        qs = flt.queryset(kind, actor.tenant)
        if after is not None:
            at, ckind, cpk = after
            same_time = Q(**{tf: at})
            if kind == ckind:
                try:
                    pk_value = meta.model._meta.pk.to_python(cpk)
                except Exception:  # a tampered cursor is a 400, never a 500
                    raise InvalidInput(
                        "cursor is not a cursor this API returned", field="cursor"
                    ) from None
                same_time &= Q(pk__lt=pk_value)
            elif kind > ckind:
                same_time = Q(pk__in=[])
            qs = qs.filter(Q(**{f"{tf}__lt": at}) | same_time)
        fields = ["pk", "status", "error_message", "fingerprint", tf]
        if kind == Kind.FUNCTION:
            fields.append("function_id")
        rows = qs.order_by(f"-{tf}", "-pk").values(*fields, display_name=F(meta.name_field))
        streams.append([dict(row, kind=kind, at=row[tf]) for row in rows[: limit + 1]])
    merged = list(heapq.merge(*streams, key=lambda r: (r["at"], r["kind"]), reverse=True))
    page = merged[:limit]
    next_cursor = None
    if len(merged) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last["at"], last["kind"], last["pk"])
    items = []
    for row in page:
        url, retry_url = links(row["kind"], row, actor)
        items.append(
            {
                "kind": row["kind"],
                "id": str(row["pk"]),
                "status": row["status"],
                "name": row["display_name"],
                "error": row["error_message"],
                "fingerprint": row["fingerprint"],
                "failedAt": row["at"],
                "url": url,
                "retryUrl": retry_url,
            }
        )
    return items, next_cursor


def failure_groups(actor: Actor, flt: filters.FailureFilter, kinds: list[str]) -> list[dict]:
    groups = []
    for kind in kinds:
        tf = filters.KINDS[kind].time_field
        rows = (
            flt.queryset(kind, actor.tenant)
            .values("fingerprint")
            .annotate(count=Count("pk"), error=Min("error_message"), last=Max(tf))
            .order_by("-count")[:50]
        )
        groups += [
            {
                "kind": kind,
                "fingerprint": row["fingerprint"],
                "count": row["count"],
                "error": row["error"],
                "lastFailedAt": row["last"],
            }
            for row in rows
        ]
    groups.sort(key=lambda g: -g["count"])
    return groups[:50]


class FailureListApi(ApiView):
    @extend_schema(
        operation_id="listFailures",
        summary="Failures across all five kinds",
        description="Newest first, keyset-paginated (pass nextCursor back as cursor). "
        "group=fingerprint adds counts per error fingerprint (the only counting query, and "
        "only when asked).",
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
        items, cursor = failure_page(self.actor, flt, kinds, limit, params.get("cursor"))
        body: dict[str, Any] = {
            "items": fl.FailureSerializer(items, many=True).data,
            "nextCursor": cursor,
        }
        if group:
            body["groups"] = fl.FailureGroupSerializer(
                failure_groups(self.actor, flt, kinds), many=True
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
        request=fl.FailuresRetryRequestSerializer,
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
        ],
    )
    def post(self, request: Request):
        body = fl.FailuresRetryRequestSerializer.check(request.data)
        dry_run, selection = body["dry_run"], body["selection"]
        kinds = selected_kinds(selection)
        if not any(self.actor.can(RETRY_PERMISSION[k]) for k in kinds):
            raise PermissionDenied(RETRY_PERMISSION[kinds[0]])
        if dry_run:
            preview = services.preview_retry(self.actor, selection)
            return Response(fl.PreviewSerializer({"dry_run": True, **preview}).data)

        def perform(claim: Claim | None) -> tuple[int, dict]:
            bulk = services.start_bulk_retry(self.actor, selection, idempotency=claim)
            return 202, fl.BulkRetrySerializer(bulk).data

        response = self.idempotent(request, perform)
        if response.status_code == 202:
            response["Location"] = response.data["url"]
        return response


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
