"""Seed 000 through the unchanged `mudbase` SDK's FunctionsApi, defining and starting functions
(issue 19): create a function, execute it asynchronously (202, then poll the execution), see the
failure in the log, fix the code and retry the failure: the fix runs. A real worker runs every
execution; the SDK talks HTTP to a live Redrive.

The SDK sends the API key as X-API-Key and a token as Authorization: Bearer; get_function_logs
carries a bearer token only (its spec gives it no API-key auth), so these tests sign in."""

from __future__ import annotations

import mudbase
import pytest
from mudbase.exceptions import BadRequestException, ForbiddenException, NotFoundException

from executions.models import FunctionExecution

pytestmark = pytest.mark.django_db(transaction=True)

FAILS_ON_FLAG = "if (payload.fail) throw new TypeError('card declined'); return {charged: true};"
FIXED = "console.log('charging', payload.fail); return {charged: true, fixed: true};"


def settled(functions, project_id, function_id, execution_id, wait_until):
    """Poll get_function_execution until the execution leaves queued/running, as a client of
    the asynchronous execute does."""

    def done():
        data = functions.get_function_execution(project_id, function_id, execution_id).data
        return data if data.status not in ("queued", "running") else None

    return wait_until(done, timeout=60, message=f"execution {execution_id} to finish")


def test_create_execute_fail_see_it_fix_retry_succeeds(
    mudbase_functions, login, manifest, worker_process, wait_until
):
    project_id = manifest["acme"]["functions"]["project_id"]
    functions = mudbase_functions(token=login("alice"))
    worker_process()

    created = functions.create_function(
        project_id,
        mudbase.CreateFunctionRequest(
            name="charge-card",
            description="charges the card",
            code=FAILS_ON_FLAG,
            trigger=mudbase.FunctionTrigger(type="http"),
            environment={"REGION": "eu"},
        ),
    )
    assert isinstance(created, mudbase.FunctionResponse) and created.success is True
    function_id = created.data.id
    assert created.data.project_id == project_id and created.data.is_active is True
    assert created.data.trigger.type == "http"

    started = functions.execute_function(
        project_id, function_id, mudbase.ExecuteFunctionRequest(payload={"fail": True})
    )
    assert isinstance(started, mudbase.FunctionExecutionResponse)
    assert started.data.status == "queued"
    failed_id = started.data.execution_id

    failed = settled(functions, project_id, function_id, failed_id, wait_until)
    assert failed.status == "failed" and failed.error_class == "TypeError"
    assert "card declined" in failed.error and failed.result is None
    assert isinstance(failed.duration_ms, int)

    log = functions.get_function_logs(project_id, function_id, limit=10, offset=0).data
    assert [e.id for e in log.executions] == [failed_id]
    assert log.executions[0].success is False and log.executions[0].payload == {"fail": True}
    assert log.stats.failed_executions == 1

    updated = functions.update_function(
        project_id, function_id, mudbase.UpdateFunctionRequest(code=FIXED)
    )
    assert updated.success is True

    retried = functions.retry_function_execution(project_id, function_id, 0)
    assert retried.success is True
    retry_id = retried.data.execution_id
    done = functions.get_function_execution(project_id, function_id, retry_id).data
    assert done.status == "success" and done.result == {"charged": True, "fixed": True}
    assert "charging true" in done.logs.stdout  # the original payload, the fixed code
    retry = FunctionExecution.objects.get(pk=retry_id)
    assert retry.retry_of_id == failed_id and retry.function_version == 2
    assert FunctionExecution.objects.get(pk=failed_id).function_version == 1

    versions = functions.get_function_versions(project_id, function_id).data.versions
    assert [(v.version, v.code) for v in versions] == [(2, FIXED), (1, FAILS_ON_FLAG)]


def test_the_other_calls_of_the_sdk(mudbase_functions, login, manifest):
    project_id = manifest["acme"]["functions"]["project_id"]
    functions = mudbase_functions(token=login("alice"))
    function_id = functions.create_function(
        project_id,
        mudbase.CreateFunctionRequest(
            name="nightly-report",
            code="return 1;",
            trigger=mudbase.FunctionTrigger(type="cron", schedule="daily"),
        ),
    ).data.id

    listed = functions.list_functions(project_id, search="nightly", trigger_type="cron").data
    assert [f.id for f in listed.functions] == [function_id] and listed.pagination.total == 1
    assert functions.get_function(project_id, function_id).data.name == "nightly-report"

    assert functions.deactivate_function(project_id, function_id).data.is_active is False
    with pytest.raises(BadRequestException) as refused:
        functions.execute_function(project_id, function_id, mudbase.ExecuteFunctionRequest())
    assert "deactivated" in refused.value.body
    assert functions.activate_function(project_id, function_id).data.is_active is True

    functions.update_function(
        project_id, function_id, mudbase.UpdateFunctionRequest(code="return 2;")
    )
    rolled = functions.rollback_function(
        project_id, function_id, mudbase.RollbackFunctionRequest(version=1)
    )
    assert rolled.success is True
    assert functions.get_function(project_id, function_id).data.name == "nightly-report"

    hook_id = functions.create_function(
        project_id,
        mudbase.CreateFunctionRequest(
            name="on-order", code="return payload;", trigger=mudbase.FunctionTrigger(type="webhook")
        ),
    ).data.id
    anyone = mudbase_functions()
    triggered = anyone.trigger_function_webhook(project_id, body={"order": 42})
    assert triggered.success is True and triggered.triggered == 1
    assert triggered.results[0]["functionId"] == hook_id
    execution = FunctionExecution.objects.get(pk=triggered.results[0]["executionId"])
    assert execution.payload == {"order": 42}

    viewer = mudbase_functions(api_key=manifest["api_keys"]["bob"])
    with pytest.raises(ForbiddenException):
        viewer.delete_function(project_id, function_id)

    assert functions.delete_function(project_id, function_id).success is True
    with pytest.raises(NotFoundException):
        functions.get_function(project_id, function_id)
