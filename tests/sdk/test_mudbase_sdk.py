"""Seed 000 with Mudbase's own Python SDK (`mudbase`), unchanged, pointed at Redrive:

    mudbase.FunctionsApi(mudbase.ApiClient(mudbase.Configuration(
        host=<Redrive>, api_key={"ApiKeyAuth": <key>})))        # or access_token=<JWT>

What the SDK really does (mudbase/api/functions_api.py, configuration.py, api_client.py): the
API key goes in `X-API-Key`, a token in `Authorization: Bearer`; `retry_function_execution`
POSTs .../retry/{executionIndex} without a body and reads FunctionExecutionResponse
(success, data.executionId); `get_function_logs` GETs .../logs?limit&offset into pydantic models
with strict types (`_id` str, `executedAt` date-time, `executionTime` int, `success` bool,
`payload`/`result` objects, `invokedBy` one of manual|api_key|trigger|cron, `retryCount` int, and
`stats`) - with a bearer token only: its spec gives this one operation no API-key auth, so the
SDK sends no credentials for it when configured with a key alone; `get_function_execution`
reads FunctionExecutionStatusResponse (status one of queued, provisioning, running, success,
failed, timeout). Any non-2xx raises ApiException (BadRequest-,
Unauthorized-, Forbidden-, NotFoundException) with `.status` and the raw `.body`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import mudbase
import pytest
from django.db.models import Max
from mudbase.exceptions import (
    ApiException,
    BadRequestException,
    ForbiddenException,
    NotFoundException,
    UnauthorizedException,
)

from executions.models import FunctionExecution

pytestmark = pytest.mark.django_db(transaction=True)

OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


@pytest.fixture
def fn(manifest: dict) -> dict:
    return manifest["acme"]["functions"]


def ids(fn: dict) -> tuple[str, str]:
    return fn["project_id"], fn["function_id"]


def test_retry_with_an_api_key_parses_and_the_execution_really_ran(
    mudbase_functions, login, manifest, fn, sync_worker
):
    functions = mudbase_functions(api_key=manifest["api_keys"]["dave"])

    response = functions.retry_function_execution(*ids(fn), fn["failed_index"])

    assert isinstance(response, mudbase.FunctionExecutionResponse)
    assert response.success is True
    new_id = response.data.execution_id
    assert OBJECT_ID.match(new_id)
    new = FunctionExecution.objects.get(pk=new_id)
    # The flaky handler fails once: the retry really ran the function again, and it succeeded.
    assert new.status == "success" and new.invoked_by == "api_key"
    assert new.retry_of.status == "failed" and new.retry_count == new.retry_of.retry_count + 1

    detail = functions.get_function_execution(*ids(fn), new_id)
    assert isinstance(detail, mudbase.FunctionExecutionStatusResponse)
    assert detail.success is True
    assert detail.data.execution_id == new_id and detail.data.status == "success"
    assert detail.data.result == new.result and detail.data.error is None
    assert detail.data.duration_ms == new.execution_time
    assert isinstance(detail.data.created_at, datetime)
    assert "succeeded on attempt" in detail.data.logs.stdout

    # The new execution leads the log now (index 0), as the SDK user will look for it.
    reader = mudbase_functions(token=login("dave"))
    newest = reader.get_function_logs(*ids(fn), limit=1, offset=0).data.executions[0]
    assert newest.id == new_id and newest.success is True
    assert newest.invoked_by == "api_key" and newest.retry_count == new.retry_count


def test_retry_with_a_bearer_token(mudbase_functions, login, fn, sync_worker):
    functions = mudbase_functions(token=login("alice"))

    response = functions.retry_function_execution(*ids(fn), fn["failed_index"])

    assert response.success is True
    new = FunctionExecution.objects.get(pk=response.data.execution_id)
    assert new.status == "success" and new.invoked_by == "manual"
    detail = functions.get_function_execution(*ids(fn), new.pk)
    assert detail.data.status == "success"


def test_logs_parse_with_the_sdks_types_and_stats(mudbase_functions, login, fn):
    functions = mudbase_functions(token=login("bob"))  # reading: a viewer may

    logs = functions.get_function_logs(*ids(fn), limit=100, offset=0)

    assert isinstance(logs, mudbase.FunctionLogsResponse) and logs.success is True
    executions = logs.data.executions
    rows = FunctionExecution.objects.filter(function_id=fn["function_id"])
    assert [e.id for e in executions] == list(
        rows.order_by("-executed_at", "-id").values_list("pk", flat=True)[:100]
    )
    for e in executions:
        assert isinstance(e, mudbase.FunctionExecution)
        assert OBJECT_ID.match(e.id)
        assert isinstance(e.executed_at, datetime) and e.executed_at.tzinfo is not None
        assert isinstance(e.execution_time, int) and isinstance(e.success, bool)
        assert e.payload is None or isinstance(e.payload, dict)
        assert e.result is None or isinstance(e.result, dict)
        assert e.error is None or isinstance(e.error, str)
        assert e.invoked_by in ("manual", "api_key", "trigger", "cron")
        assert isinstance(e.retry_count, int)
    failed, succeeded = executions[fn["failed_index"]], executions[fn["succeeded_index"]]
    assert failed.success is False and "connection reset by peer" in failed.error
    assert succeeded.success is True and succeeded.error is None
    assert failed.payload == {"sku": "SKU-4243", "warehouse": "ams-1"}

    stats = logs.data.stats
    assert isinstance(stats, mudbase.FunctionStats)
    assert stats.total_executions == rows.count()
    assert stats.successful_executions == rows.filter(status="success").count()
    assert stats.failed_executions == rows.filter(status__in=["failed", "timeout"]).count()
    assert isinstance(stats.avg_execution_time, int | float)
    assert stats.last_execution == rows.aggregate(last=Max("executed_at"))["last"]

    # limit and offset page through the same order.
    page = functions.get_function_logs(*ids(fn), limit=2, offset=1).data.executions
    assert [e.id for e in page] == [e.id for e in executions[1:3]]


def error_of(exc: pytest.ExceptionInfo[ApiException]) -> tuple[int, dict]:
    return exc.value.status, json.loads(exc.value.body)


def test_errors_raise_api_exception_with_our_status_and_message(mudbase_functions, manifest, fn):
    functions = mudbase_functions(api_key=manifest["api_keys"]["dave"])
    project, function = ids(fn)

    with pytest.raises(BadRequestException) as exc:
        functions.retry_function_execution(project, function, fn["succeeded_index"])
    assert error_of(exc) == (400, {"success": False, "error": "Cannot retry successful execution"})

    with pytest.raises(NotFoundException) as exc:
        functions.retry_function_execution(project, function, 999_999)
    assert error_of(exc) == (404, {"success": False, "error": "Execution not found"})

    with pytest.raises(NotFoundException) as exc:
        functions.get_function_execution(project, function, "f" * 24)
    assert error_of(exc) == (404, {"success": False, "error": "Execution not found"})

    globex = manifest["globex"]["functions"]
    with pytest.raises(NotFoundException) as exc:
        functions.get_function_execution(globex["project_id"], globex["function_id"], "f" * 24)
    assert error_of(exc) == (404, {"success": False, "error": "Function not found"})


def test_logs_need_a_token_with_this_sdk(mudbase_functions, manifest, fn):
    # The SDK attaches no API key to get_function_logs (see above): Redrive answers 401, in
    # seed 000's shape, exactly as it would for any call without credentials.
    functions = mudbase_functions(api_key=manifest["api_keys"]["dave"])

    with pytest.raises(UnauthorizedException) as exc:
        functions.get_function_logs(*ids(fn))

    assert error_of(exc) == (
        401,
        {"success": False, "error": "Authentication credentials were not provided."},
    )


def test_bad_credentials_are_401_and_a_viewer_is_403(mudbase_functions, login, manifest, fn):
    project, function = ids(fn)
    before = FunctionExecution.objects.count()

    bad_key = mudbase_functions(api_key="rdv_nope.not-a-key")
    with pytest.raises(UnauthorizedException) as exc:
        bad_key.retry_function_execution(project, function, fn["failed_index"])
    assert error_of(exc) == (401, {"success": False, "error": "Invalid API key."})

    bad_token = mudbase_functions(token="not-a-jwt")
    with pytest.raises(UnauthorizedException) as exc:
        bad_token.get_function_logs(project, function)
    assert error_of(exc) == (401, {"success": False, "error": "Invalid token."})

    for viewer in (
        mudbase_functions(api_key=manifest["api_keys"]["bob"]),
        mudbase_functions(token=login("bob")),
    ):
        with pytest.raises(ForbiddenException) as exc:
            viewer.retry_function_execution(project, function, fn["failed_index"])
        assert error_of(exc) == (
            403,
            {"success": False, "error": "Missing permission functions:retry"},
        )
    # None of them ran anything.
    assert FunctionExecution.objects.count() == before
