"""No input answers 500 (issue 16.8): hypothesis sends arbitrary text to every path id and every
query parameter of every console page and API endpoint (and, for the JSON endpoints, arbitrary
JSON values in the fields they read; for the console's forms, arbitrary text in theirs), signed
in, and asserts each answer is below 500. A refused API request answers JSON (the seed's error
shape), a refused console page HTML.

ENDPOINTS lists every route with the parameters its view reads; a test compares it to Django's
resolver (the admin is Django's own and not listed) and, for the API, to the OpenAPI schema, so a
new route or parameter cannot be left out by accident.
"""

from __future__ import annotations

import base64
import json
import os
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executions import filters, kinds, services
from executions.kinds.runs import definition as definitions
from executions.models import (
    ApiKey,
    AutomationRule,
    FunctionExecution,
    SavedWorkflow,
    Tenant,
    WebhookSubscription,
)
from executions.tenancy import Actor

pytestmark = pytest.mark.django_db

# Per route: a few hundred requests in all, on each database. REDRIVE_FUZZ_EXAMPLES=500 hunts
# deeper (a found failure is kept in .hypothesis/ and replayed first on the next run).
EXAMPLES = int(os.environ.get("REDRIVE_FUZZ_EXAMPLES", "12"))

# --- what a value may be ---------------------------------------------------------------------

OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Moments at the ends of the calendar, where converting to UTC or widening into a window
# overflows, come as often as arbitrary ones.
EDGE_DATES = st.sampled_from(
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:30:00Z",
        "0001-01-01T00:30:00Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59.999999",
        "2025-02-30T00:00:00",
        "2025-01-01T00:00:00+24:00",
        "2025-01-01",
    ]
)
DATES = st.one_of(
    EDGE_DATES,
    st.datetimes().map(lambda d: d.isoformat()),
    st.tuples(st.datetimes(), OFFSETS).map(lambda p: p[0].replace(tzinfo=p[1]).isoformat()),
)
NUMBERS = st.one_of(
    st.integers().map(str),
    st.sampled_from(["²", "٣", "१२", "1e3", "0x10", " 7", "999999999999999", str(2**63)]),
)
KNOWN = st.sampled_from(
    [
        *kinds.names(),
        *{s for meta in kinds.KINDS for s in meta.all_statuses},
        *filters.RANGES,
        "fingerprint",
        "filter",
        "ids",
        "0123456789abcdef",
        "refused, retry",
        "job,run",
    ]
)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# Cursors as every list encodes them ("when|kind|field|pk", selectors.cursor) and as the seed
# lists once did (a JSON list), with arbitrary parts: what a hand-edited cursor looks like once
# it gets past base64.
PK = st.one_of(st.text(), st.text().map(lambda t: "run_" + t + "\x00"), st.uuids().map(str))
ORDERED_BY = st.one_of(
    st.sampled_from(["executed_at", "updated_at", "started_at", "created_at", "created_time"]),
    st.text(),
)
CURSORS = st.one_of(
    # well-shaped (a time, a kind, a field, a key) with hostile parts
    st.tuples(DATES, st.sampled_from(list(kinds.names())), ORDERED_BY, PK).map(
        lambda p: _b64("|".join(p))
    ),
    st.tuples(DATES, st.sampled_from(list(kinds.names())), PK).map(lambda p: _b64(json.dumps(p))),
    st.tuples(DATES, PK).map(lambda p: _b64(json.dumps(p))),
    # and anything at all
    st.lists(st.one_of(DATES, KNOWN, st.text()), max_size=4).map(lambda p: _b64("|".join(p))),
    st.lists(st.one_of(DATES, KNOWN, st.text(), st.integers()), max_size=4).map(
        lambda p: _b64(json.dumps(p))
    ),
)
TEXT = st.one_of(st.text(), st.text(max_size=3), st.text().map(lambda t: t + "\x00"), KNOWN)
# Where a parameter is read as a date, a number or a cursor, values near what it expects come
# often (arbitrary text still does): an off-calendar date tells more than "abc" there.
TYPED = {
    "since": DATES,
    "until": DATES,
    "createdTimeStart": NUMBERS,
    "createdTimeEnd": NUMBERS,
    "limit": NUMBERS,
    "offset": NUMBERS,
    "before": NUMBERS,
    "item": NUMBERS,
    "executionIndex": NUMBERS,
    "cursor": CURSORS,
}


def value_for(name: str | None) -> st.SearchStrategy[str]:
    typed = TYPED.get(name or "")
    return st.one_of(typed, typed, TEXT) if typed is not None else TEXT


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
HEADER_TEXT = st.text(alphabet=string.printable.strip("\t\n\r\x0b\x0c"), max_size=20)


def shaped(spec: Any, name: str | None = None) -> st.SearchStrategy:
    """A JSON value shaped like `spec` (dicts of fields, [item] lists; None: any value, typed by
    its field's name) with any JSON anywhere instead."""
    if isinstance(spec, dict):
        fields = st.fixed_dictionaries({}, optional={k: shaped(v, k) for k, v in spec.items()})
        return st.one_of(fields, fields, JSON)
    if isinstance(spec, list):
        return st.one_of(st.lists(shaped(spec[0], name), max_size=3), JSON)
    typed = TYPED.get(name or "")
    hostile = (
        st.one_of(TEXT, JSON, st.integers(), typed) if typed is not None else st.one_of(TEXT, JSON)
    )
    valid = VALID_JSON.get(name or "", VALID.get(name or "", PLAIN))
    return st.one_of(valid, hostile)


# What each field takes when it is well-formed: a hostile value in one field then meets
# well-formed ones in the others, instead of a page refusing the first bad field it reads.
PLAIN = st.text(alphabet=string.ascii_letters + string.digits + " -_:,", max_size=12)
STATUSES = sorted({s for meta in kinds.KINDS for s in meta.all_statuses})
GOOD_DATES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.isoformat()
)
VALID = {
    "kind": st.sampled_from([*kinds.names(), "job,run"]),
    "status": st.sampled_from(STATUSES),
    "range": st.sampled_from(list(filters.RANGES)),
    "since": GOOD_DATES,
    "until": GOOD_DATES,
    "fingerprint": st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    "limit": st.integers(1, 50).map(str),
    "offset": st.integers(0, 10).map(str),
    "before": st.integers(1, 10**6).map(str),
    "item": st.integers(1, 10**6).map(str),
    "createdTimeStart": st.integers(0, 2 * 10**12).map(str),
    "createdTimeEnd": st.integers(0, 2 * 10**12).map(str),
    "group": st.just("fingerprint"),
    "state": st.sampled_from(list(filters.STATES)),
    "reason": PLAIN,
    "mode": st.sampled_from(["filter", "ids"]),
    "source": st.sampled_from(["api", "console", "admin", "cli"]),
    "bulk": st.uuids().map(str),
    "rule_id": st.uuids().map(str),
    "format": st.sampled_from(["json", "yaml"]),
    "next": st.sampled_from(["/", "/audit/"]),
    "tenant": st.sampled_from(["acme", "globex"]),
    "permissions": st.sampled_from(["jobs:read", "runs:write"]),
    "target_hostname": st.sampled_from(["_any", "web-1"]),
    "type": st.sampled_from(["ticket.created", "command.exec", "echo", "event"]),
    "event": st.sampled_from(["ticket.created"]),
    "handler": st.sampled_from(["echo", "noop"]),
    "operator": st.sampled_from(["equals", "in", "exists", "gt"]),
}


# JSON fields that take something other than text when well-formed.
VALID_JSON = {
    "limit": st.integers(1, 100),
    "dry_run": st.booleans(),
    "tokenExchange": st.just(True),
    "oneshotTokenExchange": st.just(True),
    "createdTimeStart": st.integers(0, 2 * 10**12),
    "createdTimeEnd": st.integers(0, 2 * 10**12),
    "version": st.integers(1, 3),
    "username": st.sampled_from(["alice", "bob", "carol"]),
    "enabled": st.booleans(),
}


@st.composite
def pairs(draw: Callable, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """Query or form fields: a subset of `names`, one of them hostile (sometimes all of them,
    sometimes repeated), the others well-formed."""
    if not names:
        return []
    hostile = draw(st.sampled_from(names))
    everything = draw(st.integers(0, 3)) == 0
    out = []
    for name in names:
        if name != hostile and not draw(st.booleans()):
            continue
        bad = everything or name == hostile
        for _ in range(draw(st.integers(1, 2)) if bad else 1):
            out.append((name, draw(value_for(name) if bad else VALID.get(name, PLAIN))))
    return out


FILTER_FIELDS = ("kind", "status", "since", "until", "range", "q", "fingerprint", "name", "state")
FILTER_BODY = dict.fromkeys(FILTER_FIELDS)

# --- every route ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # with {placeholders} for the path parameters
    methods: tuple[str, ...] = ("GET",)
    params: tuple[str, ...] = ()  # query parameters the view reads
    body: Any = None  # API: the JSON fields a POST reads (see shaped)
    form: tuple[str, ...] = ()  # console: the form fields a POST reads
    console: bool = False
    ours: bool = True  # False: drf-spectacular's views, whose errors are not in a seed's shape
    real: dict[str, str] = field(default_factory=dict)  # placeholder -> key in real_ids()


FN = "/api/functions/projects/{projectId}/functions/{functionId}"
FN_REAL = {"projectId": "project", "functionId": "function"}
WF = "/api/v1/projects/{project}"
WF_REAL = {"project": "workflow_project"}
ITEM = {"kind": "kind", "object_id": "item"}
RULE_BODY = {
    "name": None,
    "trigger": {"type": None, "event": None},
    "conditions": [{"field": None, "operator": None, "value": None}],
    "actions": [{"handler": None, "params": None, "url": None, "code": None, "timeout": None}],
    "enabled": None,
}

# A saved workflow (seed 004) as POST and PUT read it: every field a node or the schema may have.
RUN_WORKFLOW = {
    "name": None,
    "description": None,
    "definition": {
        "nodes": {
            "root": {"type": None},
            "n": {
                "type": None,
                "code": None,
                "url": None,
                "handler": None,
                "params": {"x": None},
                "json": {"x": None},
                "headers": {"x": None},
                "dependsOn": [None],
                "optional": None,
            },
        },
        "triggerNodeIds": [None],
        "inputSchema": [{"key": None, "type": None, "required": None}],
        "variableDefs": [None],
    },
}

WEBHOOK_BODY = {
    "url": None,
    "events": [None],
    "filter": {"kind": None, "name": None},
    "format": None,
    "description": None,
    "enabled": None,
}

ENDPOINTS = (
    # the console
    Endpoint(
        "login",
        "/login/",
        ("GET", "POST"),
        ("next",),
        form=("username", "password", "next"),
        console=True,
    ),
    Endpoint("logout", "/logout/", ("POST",), ("next",), form=("next",), console=True),
    Endpoint("inbox", "/", params=(*FILTER_FIELDS, "cursor"), console=True),
    Endpoint("inbox_new", "/new/", params=(*FILTER_FIELDS, "after"), console=True),
    Endpoint("groups", "/groups/", params=FILTER_FIELDS, console=True),
    Endpoint("chart", "/chart/", params=FILTER_FIELDS, console=True),
    Endpoint("detail", "/executions/{kind}/{object_id}/", console=True, real=ITEM),
    Endpoint("live", "/executions/{kind}/{object_id}/live/", console=True, real=ITEM),
    Endpoint(
        "retry",
        "/executions/{kind}/{object_id}/retry/",
        ("POST",),
        form=("target_hostname", "next", "reason", "input"),
        console=True,
        real=ITEM,
    ),
    Endpoint(
        "retry_review",
        "/executions/{kind}/{object_id}/retry/review/",
        ("POST",),
        form=("input", "reason"),
        console=True,
        real=ITEM,
    ),
    Endpoint(
        "ignore",
        "/executions/{kind}/{object_id}/ignore/",
        ("POST",),
        form=("reason", "until", "next"),
        console=True,
        real=ITEM,
    ),
    Endpoint(
        "reopen",
        "/executions/{kind}/{object_id}/reopen/",
        ("POST",),
        form=("next",),
        console=True,
        real=ITEM,
    ),
    Endpoint(
        "group_ignore",
        "/groups/{fingerprint}/ignore/",
        ("POST",),
        form=("reason", "until", "next"),
        console=True,
        real={"fingerprint": "group"},
    ),
    Endpoint(
        "group_reopen",
        "/groups/{fingerprint}/reopen/",
        ("POST",),
        form=("next",),
        console=True,
        real={"fingerprint": "group"},
    ),
    Endpoint(
        "bulk_preview",
        "/bulk/preview/",
        ("GET", "POST"),
        ("mode", "sel", *FILTER_FIELDS),
        form=("mode", "sel", *FILTER_FIELDS),
        console=True,
    ),
    Endpoint(
        "bulk_start",
        "/bulk/start/",
        ("POST",),
        form=(
            "mode",
            "sel",
            *FILTER_FIELDS,
            "reason",
            "canary_size",
            "canary_min_success",
            "rate_per_second",
            "stop_failed_again",
        ),
        console=True,
    ),
    Endpoint("bulk", "/bulk/{bulk_id}/", console=True, real={"bulk_id": "bulk"}),
    Endpoint(
        "bulk_cancel",
        "/bulk/{bulk_id}/cancel/",
        ("POST",),
        console=True,
        real={"bulk_id": "bulk"},
    ),
    Endpoint("switch_tenant", "/tenant/", ("POST",), form=("tenant",), console=True),
    Endpoint(
        "api_keys",
        "/keys/",
        ("GET", "POST"),
        form=("name", "role", "permissions", "expires"),
        console=True,
    ),
    Endpoint(
        "webhooks",
        "/webhooks/",
        ("GET", "POST"),
        form=("url", "events", "format", "kind", "name", "description"),
        console=True,
    ),
    Endpoint(
        "webhook_action",
        "/webhooks/{sub_id}/{action}/",
        ("POST",),
        console=True,
        real={"sub_id": "webhook", "action": "webhook_action"},
    ),
    Endpoint(
        "revoke_api_key",
        "/keys/{key_id}/revoke/",
        ("POST",),
        console=True,
        real={"key_id": "api_key"},
    ),
    Endpoint(
        "audit",
        "/audit/",
        params=("kind", "actor", "source", "target", "bulk", "before", "item"),
        console=True,
    ),
    Endpoint("workers", "/workers/", console=True),
    Endpoint("pause_queue", "/workers/pause/", ("POST",), form=("queue",), console=True),
    Endpoint("resume_queue", "/workers/resume/", ("POST",), form=("queue",), console=True),
    # seed 000
    Endpoint(
        "api-functions",
        "/api/functions/projects/{projectId}/functions",
        ("GET", "POST"),
        params=("page", "limit", "search", "triggerType", "isActive"),
        body={
            "name": None,
            "description": None,
            "code": None,
            "trigger": {"type": None, "schedule": None, "method": None},
            "environment": None,
        },
        real={"projectId": "project"},
    ),
    Endpoint(
        "api-function",
        FN,
        ("GET", "PUT", "DELETE"),
        body={
            "name": None,
            "code": None,
            "trigger": {"type": None, "schedule": None},
            "environment": None,
            "isActive": None,
            "limits": {
                "timeout": None,
                "maxPayloadSize": None,
                "maxExecutionsPerMinute": None,
                "maxExecutionsPerHour": None,
            },
            "retryPolicy": {"enabled": None, "maxRetries": None, "backoffMs": None},
            "versionComment": None,
        },
        real=FN_REAL,
    ),
    Endpoint("api-function-activate", FN + "/activate", ("POST",), real=FN_REAL),
    Endpoint("api-function-deactivate", FN + "/deactivate", ("POST",), real=FN_REAL),
    Endpoint(
        "api-function-execute", FN + "/execute", ("POST",), body={"payload": None}, real=FN_REAL
    ),
    Endpoint("api-function-versions", FN + "/versions", real=FN_REAL),
    Endpoint(
        "api-function-rollback", FN + "/rollback", ("POST",), body={"version": None}, real=FN_REAL
    ),
    Endpoint(
        "api-function-webhook",
        "/api/functions/webhook/{projectId}",
        ("POST",),
        real={"projectId": "project"},
    ),
    Endpoint(
        "api-function-retry",
        FN + "/retry/{executionIndex}",
        ("POST",),
        body=None,
        real={**FN_REAL, "executionIndex": "index"},
    ),
    Endpoint(
        "api-function-retry-by-id",
        FN + "/executions/{executionId}/retry",
        ("POST",),
        real={**FN_REAL, "executionId": "function_execution"},
    ),
    Endpoint(
        "api-function-logs",
        FN + "/logs",
        params=("limit", "offset", "status", "since", "until", "q"),
        real=FN_REAL,
    ),
    Endpoint(
        "api-function-execution",
        FN + "/executions/{executionId}",
        real={**FN_REAL, "executionId": "function_execution"},
    ),
    # seed 001
    Endpoint(
        "api-automation-executions",
        "/api/v1/automation/executions",
        params=("status", "rule_id", "since", "until", "q", "limit", "cursor"),
    ),
    Endpoint(
        "api-automation-execution",
        "/api/v1/automation/executions/{id}",
        real={"id": "automation"},
    ),
    Endpoint(
        "api-automation-retry",
        "/api/v1/automation/executions/{id}/retry",
        ("POST",),
        real={"id": "automation"},
    ),
    Endpoint(
        "api-automation-rules",
        "/api/v1/automation/rules",
        ("GET", "POST"),
        ("q", "enabled", "event", "limit", "cursor"),
        body=RULE_BODY,
    ),
    Endpoint(
        "api-automation-rule",
        "/api/v1/automation/rules/{id}",
        ("GET", "PUT", "DELETE"),
        body=RULE_BODY,
        real={"id": "rule"},
    ),
    Endpoint(
        "api-automation-events",
        "/api/v1/automation/events",
        ("POST",),
        body={"type": None, "data": {"ticket": {"priority": None}}},
    ),
    # seed 002
    Endpoint(
        "api-jobs",
        "/job",
        ("GET", "POST"),
        params=("status", "operation_type", "q", "limit", "cursor"),
        body={
            "operation": {"type": None, "data": {"command": None, "args": [None]}},
            "target_hostname": None,
        },
    ),
    Endpoint("api-job", "/job/{id}", real={"id": "job"}),
    Endpoint(
        "api-job-retry",
        "/job/{id}/retry",
        ("POST",),
        body={"target_hostname": None},
        real={"id": "job"},
    ),
    # seed 003
    Endpoint(
        "api-sessions",
        WF + "/sessions",
        ("POST",),
        body={
            "items": [
                {
                    "tokenExchange": None,
                    "oneshotTokenExchange": None,
                    "clientId": None,
                    "clientSecret": None,
                }
            ]
        },
        real=WF_REAL,
    ),
    Endpoint(
        "api-workflow-executions",
        WF + "/workflows/executions",
        params=(
            "status",
            "workflowExternalId",
            "createdTimeStart",
            "createdTimeEnd",
            "limit",
            "cursor",
        ),
        real=WF_REAL,
    ),
    Endpoint(
        "api-workflow-executions-list",
        WF + "/workflows/executions/list",
        ("POST",),
        body={
            "filter": {
                "workflowFilters": [{"externalId": None, "version": None}],
                "createdTimeStart": None,
                "createdTimeEnd": None,
                "status": None,
            },
            "limit": None,
            "cursor": None,
        },
        real=WF_REAL,
    ),
    Endpoint(
        "api-workflow-execution",
        WF + "/workflows/executions/{executionId}",
        real={**WF_REAL, "executionId": "workflow"},
    ),
    Endpoint(
        "api-workflow-retry",
        WF + "/workflows/executions/{executionId}/retry",
        ("POST",),
        body={"authentication": {"nonce": None}},
        real={**WF_REAL, "executionId": "workflow"},
    ),
    Endpoint(
        "api-workflow-cancel",
        WF + "/workflows/executions/{executionId}/cancel",
        ("POST",),
        body={"reason": None},
        real={**WF_REAL, "executionId": "workflow"},
    ),
    Endpoint(
        "api-workflows",
        WF + "/workflows",
        ("POST",),
        body={
            "items": [
                {
                    "externalId": None,
                    "description": None,
                    "dataSetId": None,
                    "maxConcurrentExecutions": None,
                }
            ]
        },
        real=WF_REAL,
    ),
    Endpoint(
        "api-workflow-versions",
        WF + "/workflows/versions",
        ("POST",),
        body={
            "items": [
                {
                    "workflowExternalId": None,
                    "version": None,
                    "workflowDefinition": {
                        "description": None,
                        "tasks": [
                            {
                                "externalId": None,
                                "type": None,
                                "parameters": {
                                    "function": {"externalId": None, "data": None},
                                    "cdfRequest": {
                                        "resourcePath": None,
                                        "method": None,
                                        "queryParameters": None,
                                        "body": None,
                                        "requestTimeoutInMillis": None,
                                    },
                                    "http": {"url": None, "method": None, "timeout": None},
                                    "handler": {"name": None, "params": None},
                                },
                                "retries": None,
                                "timeout": None,
                                "onFailure": None,
                                "dependsOn": [{"externalId": None}],
                            }
                        ],
                    },
                }
            ]
        },
        real=WF_REAL,
    ),
    Endpoint(
        "api-workflow",
        WF + "/workflows/{workflowExternalId}",
        real={**WF_REAL, "workflowExternalId": "workflow_external_id"},
    ),
    Endpoint(
        "api-workflow-version",
        WF + "/workflows/{workflowExternalId}/versions/{version}",
        real={
            **WF_REAL,
            "workflowExternalId": "workflow_external_id",
            "version": "workflow_version",
        },
    ),
    Endpoint(
        "api-workflow-run",
        WF + "/workflows/{workflowExternalId}/versions/{version}/run",
        ("POST",),
        body={"authentication": {"nonce": None}, "input": None, "metadata": None},
        real={
            **WF_REAL,
            "workflowExternalId": "workflow_external_id",
            "version": "workflow_version",
        },
    ),
    # seed 004
    Endpoint(
        "api-runs",
        "/v1/runs",
        params=("status", "workflowId", "since", "until", "q", "limit", "cursor"),
    ),
    Endpoint("api-run", "/v1/runs/{id}", real={"id": "run"}),
    Endpoint("api-run-retry", "/v1/runs/{id}/retry", ("POST",), real={"id": "run"}),
    Endpoint(
        "api-run-workflows",
        "/v1/workflows",
        ("GET", "POST"),
        ("q", "limit", "cursor"),
        body=RUN_WORKFLOW,
    ),
    Endpoint(
        "api-run-workflow",
        "/v1/workflows/{id}",
        ("GET", "PUT"),
        body=RUN_WORKFLOW,
        real={"id": "run_workflow"},
    ),
    Endpoint(
        "api-run-workflow-runs",
        "/v1/workflows/{id}/runs",
        ("POST",),
        body={"inputs": {"orderId": None, "qty": None}, "triggerNodeId": None},
        real={"id": "run_workflow"},
    ),
    # Redrive's own
    # issue 21: webhooks
    Endpoint("api-webhooks", "/api/webhooks", ("GET", "POST"), body=WEBHOOK_BODY),
    Endpoint(
        "api-webhook",
        "/api/webhooks/{id}",
        ("GET", "PATCH", "DELETE"),
        body=WEBHOOK_BODY,
        real={"id": "webhook"},
    ),
    Endpoint(
        "api-webhook-rotate",
        "/api/webhooks/{id}/rotate-secret",
        ("POST",),
        real={"id": "webhook"},
    ),
    Endpoint(
        "api-webhook-deliveries",
        "/api/webhooks/{id}/deliveries",
        params=("limit", "before"),
        real={"id": "webhook"},
    ),
    Endpoint("api-failures", "/api/failures", params=(*FILTER_FIELDS, "group", "limit", "cursor")),
    Endpoint(
        "api-failures-retry",
        "/api/failures/retry",
        ("POST",),
        body={
            "ids": {kind: [None] for kind in kinds.names()},
            "filter": FILTER_BODY,
            "dry_run": None,
            "reason": None,
            "canary": {"size": None, "minSuccessRate": None},
            "ratePerSecond": None,
            "stopWhenFailedAgainRate": None,
        },
    ),
    Endpoint(
        "api-failure-retry",
        "/api/failures/{kind}/{id}/retry",
        ("POST",),
        body={"reason": None, "input": {"x": None}},
        real={"kind": "kind", "id": "item"},
    ),
    Endpoint(
        "api-failure-ignore",
        "/api/failures/{kind}/{id}/ignore",
        ("POST",),
        body={"reason": None, "until": None},
        real={"kind": "kind", "id": "item"},
    ),
    Endpoint(
        "api-failure-reopen",
        "/api/failures/{kind}/{id}/reopen",
        ("POST",),
        real={"kind": "kind", "id": "item"},
    ),
    Endpoint(
        "api-group-ignore",
        "/api/groups/{fingerprint}/ignore",
        ("POST",),
        body={"reason": None, "until": None},
        real={"fingerprint": "group"},
    ),
    Endpoint(
        "api-group-reopen",
        "/api/groups/{fingerprint}/reopen",
        ("POST",),
        real={"fingerprint": "group"},
    ),
    Endpoint("api-bulk-retry", "/api/bulk-retries/{id}", real={"id": "bulk"}),
    Endpoint(
        "api-bulk-retry-cancel", "/api/bulk-retries/{id}/cancel", ("POST",), real={"id": "bulk"}
    ),
    Endpoint(
        "api-token",
        "/api/auth/token",
        ("POST",),
        body={"username": None, "password": None, "tenant": None},
    ),
    Endpoint("health", "/health"),
    Endpoint("health-live", "/health/live"),
    Endpoint("favicon", "/favicon.ico", ours=False),
    Endpoint("api-schema", "/api/schema/", params=("format", "lang", "version"), ours=False),
    Endpoint("api-docs", "/api/docs/", params=("lang", "version", "script"), ours=False),
)


def real_ids(manifest: dict) -> dict[str, list[str]]:
    """Ids that exist (in the signed-in user's tenant, and in the other one), so examples reach
    past "not found" too."""
    acme, globex = manifest["acme"], manifest["globex"]
    alice = get_user_model().objects.get(username="alice")
    tenant = Tenant.objects.get(slug="acme")
    bulk = services.start_bulk_retry(
        Actor.for_user(alice, tenant, source="console"), {"filter": filters.parse({})}
    )
    items = [
        acme["automations"]["failed"],
        acme["jobs"]["failed"],
        acme["workflows"]["failed"],
        acme["runs"]["failure"],
        globex["automations"]["failed"],
        *FunctionExecution.objects.values_list("pk", flat=True)[:2],
    ]
    return {
        "kind": list(kinds.names()),
        "item": [str(pk) for pk in items],
        "webhook": [
            str(
                WebhookSubscription.objects.create(
                    tenant=Tenant.objects.get(slug=slug),
                    url="https://hooks.example.com/redrive",
                    events=["retry.finished"],
                    secret="whsec_dGVzdC1vbmx5LXRlc3Qtb25seS10ZXN0",
                ).pk
            )
            for slug in ("acme", "globex")
        ],
        "webhook_action": ["rotate", "pause", "resume", "delete"],
        "project": [acme["functions"]["project_id"], globex["functions"]["project_id"]],
        "function": [acme["functions"]["function_id"], globex["functions"]["function_id"]],
        "index": ["0", "1", "2", "999999999"],
        "function_execution": [
            str(pk)
            for pk in FunctionExecution.objects.filter(
                function_id=acme["functions"]["function_id"]
            ).values_list("pk", flat=True)[:3]
        ],
        "automation": [acme["automations"]["failed"], globex["automations"]["failed"]],
        "rule": [str(pk) for pk in AutomationRule.objects.values_list("pk", flat=True)[:2]],
        "job": [acme["jobs"]["failed"], acme["jobs"]["processing"], globex["jobs"]["failed"]],
        "workflow_project": [acme["workflows"]["project"], globex["workflows"]["project"]],
        "workflow": [acme["workflows"]["failed"], globex["workflows"]["failed"]],
        "workflow_external_id": ["order-fulfilment", "nightly-report"],
        "workflow_version": ["1", "3"],
        "run": [acme["runs"]["failure"], globex["runs"]["failure"]],
        "run_workflow": [_saved_workflow("acme"), _saved_workflow("globex")],
        "bulk": [str(bulk.pk)],
        "group": list(
            kinds.get("job")
            .model.objects.exclude(fingerprint="")
            .values_list("fingerprint", flat=True)[:2]
        ),
        "api_key": [str(pk) for pk in ApiKey.objects.values_list("pk", flat=True)[:3]],
    }


def _saved_workflow(slug: str) -> str:
    definition = {
        "nodes": {
            "root": {"type": "trigger"},
            "n": {"type": "handler", "handler": "echo", "params": {"id": "{{root.orderId}}"}},
        },
        "triggerNodeIds": ["root"],
        "inputSchema": [{"key": "orderId", "required": True}, {"key": "qty", "type": "number"}],
    }
    return SavedWorkflow.objects.create(
        tenant=Tenant.objects.get(slug=slug),
        name="fuzzed",
        definition=definitions.clean(definition),
    ).pk


# --- the routes are all here --------------------------------------------------------------------


def _routes(resolver: URLResolver, prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace != "admin":  # Django's own admin, not listed
                found.update(_routes(pattern, prefix + str(pattern.pattern)))
        else:
            found[pattern.name] = prefix + str(pattern.pattern)
    return found


def test_every_route_is_in_the_list_and_the_list_resolves_as_written(manifest) -> None:
    assert {e.name for e in ENDPOINTS} == set(_routes(get_resolver()))
    ids = real_ids(manifest)
    for endpoint in ENDPOINTS:
        values = {name: ids[key][0] for name, key in endpoint.real.items()}
        assert resolve(endpoint.path.format(**values)).url_name == endpoint.name


def test_every_documented_api_parameter_is_in_the_list(client) -> None:
    schema = client.get("/api/schema/", {"format": "json"}).json()
    listed = {e.path: e for e in ENDPOINTS if not e.console}
    for path, operations in schema["paths"].items():
        endpoint = listed[path]
        for method, operation in operations.items():
            assert method.upper() in endpoint.methods, (path, method)
            query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert query <= set(endpoint.params), (path, query - set(endpoint.params))


# --- the property -------------------------------------------------------------------------------


@st.composite
def requests(draw: Callable, endpoint: Endpoint, ids: dict[str, list[str]]) -> dict:
    placeholders = [part.split("}")[0] for part in endpoint.path.split("{")[1:]]
    path_values = {}
    for name in placeholders:
        real = ids[endpoint.real[name]] if name in endpoint.real else []
        strategies = [value_for(name), st.from_regex(r"[A-Za-z0-9_-]{1,70}", fullmatch=True)]
        if real:
            strategies.append(st.sampled_from(real))
        path_values[name] = quote(draw(st.one_of(*strategies)), safe="")
    method = draw(st.sampled_from(endpoint.methods))
    query = draw(pairs(endpoint.params))
    request = {
        "method": method,
        "path": endpoint.path.format(**path_values),
        "query": urlencode(query),
        "headers": {},
        "body": None,
    }
    if endpoint.console:
        if draw(st.booleans()):
            request["headers"] = {"HX-Request": "true", "HX-Target": draw(HEADER_TEXT)}
        if method == "POST" and endpoint.form:
            form = draw(pairs(endpoint.form))
            request["body"] = urlencode(form)
    elif method in ("POST", "PUT"):
        body = draw(shaped(endpoint.body) if endpoint.body else JSON)
        request["body"] = json.dumps(body)
    return request


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_no_input_answers_500(endpoint: Endpoint, manifest: dict) -> None:
    ids = real_ids(manifest)
    key = manifest["api_keys"]["alice"]
    alice = get_user_model().objects.get(username="alice")

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=requests(endpoint, ids))
    def answers_below_500(request: dict) -> None:
        cache.clear()  # throttles: one example's requests must not limit the next
        client = Client()
        headers = dict(request["headers"])
        if endpoint.console:
            content_type = "application/x-www-form-urlencoded"
        else:
            headers["X-API-Key"] = key
            content_type = "application/json"
        url = request["path"] + (f"?{request['query']}" if request["query"] else "")
        # Each example from the same database state, and a usable transaction whatever the
        # request did to it. (A savepoint, not atomic(): the services' durable blocks may open
        # inside the test's own transaction, but not inside a further atomic block.)
        savepoint = transaction.savepoint_create()
        try:
            if endpoint.console:
                client.force_login(alice)
            response = client.generic(
                request["method"],
                url,
                request["body"] or "",
                content_type=content_type,
                headers=headers,
            )
            shown = f"{request['method']} {url} {request['body']!r} -> {response.status_code}"
            assert response.status_code < 500, shown
            if 400 <= response.status_code < 500 and endpoint.ours:
                wanted = "text/html" if endpoint.console else "application/json"
                assert response["Content-Type"].startswith(wanted), shown
        finally:
            transaction.savepoint_rollback(savepoint)

    answers_below_500()
