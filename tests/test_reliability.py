"""Reliability: workers killed mid-drain, lost database connections, overlapping bulk retries,
the RQ backend end to end, hostile input to the parsers, and a clean deployment check."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult
from hypothesis import given, settings
from hypothesis import strategies as st

from executions import filters, heartbeats, kinds, services
from executions.errors import InvalidInput
from executions.fingerprints import fingerprint, normalise
from executions.kinds.automations import retry as automations_retry
from executions.models import (
    Attempt,
    AutomationExecution,
    AutomationRule,
    Membership,
    Tenant,
)
from executions.tenancy import Actor
from tests.audit import retried_in
from tests.conftest import ROOT, worker_env


@pytest.fixture
def acme(db):
    from django.contrib.auth.models import User

    tenant = Tenant.objects.create(slug="acme", name="Acme", workflows_project="acme-prod")
    user = User.objects.create_user("alice")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    return tenant, Actor.for_user(user, tenant, source="cli")


def failed_automations(tenant, n: int, actions: list[dict]) -> list[str]:
    rule = AutomationRule.objects.create(tenant=tenant, name="drain", actions=actions)
    rows = AutomationExecution.objects.bulk_create(
        AutomationExecution(
            tenant=tenant,
            automation_rule=rule,
            status="failed",
            error_message="boom",
            actions_total=len(actions),
            execution_context={"actions": actions},
        )
        for _ in range(n)
    )
    return [str(r.pk) for r in rows]


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_draining_while_workers_are_killed_loses_nothing(
    handler_calls, acme, worker_process, wait_until, capsys, monkeypatch
):
    tenant, actor = acme
    ids = failed_automations(
        tenant,
        2000,
        [
            # `counter` without a key counts per execution (its key is the execution's id).
            {"handler": "counter"},
            {"handler": "sleep", "params": {"seconds": 0.02}},
        ],
    )
    # Tasks of 25 executions (not 250): 80 tasks, work for every kill below to cut short.
    monkeypatch.setattr(automations_retry, "TASK_BATCH", 25)
    services.retry_many(actor, {"filter": filters.parse({"kind": "automation"})})

    keeper = worker_process(lease_seconds=2)  # never killed: its reaper fails what the killed lose
    victims = [worker_process(lease_seconds=2, args=("--no-reaper",)) for _ in range(2)]

    def holding_attempts():
        running = AutomationExecution.objects.filter(status="running")
        return next(
            (v for v in victims if running.filter(lease_owner__contains=f":{v.pid}:").exists()),
            None,
        )

    kills = 0
    while kills < 10:
        # A worker holding attempts, killed at a different moment of its batch each time.
        victim = wait_until(
            holding_attempts, timeout=60, message="a worker to be running something"
        )
        time.sleep(0.05 * kills)
        assert victim.kill() == -9
        kills += 1
        victims[victims.index(victim)] = worker_process(lease_seconds=2, args=("--no-reaper",))
    wait_until(
        lambda: not AutomationExecution.objects.filter(status__in=["pending", "running"]).exists(),
        timeout=120,
        message="every execution to be final",
    )
    # The killed workers' tasks too: failed as lost and replaced by a fresh task, run (a no-op for
    # what the dead worker had claimed), none left RUNNING.
    wait_until(
        lambda: not DBTaskResult.objects.exclude(status__in=["SUCCESSFUL", "FAILED"]).exists(),
        timeout=60,
        message="every queued task to be finished",
    )
    failed_tasks = DBTaskResult.objects.filter(status="FAILED")
    given_back = failed_tasks.filter(traceback__contains=heartbeats.GIVEN_BACK).count()
    assert given_back == failed_tasks.count()  # the only failed tasks are the replaced ones
    assert keeper.alive()

    final = dict.fromkeys(["completed", "failed"], 0)
    for status in AutomationExecution.objects.filter(pk__in=ids).values_list("status", flat=True):
        final[status] += 1
    lost = (
        AutomationExecution.objects.filter(pk__in=ids, status="failed")
        .exclude(error_message__startswith="worker lost")
        .count()
    )
    keys = {f"{pk}:0" for pk in ids}
    per_execution = Counter({key: n for key, n in handler_calls.counts().items() if key in keys})
    ran_then_lost = sum(1 for pk in ids if f"{pk}:0" in per_execution) - final["completed"]
    with capsys.disabled():
        print(
            f"\nkills: {kills}; completed: {final['completed']}; "
            f"failed as worker lost: {final['failed']}; handler calls: {per_execution.total()}; "
            f"ran but lost with a killed worker: {ran_then_lost}; "
            f"ran twice: {sum(1 for n in per_execution.values() if n > 1)}; "
            f"tasks given back from killed workers: {given_back}"
        )
    assert sum(final.values()) == len(ids) == 2000  # every one final, none lost
    assert lost == 0  # the only failures are the killed workers' attempts
    # Nothing ran twice; what ran without its result being recorded was cut off by a kill.
    assert max(per_execution.values()) == 1
    assert 0 <= ran_then_lost <= final["failed"]
    # Each kill cut a batch short (unless the worker finished it in the moment before): its task
    # was given back.
    assert final["failed"] > 0
    assert 0 < given_back <= kills


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_the_worker_reconnects_when_its_database_connections_are_terminated(
    acme, worker_process, wait_until
):
    tenant, actor = acme
    ids = failed_automations(tenant, 600, [{"handler": "sleep", "params": {"seconds": 0.01}}])
    services.retry_many(actor, {"filter": filters.parse({"kind": "automation"})})
    worker = worker_process(lease_seconds=2)
    wait_until(
        lambda: AutomationExecution.objects.filter(status="completed").exists(),
        timeout=60,
        message="the drain to start",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    wait_until(
        lambda: (
            not AutomationExecution.objects.filter(
                pk__in=ids, status__in=["pending", "running"]
            ).exists()
        ),
        timeout=120,
        message="the drain to finish",
    )
    assert worker.alive(), worker.output()
    statuses = set(AutomationExecution.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses <= {"completed", "failed"}
    assert AutomationExecution.objects.filter(pk__in=ids).count() == 600


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_bulk_retries_retry_every_item_once(acme, monkeypatch, settings):
    tenant, actor = acme
    failed_automations(tenant, 5000, [{"handler": "noop"}])
    # Ten batches each, two connections per bulk retry: four transactions locking at once.
    monkeypatch.setattr(services, "BULK_BATCH", 500)
    settings.REDRIVE_BULK_CONNECTIONS = 2
    selection = {"filter": filters.parse({"kind": "automation"})}
    results = []

    def bulk() -> None:
        try:
            results.append(services.retry_many(actor, selection))
        finally:
            connection.close()

    threads = [threading.Thread(target=bulk) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert sum(r.done for r in results) == 5000
    assert AutomationExecution.objects.filter(status="pending", attempt=2).count() == 5000
    assert Attempt.objects.count() == sum(len(retried_in(r)) for r in results) == 5000


@pytest.mark.django_db(transaction=True)
def test_a_retry_runs_end_to_end_on_the_rq_backend(acme, redis_url):
    import redis

    tenant, _ = acme
    rule = AutomationRule.objects.create(tenant=tenant, name="rq", actions=[{"handler": "flaky"}])
    execution = AutomationExecution.objects.create(
        tenant=tenant,
        automation_rule=rule,
        status="failed",
        actions_total=1,
        execution_context={"actions": rule.actions},
        error_message="boom",
    )
    env = worker_env(env={"REDRIVE_TASKS": "rq", "REDIS_URL": redis_url})

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    manage("retry", "automation", str(execution.pk), "--tenant", "acme", "--user", "alice")
    execution.refresh_from_db()
    assert execution.status == "pending"
    assert redis.Redis.from_url(redis_url).llen("rq:queue:default") == 1  # queued in Redis

    manage("worker", "--batch")

    execution.refresh_from_db()
    assert (execution.status, execution.attempt) == ("completed", 2)


# Kills the work-horse once, as its task starts, before the task claimed anything.
DIE_ONCE_AS_THE_TASK_STARTS = """
import pathlib
from executions.kinds.automations import run as automations_run
marker = pathlib.Path(os.environ["REDRIVE_TEST_MARKER"])
run = automations_run.execute
def die_once(ids):
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return run(ids)
automations_run.execute = die_once
"""


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
def test_with_rq_a_job_whose_work_horse_died_runs_again(
    handler_calls, acme, run_worker, tmp_path, redis_url
):
    import redis

    tenant, _ = acme
    ids = failed_automations(tenant, 3, [{"handler": "counter"}])
    env = {"REDRIVE_TASKS": "rq", "REDIS_URL": redis_url}
    subprocess.run(
        [sys.executable, "manage.py", "retry", "automation", *ids, "--tenant", "acme"]
        + ["--user", "alice"],
        cwd=ROOT,
        env=worker_env(env=env),
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert redis.Redis.from_url(redis_url).llen("rq:queue:default") == 3  # queued in Redis

    marker = tmp_path / "died"
    output = run_worker(
        env={**env, "REDRIVE_TEST_MARKER": str(marker)}, hook=DIE_ONCE_AS_THE_TASK_STARTS
    )

    assert marker.exists()  # the horse did die
    assert "Work-horse terminated unexpectedly" in output
    assert set(AutomationExecution.objects.values_list("status", flat=True)) == {"completed"}
    assert handler_calls.counts() == Counter(f"{pk}:0" for pk in ids)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_the_fingerprint_normaliser_takes_any_string(text):
    normalised = normalise(text)
    assert isinstance(normalised, str) and len(normalised) <= 3000
    assert len(fingerprint("job", "h", "E", text)) == 16
    # The same failure with other numbers and ids is the same fingerprint.
    assert fingerprint("job", "h", "E", f"{text} id 42") == fingerprint(
        "job", "h", "E", f"{text} id 7"
    )


_FILTER_KEYS = st.sampled_from(
    ["kind", "status", "since", "until", "range", "q", "name", "fingerprint", "other"]
)
_FILTER_VALUES = st.one_of(
    st.text(max_size=300),
    st.lists(st.text(max_size=50), max_size=3),
    st.integers(),
    st.none(),
    st.booleans(),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_FILTER_KEYS, _FILTER_VALUES, max_size=6))
def test_the_filter_parser_gives_a_filter_or_a_clear_error(data):
    try:
        flt = filters.parse(data)
    except InvalidInput as exc:
        assert exc.field and exc.message
    else:
        assert set(flt.kinds) <= set(kinds.names())


def test_filter_parser_rejects_non_objects():
    for bad in ([], "kind=job", 3):
        with pytest.raises(InvalidInput):
            filters.parse(bad)


def test_the_deployment_check_is_clean_with_production_settings():
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; production would not.
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "redrive.example.com",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
