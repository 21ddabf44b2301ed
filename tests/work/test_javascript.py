"""JavaScript work in real V8 (mini-racer, in the thread's sandbox host process): results, errors
with stacks, console logs, timeouts, the memory limit, what the sandbox does not have, and that
nothing of one execution is left for the next."""

from __future__ import annotations

import uuid

import psutil
import pytest

from executions import work
from executions.errors import InvalidInput
from executions.work import WorkContext, WorkFailed, WorkTimeout, javascript


def run(code: str, **unit) -> work.Outcome:
    return work.run({"code": code, **unit}, WorkContext(payload={"n": 41}, context={"id": "ex1"}))


def fail(code: str, **unit) -> WorkFailed:
    with pytest.raises(WorkFailed) as caught:
        run(code, **unit)
    return caught.value


def test_the_code_gets_payload_context_and_env_and_its_return_value_is_the_result():
    outcome = run(
        "return {sum: payload.n + 1, id: context.id, region: env.REGION}", env={"REGION": "eu"}
    )
    assert outcome.result == {"sum": 42, "id": "ex1", "region": "eu"}


def test_an_async_body_awaits_and_timers_fire():
    outcome = run(
        "const started = Date.now();"
        "await new Promise(resolve => setTimeout(resolve, 50));"
        "return Date.now() - started >= 50;"
    )
    assert outcome.result is True


def test_console_lines_are_the_logs_with_timestamps_and_levels():
    outcome = run(
        "console.log('hello', {a: 1}); console.info('info'); console.debug('dbg');"
        "console.warn('careful'); console.error(new Error('bad'));"
    )
    levels = [(e["level"], e["message"].splitlines()[0]) for e in outcome.logs.entries]
    assert levels == [
        ("info", 'hello {"a":1}'),
        ("info", "info"),
        ("debug", "dbg"),
        ("warn", "careful"),
        ("error", "Error: bad"),
    ]
    assert all(e["timestamp"].endswith("Z") for e in outcome.logs.entries)
    stdio = outcome.logs.stdio()
    assert stdio["stdout"].splitlines()[0].endswith(' [INFO] hello {"a":1}')
    assert [line.split(" ", 1)[1] for line in stdio["stderr"].splitlines()[:1]] == [
        "[WARN] careful"
    ]
    assert stdio["truncated"] is False
    assert stdio["bytes"] == sum(len(e["message"].encode()) + 1 for e in outcome.logs.entries)


def test_logs_are_bounded_and_say_so():
    outcome = run("for (let i = 0; i < 5000; i++) console.log('line ' + i + ' ' + 'x'.repeat(40));")
    stdio = outcome.logs.stdio()
    assert stdio["truncated"] is True
    assert stdio["bytes"] == sum(len(f"line {i} " + "x" * 40) + 1 for i in range(5000))
    kept = sum(len(e["message"]) + 1 for e in outcome.logs.entries)
    assert kept <= 64 * 1024
    # the tail is kept: the last lines before the end are the ones that explain it
    assert outcome.logs.entries[-1]["message"].startswith("line 4999 ")


def test_a_thrown_error_records_message_class_and_stack_with_the_codes_line_numbers():
    error = fail(
        "const total = payload.n;\n"
        "function charge(amount) {\n"
        "  throw new TypeError(`card declined: ${amount}`);\n"
        "}\n"
        "charge(total);\n"
    )
    assert error.message == "card declined: 41"
    assert error.error_class == "TypeError"
    lines = error.stack.splitlines()
    assert lines[0] == "TypeError: card declined: 41"
    assert "function.js:3:9" in lines[1] and "charge" in lines[1]
    assert "function.js:5:1" in lines[2]
    assert "redrive-sandbox" not in error.stack


def test_a_custom_error_class_is_the_error_class_and_logs_survive_the_throw():
    error = fail(
        "class PaymentDeclined extends Error {}\n"
        "console.log('charging');\n"
        "await null;\n"
        "throw new PaymentDeclined('insufficient funds');\n"
    )
    assert (error.error_class, error.message) == ("PaymentDeclined", "insufficient funds")
    assert "function.js:4" in error.stack
    assert [e["message"] for e in error.logs.entries] == ["charging"]


def test_code_that_does_not_compile_is_refused_when_saved_naming_the_field():
    with pytest.raises(InvalidInput) as caught:
        work.validate({"code": "const x = 1;\n  x = );"}, where="actions[1]")
    assert caught.value.field == "actions[1].code"
    assert (
        caught.value.message == "code does not compile: SyntaxError: Unexpected token ')' (line 2)"
    )


def test_code_cannot_break_out_of_its_function():
    with pytest.raises(InvalidInput) as caught:
        work.validate({"code": "}); globalThis.escaped = true; (function() {"})
    assert caught.value.field == "code"
    assert "SyntaxError" in caught.value.message


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"timeout": 0}, "limits.timeout"),
        ({"memoryMb": 4096}, "limits.memoryMb"),
        ({"cpu": 1}, "limits"),
    ],
)
def test_limits_out_of_range_are_refused_when_saved(limits, field):
    with pytest.raises(InvalidInput) as caught:
        work.validate({"code": "return 1", "limits": limits})
    assert caught.value.field == field


@pytest.mark.parametrize(
    "code",
    [
        "while (true) {}",  # in the call that starts the function
        "console.log('spinning'); await null; while (true) {}",  # in a promise callback
        "setTimeout(() => { for (;;) {} }, 1); await new Promise(() => {});",  # in a timer
    ],
)
def test_an_infinite_loop_is_stopped_at_the_timeout_and_the_next_execution_runs(code):
    with pytest.raises(WorkTimeout) as caught:
        run(code, limits={"timeout": 300})
    assert caught.value.message == "JavaScript timed out after 300 ms"
    host = psutil.Process(javascript.host_pid())
    before = host.cpu_times().user
    # The next execution runs in the same host; while its timer waits a second the host must be
    # idle: a loop left running would burn that second.
    assert run("await new Promise(r => setTimeout(r, 1000)); return 'next'").result == "next"
    assert javascript.host_pid() == host.pid
    assert host.cpu_times().user - before < 0.15


def test_the_memory_limit_stops_code_that_allocates_too_much():
    error = fail(
        "const keep = []; while (true) keep.push(new Array(100000).fill(1.5));",
        limits={"memoryMb": 32},
    )
    assert error.message == "JavaScript exceeded its memory limit of 32 MB"
    assert error.error_class == "MemoryLimitExceeded"
    assert run("return 1").result == 1


def test_memory_outside_the_heap_is_limited_too():
    error = fail(
        "const buffers = [];"
        "for (let i = 0; i < 16; i++) buffers.push(new Uint8Array(64 * 1024 * 1024).fill(1));"
        "return buffers.length;",
        limits={"memoryMb": 32},
    )
    assert error.error_class == "RangeError"
    assert error.message == "Array buffer allocation failed"
    assert run("return 1").result == 1


def test_code_that_exhausts_memory_the_heap_limit_does_not_see_fails_and_the_next_runs():
    # Intl objects keep their data outside the V8 heap: the sandbox process's own memory limit
    # stops this one, and the next execution gets a new sandbox.
    before = javascript.host_pid()
    error = fail(
        "const keep = []; for (;;) keep.push(new Intl.Collator('de'));",
        limits={"memoryMb": 32, "timeout": 60000},
    )
    assert error.message == "JavaScript exceeded its memory limit of 32 MB"
    assert run("return 'next'").result == "next"
    assert javascript.host_pid() != before


def test_there_is_no_require_fetch_process_or_file_access():
    outcome = run(
        "return [typeof require, typeof fetch, typeof process, typeof Deno, typeof XMLHttpRequest,"
        " typeof WebAssembly, typeof Atomics, typeof SharedArrayBuffer];"
    )
    assert outcome.result == ["undefined"] * 8
    error = fail("return require('fs').readFileSync('/etc/passwd', 'utf8');")
    assert (error.error_class, error.message) == ("ReferenceError", "require is not defined")
    error = fail("const fs = await import('fs'); return fs.readFileSync('/etc/passwd', 'utf8');")
    assert error.error_class in ("TypeError", "Error")


def test_the_sandbox_process_has_none_of_the_workers_environment(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "the-workers-own")
    run("return 1")
    environ = psutil.Process(javascript.host_pid()).environ()
    assert "SECRET_KEY" not in environ and "DJANGO_SETTINGS_MODULE" not in environ
    assert set(environ) <= {"LANG"}


def test_a_global_set_by_one_execution_is_gone_in_the_next():
    run(
        "globalThis.leaked = payload; Array.prototype.evil = () => 'pwned';"
        "Object.prototype.polluted = true; JSON.stringify = () => 'forged'; return 1;"
    )
    outcome = run(
        "return [typeof globalThis.leaked, typeof [].evil, typeof ({}).polluted,"
        " JSON.stringify({a: 1})];"
    )
    assert outcome.result == ["undefined", "undefined", "undefined", '{"a":1}']


COUNTER = (
    "globalThis.runs = (globalThis.runs || 0) + 1; console.log('run', runs);"
    "if (payload.fail) throw new Error('no'); return runs;"
)


def in_scope(scope: str, code: str = COUNTER, **payload) -> work.Outcome:
    return work.run({"code": code}, WorkContext(payload=payload, reuse=scope))


def test_a_warm_isolate_serves_the_same_code_of_the_same_tenant_only():
    tenant, other = f"t-{uuid.uuid4()}", f"t-{uuid.uuid4()}"
    assert in_scope(tenant).result == 1
    again = in_scope(tenant)
    # Warm, as a Lambda environment is: the globals its last run left; its logs are its own.
    assert again.result == 2
    assert [e["message"] for e in again.logs.entries] == ["run 2"]
    assert in_scope(other).result == 1  # another tenant: never its isolate
    assert in_scope(tenant, COUNTER + "\n").result == 1  # other code: never its isolate
    assert in_scope("").result == 1  # no scope: a fresh isolate every time
    assert in_scope("").result == 1


def test_a_run_that_fails_closes_its_warm_isolate_and_leaves_no_timer_behind():
    tenant = f"t-{uuid.uuid4()}"
    assert in_scope(tenant).result == 1
    with pytest.raises(WorkFailed, match="no"):
        in_scope(tenant, fail=True)  # ran warm (runs 2), then its isolate was closed
    assert in_scope(tenant).result == 1
    # A timer the last run left does not fire in the next one.
    late = (
        "globalThis.n = (globalThis.n || 0) + 1;"
        "setTimeout(() => { throw new Error('late') }, 0); return n;"
    )
    assert in_scope(tenant, late).result == 1
    assert in_scope(tenant, late).result == 2


def test_a_promise_that_can_never_settle_fails_at_once():
    error = fail("await new Promise(() => {});", limits={"timeout": 30000})
    assert error.message == (
        "the function returned a promise that can never settle (nothing left to wait for)"
    )


def test_a_result_that_is_not_json_fails():
    error = fail("return 10n;")
    assert error.error_class == "TypeError"
    assert error.message.startswith("the function's result is not JSON")


def test_an_error_thrown_in_a_timer_fails_the_execution():
    error = fail(
        "setTimeout(() => { throw new RangeError('late') }, 1);"
        "await new Promise(r => setTimeout(r, 50));"
    )
    assert (error.error_class, error.message) == ("RangeError", "late")


def test_secret_env_values_reach_the_code_but_never_its_logs_or_result():
    secret = "sk_live_0123456789abcdefXYZW"
    outcome = run(
        "console.log('key is', env.API_KEY); return {key: env.API_KEY, len: env.API_KEY.length};",
        env={"API_KEY": {"value": secret, "secret": True}},
    )
    assert outcome.result == {"key": "********XYZW", "len": len(secret)}
    assert outcome.logs.entries[0]["message"] == "key is ********XYZW"


def test_the_outer_timeout_of_the_engine_wins_when_it_is_shorter():
    with pytest.raises(WorkTimeout):
        work.run(
            {"code": "await new Promise(r => setTimeout(r, 5000));"},
            WorkContext(timeout_s=0.3),
        )
