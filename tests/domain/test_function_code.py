"""Functions that run JavaScript (issue 18) in the real V8 sandbox: the result, a thrown error with
its class and stack, console lines as the logs, the timeout, and a retry that runs the code that
ran first. The environment's secrets reach the code but are masked in what it shows back."""

from __future__ import annotations

import pytest

from executions import services
from executions.kinds.functions import run as functions_run
from executions.models import Function, FunctionExecution

CODE = """
console.log('charging', payload.amount);
if (payload.fail) {
  console.error('card declined');
  throw new TypeError('declined: ' + payload.amount);
}
return {charged: payload.amount, region: env.REGION, attempt: context.attempt};
"""
SECRET = "sk_live_0123456789abcdef"


@pytest.fixture
def function(tenant) -> Function:
    return Function.objects.create(
        tenant=tenant,
        name="charge-card",
        code=CODE,
        environment={"REGION": "eu", "API_KEY": {"value": SECRET, "secret": True}},
        timeout_ms=5_000,
    )


def invoke(function: Function, payload: dict) -> FunctionExecution:
    return functions_run.invoke_function(function, payload, queued=False)


@pytest.mark.django_db
def test_the_code_s_return_value_is_the_result_and_its_console_lines_the_logs(function):
    execution = invoke(function, {"amount": 5})
    assert execution.status == "success"
    assert execution.result == {"charged": 5, "region": "eu", "attempt": 1}
    assert [(e["level"], e["message"]) for e in execution.logs] == [("info", "charging 5")]
    assert execution.logs_bytes > 0 and execution.logs_truncated is False
    assert execution.code == CODE and execution.environment == function.environment


@pytest.mark.django_db
def test_a_throw_fails_it_with_message_class_stack_and_logs(function):
    execution = invoke(function, {"amount": 7, "fail": True})
    assert execution.status == "failed"
    assert execution.error_message == "declined: 7"
    assert execution.error_class == "TypeError"
    assert "function.js:5" in execution.error_stack
    assert [(e["level"], e["message"]) for e in execution.logs] == [
        ("info", "charging 7"),
        ("error", "card declined"),
    ]
    assert execution.fingerprint


@pytest.mark.django_db
def test_an_endless_loop_times_out(tenant):
    function = Function.objects.create(
        tenant=tenant, name="spin", code="while (true) {}", timeout_ms=300
    )
    execution = invoke(function, {})
    assert execution.status == "timeout"
    assert "timed out after 300 ms" in execution.error_message
    # The sandbox goes on with the next execution.
    Function.objects.filter(pk=function.pk).update(code="return 1")
    function.refresh_from_db()
    assert invoke(function, {}).result == {"value": 1}


@pytest.mark.django_db
def test_output_that_echoes_a_secret_is_redacted(function):
    Function.objects.filter(pk=function.pk).update(
        code="console.log('key', env.API_KEY); if (payload.fail) throw new Error(env.API_KEY);"
        "return {key: env.API_KEY, len: env.API_KEY.length}"
    )
    function.refresh_from_db()
    ok = invoke(function, {})
    # The code got the real value; what it showed of it is masked.
    assert ok.result["len"] == len(SECRET) and SECRET not in str(ok.result)
    assert SECRET not in str(ok.logs)
    failed = invoke(function, {"fail": True})
    assert failed.status == "failed"
    assert SECRET not in failed.error_message and SECRET not in failed.error_stack


@pytest.mark.django_db(transaction=True)
def test_a_retry_runs_the_functions_current_code_and_the_original_keeps_what_ran(
    admin, function, sync_worker
):
    failed = invoke(function, {"amount": 9, "fail": True})
    Function.objects.filter(pk=function.pk).update(code="return 'new code'", version=2)

    outcome = services.retry_function(
        admin,
        project_id=admin.tenant.functions_project_id,
        function_id=function.pk,
        execution_id=failed.pk,
    )

    new = FunctionExecution.objects.get(pk=outcome.new_id)
    assert new.code == "return 'new code'" and new.function_version == 2
    assert new.status == "success" and new.result == {"value": "new code"}
    assert new.retry_count == 1 and new.payload == {"amount": 9, "fail": True}
    failed.refresh_from_db()
    assert failed.code == CODE and failed.function_version == 1
