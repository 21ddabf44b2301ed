"""Python handlers of the deployer: registered with @handler in an installed app's
redrive_handlers.py or a REDRIVE_HANDLER_MODULES module, listed by `manage.py handlers`, run as
units, refused by name when unknown. The demo's handlers are not the product's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from executions import handlers, work
from executions.demo.handlers import OPERATION_TYPES
from executions.errors import InvalidInput
from executions.handlers import handler
from executions.work import WorkContext, WorkFailed, WorkTimeout
from tests.work import deployer_handlers

ROOT = Path(__file__).resolve().parent.parent.parent


def manage(*args: str, modules: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "REDRIVE_HANDLER_MODULES"}
    if modules is not None:
        env["REDRIVE_HANDLER_MODULES"] = modules
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def listed(done: subprocess.CompletedProcess) -> list[list[str]]:
    assert done.returncode == 0, done.stderr
    return [line.split() for line in done.stdout.splitlines()]


def test_manage_py_handlers_lists_a_deployers_module_from_redrive_handler_modules():
    done = manage("handlers", modules="tests.work.deployer_handlers")
    assert listed(done) == [
        ["billing.charge", "tests.work.deployer_handlers:charge"],
        ["billing.refund", "tests.work.deployer_handlers:refund"],
    ]


def test_an_installed_apps_redrive_handlers_module_is_autodiscovered():
    done = manage("handlers", "--settings", "tests.work.settings_with_app", modules="")
    assert listed(done) == [["inventory.sync", "tests.work.deployer_app.redrive_handlers:sync"]]


def test_the_product_alone_has_no_demo_handlers():
    assert listed(manage("handlers", modules="")) == []
    names = [row[0] for row in listed(manage("handlers", modules="executions.demo.handlers"))]
    # The demo's job operation types are demo handlers too: the product registers none.
    assert names == sorted(
        ["echo", "fail", "flaky", "noop", "send_email", "sleep", *OPERATION_TYPES]
    )


def test_a_handler_module_that_cannot_be_imported_stops_start_up():
    done = manage("handlers", modules="tests.work.no_such_module")
    assert done.returncode != 0
    assert "REDRIVE_HANDLER_MODULES: cannot import 'tests.work.no_such_module'" in done.stderr


def test_a_handler_unit_runs_the_handler_with_params_payload_attempt_and_key():
    outcome = work.run(
        {"handler": "billing.charge", "params": {"amount": 1200}},
        WorkContext(payload={"customer": "c_42"}, attempt=2, key="job-7"),
    )
    assert outcome.result == {"charged": 1200, "attempt": 2, "key": "job-7"}
    assert [e["message"] for e in outcome.logs.entries] == ["charging 1200 for c_42"]


def test_a_failing_handler_records_message_class_stack_and_logs():
    with pytest.raises(WorkFailed) as caught:
        work.run(
            {"handler": "billing.charge", "params": {"amount": 7250}},
            WorkContext(payload={"customer": "c"}),
        )
    error = caught.value
    assert (error.error_class, error.message) == ("CardDeclined", "amount 7250 exceeds limit 5000")
    assert 'deployer_handlers.py", line' in error.stack and "in charge" in error.stack
    assert [e["level"] for e in error.logs.entries] == ["info", "error"]
    assert error.logs.stdio()["stderr"].endswith("[ERROR] over the limit")


def test_a_handler_that_overruns_its_timeout_times_out():
    with pytest.raises(WorkTimeout):
        work.run({"handler": "sleep", "params": {"seconds": 5}, "timeout": 0.2})


def test_an_unknown_handler_is_refused_when_saved_naming_the_field():
    with pytest.raises(InvalidInput) as caught:
        work.validate({"handler": "billing.chrage"}, where="tasks[3]")
    assert (caught.value.field, caught.value.message) == (
        "tasks[3].handler",
        "unknown handler 'billing.chrage'",
    )
    with pytest.raises(InvalidInput) as caught:
        work.validate({"handler": "billing.charge", "params": [1]}, where="tasks[3]")
    assert caught.value.field == "tasks[3].params"


def test_two_handlers_under_one_name_are_refused():
    with pytest.raises(ImproperlyConfigured, match="'billing.charge' is registered twice"):

        @handler("billing.charge")
        def impostor(ctx):
            return None

    assert handlers.get("billing.charge") is deployer_handlers.charge


def test_the_tests_and_their_workers_have_the_demo_handlers():
    assert handlers.location(handlers.get("flaky")) == "executions.demo.handlers:flaky"
    # ... and their own, which are no demo's: the counter of calls lives under tests/.
    assert handlers.location(handlers.get("counter")) == "tests.handlers:counter"
