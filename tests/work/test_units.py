"""The public entry of executions/work: which kind of work a unit is, validation naming the field,
running an invalid unit, jobs' operations as units, secrets and bounded logs."""

from __future__ import annotations

import pytest

from executions import handlers, work
from executions.errors import InvalidInput
from executions.work import Logs, WorkFailed, secrets


@pytest.mark.parametrize(
    ("unit", "kind"),
    [
        ({"code": "return 1"}, "javascript"),
        ({"url": "https://example.com"}, "http"),
        ({"command": "true"}, "command"),
        ({"handler": "noop", "name": "an action's own key"}, "handler"),
    ],
)
def test_the_key_a_unit_has_says_its_kind_of_work(unit, kind):
    assert work.kind_of(unit) == kind


@pytest.mark.parametrize("unit", [{}, {"code": "1", "url": "https://example.com"}, ["code"]])
def test_a_unit_with_no_or_two_kinds_of_work_is_refused(unit):
    with pytest.raises(InvalidInput) as caught:
        work.validate(unit, where="actions[0]")
    assert caught.value.field == "actions[0]"


def test_a_caller_may_accept_only_some_kinds_of_work():
    with pytest.raises(InvalidInput) as caught:
        work.validate(
            {"command": "true"}, where="nodes.n1", kinds=("javascript", "http", "handler")
        )
    assert caught.value.field == "nodes.n1.command"
    assert caught.value.message == "command is not allowed here (allowed: code, url, handler)"


def test_an_invalid_unit_fails_when_run_instead_of_breaking_the_worker():
    with pytest.raises(WorkFailed) as caught:
        work.run({"handler": "no.such.handler"})
    assert caught.value.error_class == "InvalidInput"
    assert caught.value.message == "invalid unit of work: unknown handler 'no.such.handler'"


def test_a_jobs_operation_is_a_command_or_a_handler():
    command = {"command": "test", "args": ["-f", "app.ready"], "cwd": "/srv/app", "timeout": 30}
    assert work.from_operation({"type": "command.exec", "data": command}) == command
    assert work.from_operation({"type": "billing.charge", "data": {"amount": 5}}) == {
        "handler": "billing.charge",
        "params": {"amount": 5},
    }


def test_secrets_are_masked_for_display_and_changes_are_named():
    long_secret = {"value": "sk_live_0123456789abcdef", "secret": True}
    short_secret = {"value": "hunter2", "secret": True}
    unit = {"code": "x", "env": {"KEY": long_secret, "PIN": short_secret, "REGION": "eu"}}
    assert secrets.masked(unit)["env"] == {
        "KEY": {"secret": True, "value": "********cdef"},
        "PIN": {"secret": True, "value": "********"},
        "REGION": "eu",
    }
    assert unit["env"]["KEY"] is long_secret  # the stored unit is untouched
    changed = {"code": "x", "env": {"KEY": {**long_secret, "value": "new"}, "REGION": "us"}}
    assert secrets.changed_secrets(unit, changed) == ["env.KEY", "env.PIN"]
    assert secrets.redact({"a": ["hunter2 and more"]}, ["hunter2"]) == {"a": ["******** and more"]}


def test_a_handlers_logs_are_bounded_per_stream_keeping_the_tail():
    entries = [{"level": "info", "message": f"{i:06d}" + "x" * 94} for i in range(1000)]
    entries.append({"level": "error", "message": "the end"})
    logs = Logs.of(entries, limit=10_000)
    assert logs.truncated is True
    assert logs.bytes == 1000 * 101 + 8
    assert logs.entries[-1]["message"] == "the end"
    assert logs.entries[0]["message"].startswith("000901")
    assert sum(len(e["message"]) + 1 for e in logs.entries if e["level"] == "info") <= 10_000


@pytest.mark.parametrize(
    ("unit", "maximum"),
    [({"command": "true"}, 24 * 3600), ({"url": "https://example.com"}, 900)],
)
@pytest.mark.parametrize("timeout", [0, -1, True, "30", None, 10**9])
def test_a_units_timeout_is_seconds_within_its_kinds_limit(unit, maximum, timeout):
    assert work.validate({**unit, "timeout": maximum}, where="w")["timeout"] == maximum
    assert "timeout" not in work.validate(unit, where="w")  # the kind's default applies
    with pytest.raises(InvalidInput) as caught:
        work.validate({**unit, "timeout": timeout}, where="w")
    assert caught.value.field == "w.timeout"
    assert caught.value.message == (
        f"timeout must be a number of seconds, more than 0 and at most {maximum}"
    )


def test_a_handlers_timeout_is_optional_but_checked_when_given():
    name = sorted(handlers.names())[0]
    assert work.validate({"handler": name}, where="w")
    assert work.validate({"handler": name, "timeout": None}, where="w")
    assert work.validate({"handler": name, "timeout": 2.5}, where="w")["timeout"] == 2.5
    with pytest.raises(InvalidInput) as caught:
        work.validate({"handler": name, "timeout": 24 * 3600 + 1}, where="w")
    assert caught.value.field == "w.timeout"
