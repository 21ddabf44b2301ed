"""Seed 000 (functions): retry by index and by id, the log and one execution, in Mudbase's
shapes; errors as {"success": false, "error": "..."}."""

from __future__ import annotations

import pytest

from executions.kinds.functions import run as functions_run
from executions.models import Function, FunctionExecution

from .conftest import fn_base

pytestmark = pytest.mark.django_db


def test_it_retries_the_failed_execution_at_an_index(api, manifest, sync_worker):
    items = manifest["acme"]
    r = api.post(f"{fn_base(items)}/retry/{items['functions']['failed_index']}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["success"] is True
    assert set(body["data"]) == {"success", "result", "error", "executionTime", "executionId"}
    new = FunctionExecution.objects.get(pk=body["data"]["executionId"])
    # The flaky handler fails its first attempt only: the retry really ran again and succeeded.
    assert body["data"]["success"] is True and new.status == "success"
    assert body["data"]["error"] is None
    assert body["data"]["result"] == new.result
    assert body["data"]["executionTime"] == new.execution_time
    assert new.retry_of is not None and new.retry_count == new.retry_of.retry_count + 1
    # The original is kept, error and all.
    assert new.retry_of.status == "failed" and new.retry_of.error_message


def test_it_refuses_a_successful_execution(api, manifest):
    items = manifest["acme"]
    r = api.post(f"{fn_base(items)}/retry/{items['functions']['succeeded_index']}")
    assert r.status_code == 400
    assert r.json() == {"success": False, "error": "Cannot retry successful execution"}


def test_the_seed_example_index_is_a_400_naming_execution_index(api, manifest):
    r = api.post(f"{fn_base(manifest['acme'])}/retry/system transmit")
    assert r.status_code == 400
    assert r.json() == {"success": False, "error": "executionIndex must be a non-negative integer"}


@pytest.mark.parametrize("index", ["-1", "1.5", "0x1", "9999999999"])
def test_malformed_indexes_are_400(api, manifest, index):
    r = api.post(f"{fn_base(manifest['acme'])}/retry/{index}")
    assert r.status_code == 400
    assert "executionIndex" in r.json()["error"]


def test_an_index_past_the_log_is_404(api, manifest):
    r = api.post(f"{fn_base(manifest['acme'])}/retry/999999")
    assert r.status_code == 404
    assert r.json() == {"success": False, "error": "Execution not found"}


def test_missing_and_foreign_functions_are_the_same_404(api, manifest):
    globex = manifest["globex"]["functions"]
    acme = manifest["acme"]["functions"]
    foreign = api.post(
        f"/api/functions/projects/{globex['project_id']}/functions/{globex['function_id']}/retry/0"
    )
    mixed = api.post(
        f"/api/functions/projects/{acme['project_id']}/functions/{globex['function_id']}/retry/0"
    )
    missing = api.post(
        f"/api/functions/projects/{acme['project_id']}/functions/ffffffffffffffffffffffff/retry/0"
    )
    for r in (foreign, mixed, missing):
        assert r.status_code == 404
        assert r.json() == {"success": False, "error": "Function not found"}


def test_it_retries_by_stable_id(api, manifest, sync_worker):
    items = manifest["acme"]
    failed = api.get(f"{fn_base(items)}/logs").json()["data"]["executions"][0]
    assert failed["success"] is False
    r = api.post(f"{fn_base(items)}/executions/{failed['_id']}/retry")
    assert r.status_code == 200
    assert r.json()["data"]["success"] is True
    # Its retry is final: retrying it again is a deliberate new retry, appended (issue 16.3).
    again = api.post(f"{fn_base(items)}/executions/{failed['_id']}/retry")
    assert again.status_code == 200
    assert again.json()["data"]["executionId"] != r.json()["data"]["executionId"]
    assert FunctionExecution.objects.filter(retry_of=failed["_id"]).count() == 2


def test_a_malformed_execution_id_is_400(api, manifest):
    r = api.post(f"{fn_base(manifest['acme'])}/executions/not-an-id/retry")
    assert r.status_code == 400
    assert r.json() == {
        "success": False,
        "error": "executionId must be a 24-character hexadecimal id",
    }


def test_logs_are_in_mudbase_shape(api, manifest):
    items = manifest["acme"]
    r = api.get(f"{fn_base(items)}/logs", {"limit": 2, "offset": 0})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    data = body["data"]
    assert len(data["executions"]) == 2 and data["hasMore"] is True
    first = data["executions"][0]
    assert set(first) >= {
        "_id",
        "executedAt",
        "executionTime",
        "success",
        "payload",
        "result",
        "error",
        "invokedBy",
        "retryCount",
    }
    assert isinstance(first["_id"], str) and isinstance(first["executionTime"], int)
    assert first["success"] is False and isinstance(first["error"], str)
    assert first["payload"] is None or isinstance(first["payload"], dict)
    assert first["invokedBy"] in ("manual", "api_key", "trigger", "cron")
    # Index 1 (the manifest's succeeded_index) is the success the index route refuses.
    assert data["executions"][items["functions"]["succeeded_index"]]["success"] is True
    stats = data["stats"]
    assert set(stats) == {
        "totalExecutions",
        "successfulExecutions",
        "failedExecutions",
        "avgExecutionTime",
        "lastExecution",
    }
    total = FunctionExecution.objects.filter(function_id=items["functions"]["function_id"])
    assert stats["totalExecutions"] == total.count()
    assert stats["successfulExecutions"] == total.filter(status="success").count()
    page2 = api.get(f"{fn_base(items)}/logs", {"limit": 2, "offset": 2}).json()["data"]
    assert page2["executions"][0]["_id"] not in {e["_id"] for e in data["executions"]}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"status": "nope"}, "status"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_bad_log_parameters_are_400(api, manifest, params, field):
    r = api.get(f"{fn_base(manifest['acme'])}/logs", params)
    assert r.status_code == 400
    assert r.json()["success"] is False and field in r.json()["error"]


def test_one_execution_has_input_error_stack_and_lineage(api, manifest):
    items = manifest["acme"]
    logs = api.get(f"{fn_base(items)}/logs").json()["data"]["executions"]
    failed, succeeded = logs[0], logs[1]
    r = api.get(f"{fn_base(items)}/executions/{failed['_id']}")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["executionId"] == failed["_id"]
    assert data["status"] == "failed" and data["error"] == failed["error"]
    assert data["errorStack"] and data["errorClass"] == "ConnectionResetError"
    assert set(data["logs"]) == {"stdout", "stderr", "truncated", "bytes"}
    assert data["retriedBy"] is None and data["retryOf"] is None
    retried = api.get(f"{fn_base(items)}/executions/{succeeded['_id']}").json()["data"]
    assert retried["status"] == "success" and retried["retryOf"]
    original = api.get(f"{fn_base(items)}/executions/{retried['retryOf']}").json()["data"]
    assert original["retriedBy"] == succeeded["_id"]


def test_a_foreign_execution_is_404(api, manifest):
    globex = manifest["globex"]
    foreign_id = api.as_("carol").get(f"{fn_base(globex)}/logs").json()["data"]["executions"][0]
    r = api.get(f"{fn_base(manifest['acme'])}/executions/{foreign_id['_id']}")
    assert r.status_code == 404
    assert r.json() == {"success": False, "error": "Execution not found"}


# --- retrying the same failed execution again (issue 16.3) -------------------------------------


def _retry_in_flight(manifest: dict, execution_id: str) -> str:
    """A retry of `execution_id` that stays running: queued for a worker that never comes."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from executions.kinds import functions
    from executions.models import Tenant
    from executions.tenancy import Actor

    alice = get_user_model().objects.get(username="alice")
    actor = Actor.for_user(alice, Tenant.objects.get(slug="acme"), source="api")
    with transaction.atomic():
        [retried] = functions.KIND.rule.retry(actor, [execution_id])
    return str(retried.new_id)


def test_a_failed_execution_is_retried_again_once_its_retry_is_final(api, manifest, sync_worker):
    items = manifest["acme"]
    failed = api.get(f"{fn_base(items)}/logs").json()["data"]["executions"][0]
    path = f"{fn_base(items)}/executions/{failed['_id']}/retry"
    first = api.post(path).json()["data"]["executionId"]
    second = api.post(path)
    assert second.status_code == 200, second.content
    new = FunctionExecution.objects.get(pk=second.json()["data"]["executionId"])
    assert new.pk != first and new.retry_of_id == failed["_id"] and new.status == "success"
    assert new.payload == FunctionExecution.objects.get(pk=failed["_id"]).payload
    # Appended: both retries and the original are in the log; the original names its latest.
    assert FunctionExecution.objects.filter(retry_of=failed["_id"]).count() == 2
    original = api.get(f"{fn_base(items)}/executions/{failed['_id']}").json()["data"]
    assert (original["status"], original["retriedBy"]) == ("failed", new.pk)


def test_an_execution_is_refused_while_a_retry_of_it_is_running(api, manifest):
    items = manifest["acme"]
    failed = api.get(f"{fn_base(items)}/logs").json()["data"]["executions"][0]
    running = _retry_in_flight(manifest, failed["_id"])
    # The log is newest first: the running retry is at 0, the failed execution at 1.
    for path in (
        f"{fn_base(items)}/executions/{failed['_id']}/retry",
        f"{fn_base(items)}/retry/1",
    ):
        r = api.post(path)
        assert r.status_code == 400, r.content
        assert r.json() == {
            "success": False,
            "error": f"Execution was already retried as {running}, which is still running",
        }
    assert FunctionExecution.objects.filter(retry_of=failed["_id"]).count() == 1


def test_a_javascript_execution_shows_its_error_class_logs_and_masked_environment(api, manifest):
    items = manifest["acme"]
    secret = "sk_live_0123456789abcdef"
    function = Function.objects.get(pk=items["functions"]["function_id"])
    function.code = "console.log('hi'); console.warn('careful'); throw new RangeError('too far')"
    function.environment = {"REGION": "eu", "API_KEY": {"value": secret, "secret": True}}
    function.save()
    execution = functions_run.invoke_function(function, {}, queued=False)

    r = api.get(f"{fn_base(items)}/executions/{execution.pk}")

    assert r.status_code == 200
    data = r.json()["data"]
    assert data["status"] == "failed" and data["error"] == "too far"
    assert data["errorClass"] == "RangeError" and "function.js:1" in data["errorStack"]
    assert data["logs"]["stdout"].endswith("[INFO] hi")
    assert data["logs"]["stderr"].splitlines()[0].endswith("[WARN] careful")
    assert data["logs"]["truncated"] is False and data["logs"]["bytes"] > 0
    assert data["code"] == function.code
    assert data["environment"] == {
        "REGION": "eu",
        "API_KEY": {"secret": True, "value": "********cdef"},
    }
    assert secret not in r.content.decode()
