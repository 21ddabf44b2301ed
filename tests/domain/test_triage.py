"""Triage (executions/triage.py): a failure is open until a retry in its chain (or its own record)
succeeds, resolved in the same transaction; operators ignore one failure or a whole group, until
it happens again or until a date; a resolved or ignored fingerprint failing again regresses; new
groups and regressions are outbox events; all audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from executions import filters, selectors, services, triage
from executions.errors import InvalidInput, NotFound, PermissionDenied
from executions.models import AuditEvent, FailureGroup, OutboxEvent

from .conftest import KINDS, MODELS, Items, options


def state_of(kind: str, pk) -> str:
    return MODELS[kind].objects.values_list("triage", flat=True).get(pk=pk)


def listed(tenant, state: str) -> set[str]:
    page = selectors.inbox(tenant, filters.parse({"state": state}), limit=200)
    return {row.key for row in page.rows}


@pytest.mark.django_db(transaction=True)
def test_a_successful_retry_resolves_its_chain_in_every_kind(admin, items, run_worker):
    failed = {kind: items.failed(kind) for kind in KINDS}  # flaky: fails once, then succeeds
    assert {k: state_of(k, pk) for k, pk in failed.items()} == dict.fromkeys(KINDS, "open")
    assert listed(admin.tenant, "open") == {f"{k}:{pk}" for k, pk in failed.items()}
    for kind, pk in failed.items():
        services.retry_one(admin, kind, pk, **options(admin, kind))

    run_worker()

    assert {k: state_of(k, pk) for k, pk in failed.items()} == dict.fromkeys(KINDS, "resolved")
    assert listed(admin.tenant, "open") == set()
    assert listed(admin.tenant, "resolved") == {f"{k}:{pk}" for k, pk in failed.items()}
    resolved = AuditEvent.objects.filter(action="resolve", source="worker")
    assert sorted(resolved.values_list("kind", "target_id")) == sorted(
        (k, str(pk)) for k, pk in failed.items()
    )
    # It reads as what happened to the failure: failed -> resolved.
    assert {(e.status_before, e.status_after) for e in resolved} == {
        ("failed", "resolved"),
        ("failure", "resolved"),  # a run's own word (a clone keeps its failed status)
    }


@pytest.mark.django_db
def test_a_later_retry_in_the_chain_resolves_the_first_failure(admin, items):
    from executions.kinds.jobs import run as jobs_run

    first = items.failed("job", failures=2)  # fails twice, then succeeds
    second = services.retry_job(admin, first).new_id
    jobs_run.execute(second, "test-host")
    assert (state_of("job", first), state_of("job", second)) == ("open", "open")
    third = services.retry_job(admin, second).new_id
    jobs_run.execute(third, "test-host")

    assert (state_of("job", first), state_of("job", second)) == ("resolved", "resolved")
    page = selectors.inbox(admin.tenant, filters.parse({"state": "resolved"}))
    rows = {row.id: row for row in page.rows}
    assert rows[str(first)].chain == "retried → success"


@pytest.mark.django_db
def test_a_failed_retry_leaves_its_chain_open(admin, items):
    from executions.kinds.jobs import run as jobs_run

    first = items.failed("job", failures=5)
    second = services.retry_job(admin, first).new_id
    jobs_run.execute(second, "test-host")
    assert (state_of("job", first), state_of("job", second)) == ("open", "open")
    row = next(r for r in selectors.inbox(admin.tenant, filters.parse({})).rows if r.id == first)
    assert row.chain == "retried → failed again"


@pytest.mark.django_db
def test_ignoring_one_failure_hides_it_until_its_fingerprint_fails_again(admin, items):
    one, two = items.failed("job", handler="fail"), items.failed("job", handler="fail")
    triage.ignore(admin, "job", one, reason="known outage")

    assert listed(admin.tenant, "open") == {f"job:{two}"}
    assert listed(admin.tenant, "ignored") == {f"job:{one}"}
    assert listed(admin.tenant, "all") == {f"job:{one}", f"job:{two}"}
    audit = AuditEvent.objects.get(action="ignore")
    assert (audit.target_id, audit.details) == (
        str(one),
        {"state": "ignored", "reason": "known outage", "until": "again"},
    )

    three = items.failed("job", handler="fail")  # the same fingerprint happens again

    assert state_of("job", one) == "open"
    assert listed(admin.tenant, "open") == {f"job:{one}", f"job:{two}", f"job:{three}"}


@pytest.mark.django_db
def test_ignoring_a_group_until_a_date_keeps_its_new_failures_ignored(admin, items):
    one = items.failed("job", handler="fail")
    fp = MODELS["job"].objects.get(pk=one).fingerprint
    until = timezone.now() + timedelta(days=1)
    assert triage.ignore_group(admin, fp, reason="maintenance", until=until) == 1

    two = items.failed("job", handler="fail")

    assert (state_of("job", one), state_of("job", two)) == ("ignored", "ignored")
    assert FailureGroup.objects.get(fingerprint=fp).state == "ignored"
    assert not OutboxEvent.objects.filter(name="failure.regressed").exists()


@pytest.mark.django_db
def test_an_ignored_group_that_fails_again_regresses(admin, items):
    one = items.failed("job", handler="fail")
    fp = MODELS["job"].objects.get(pk=one).fingerprint
    triage.ignore_group(admin, fp)

    two = items.failed("job", handler="fail")

    assert (state_of("job", one), state_of("job", two)) == ("open", "regressed")
    group = FailureGroup.objects.get(fingerprint=fp)
    assert (group.state, group.regressed_at is not None) == ("open", True)
    event = OutboxEvent.objects.get(name="failure.regressed")
    assert event.payload == {
        "kind": "job",
        "name": "package.install",
        "fingerprint": fp,
        "executionId": str(two),
        "message": MODELS["job"].objects.get(pk=two).error_message,
        "tenantId": str(admin.tenant.pk),
    }
    assert AuditEvent.objects.filter(action="regressed", target_id=str(two)).exists()
    assert listed(admin.tenant, "open") == {f"job:{one}", f"job:{two}"}


@pytest.mark.django_db
def test_a_resolved_group_that_fails_again_regresses(admin, items):
    from executions.kinds.jobs import run as jobs_run

    first = items.failed("job")
    fp = MODELS["job"].objects.get(pk=first).fingerprint
    jobs_run.execute(services.retry_job(admin, first).new_id, "test-host")
    assert FailureGroup.objects.get(fingerprint=fp).state == "resolved"

    again = items.failed("job")

    assert state_of("job", again) == "regressed"
    assert OutboxEvent.objects.filter(name="failure.regressed").count() == 1


@pytest.mark.django_db
def test_a_new_fingerprint_emits_one_new_group_event(admin, items):
    one = items.failed("job", handler="fail")
    items.failed("job", handler="fail")
    items.failed("run", handler="fail")  # the same error in another kind: the same group
    items.failed("run")  # another error: a new group

    events = OutboxEvent.objects.filter(name="failure.new_group").order_by("pk")
    assert [e.payload["kind"] for e in events] == ["job", "run"]
    assert events[0].payload["executionId"] == str(one)
    assert set(events[0].payload) >= {
        "kind",
        "name",
        "fingerprint",
        "executionId",
        "message",
        "tenantId",
    }


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_failure_emits_nothing(admin):
    items = Items(admin.tenant)
    with pytest.raises(RuntimeError), transaction.atomic():
        items.failed("job", handler="fail")
        assert OutboxEvent.objects.filter(name="failure.new_group").exists()
        raise RuntimeError("roll back")
    assert not OutboxEvent.objects.exists()
    assert not FailureGroup.objects.exists()


@pytest.mark.django_db
def test_reopen_opens_an_ignored_failure_and_group_again(admin, items):
    one = items.failed("job", handler="fail")
    fp = MODELS["job"].objects.get(pk=one).fingerprint
    triage.ignore(admin, "job", one)
    triage.reopen(admin, "job", one)
    assert state_of("job", one) == "open"
    triage.ignore_group(admin, fp)
    assert triage.reopen_group(admin, fp) == 1
    assert state_of("job", one) == "open"
    assert FailureGroup.objects.get(fingerprint=fp).state == "open"
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["ignore", "reopen", "ignore_group", "reopen_group"]


@pytest.mark.django_db
def test_viewers_cannot_and_other_tenants_see_nothing(admin, viewer, operator, items, other_tenant):
    one = items.failed("job", handler="fail")
    fp = MODELS["job"].objects.get(pk=one).fingerprint
    with pytest.raises(PermissionDenied):
        triage.ignore(viewer, "job", one)
    with pytest.raises(PermissionDenied):
        triage.ignore_group(viewer, fp)
    assert state_of("job", one) == "open"
    triage.ignore(operator, "job", one)  # operators may

    foreign = Items(other_tenant).failed("job", handler="fail")
    with pytest.raises(NotFound):
        triage.ignore(admin, "job", foreign)
    with pytest.raises(NotFound):
        triage.ignore_group(admin, "0123456789abcdef")
    assert state_of("job", foreign) == "open"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"until": "tomorrow"}, "until"),
        ({"until": "2001-01-01T00:00:00Z"}, "until"),
        ({"until": 5}, "until"),
        ({"reason": ["x"]}, "reason"),
        ({"reason": "x" * 1001}, "reason"),
        ([], "body"),
    ],
)
def test_bad_ignore_bodies_name_their_field(body, field):
    with pytest.raises(InvalidInput) as bad:
        triage.parse_ignore(body)
    assert bad.value.field == field


def test_a_bad_state_names_state():
    with pytest.raises(InvalidInput) as bad:
        filters.parse({"state": "closed"})
    assert bad.value.field == "state"
    assert filters.parse({}).state == "open"


@pytest.mark.django_db
def test_counts_chart_and_groups_follow_the_state(admin, items):
    one, two = items.failed("job", handler="fail"), items.failed("run")  # two errors
    fp = MODELS["job"].objects.get(pk=one).fingerprint
    triage.ignore_group(admin, fp)
    since = {"since": (timezone.now() - timedelta(hours=3)).isoformat()}  # whole hours: the rollup

    def seen(state: str):
        flt = filters.parse({**since, "state": state})
        count, _ = selectors.matching_count(admin.tenant, flt)
        chart = selectors.failures_over_time(admin.tenant, flt).total
        groups = {g.fingerprint for g in selectors.group_by_fingerprint(admin.tenant, flt)}
        return count, chart, groups

    run_fp = MODELS["run"].objects.get(pk=two).fingerprint
    assert seen("open") == (1, 1, {run_fp})
    assert seen("ignored") == (1, 1, {fp})
    assert seen("all") == (2, 2, {fp, run_fp})
    assert seen("resolved") == (0, 0, set())


@pytest.mark.django_db
def test_an_ignore_until_a_date_ends_on_time_without_a_new_failure(admin, items):
    """The reaper round opens failures and groups ignored until a date once it passes: not a
    regression (nothing failed again), audited as reopened by "redrive"."""
    from executions.management.commands.worker import reaper_round

    one, two = items.failed("job", handler="fail"), items.failed("job", handler="fail")
    fp = MODELS["job"].objects.get(pk=one).fingerprint
    later = items.failed("run")  # another error, ignored until a later date
    until = timezone.now() + timedelta(days=1)
    triage.ignore_group(admin, fp, reason="maintenance", until=until)
    triage.ignore(admin, "run", later, until=until + timedelta(days=1))
    reaper_round(["default"])
    assert {state_of("job", one), state_of("job", two)} == {"ignored"}

    # A day passes (the stored dates move back a day and a minute, as the clock would move on).
    passed = timedelta(days=1, minutes=1)
    for model in (MODELS["job"], MODELS["run"]):
        model.objects.filter(triage="ignored").update(triage_until=F("triage_until") - passed)
    FailureGroup.objects.filter(fingerprint=fp).update(until=F("until") - passed)
    reaper_round(["default"])

    assert (state_of("job", one), state_of("job", two)) == ("open", "open")
    assert state_of("run", later) == "ignored"  # its date is still to come
    group = FailureGroup.objects.get(fingerprint=fp)
    assert (group.state, group.until, group.regressed_at) == ("open", None, None)
    assert listed(admin.tenant, "open") == {f"job:{one}", f"job:{two}"}
    assert not OutboxEvent.objects.filter(name="failure.regressed").exists()
    reopened = AuditEvent.objects.filter(actor="redrive", source="worker")
    assert sorted(reopened.values_list("action", "target_id", "status_before", "status_after")) == [
        *sorted([("reopen", str(one), "ignored", "open"), ("reopen", str(two), "ignored", "open")]),
        ("reopen_group", fp, "ignored", "open"),
    ]
    assert reopened.get(action="reopen_group").details["reason"] == "maintenance"

    reaper_round(["default"])  # nothing left to open: nothing more audited
    assert reopened.count() == 3


@pytest.mark.django_db
def test_a_group_first_seen_in_one_kind_regresses_in_every_kind(admin, items):
    """A group spans kinds: a failure of another kind than the group's first ends the ignores
    of the group's failures in every kind, and an ignore until a date keeps it ignored."""
    job = items.failed("job", handler="fail")
    fp = MODELS["job"].objects.get(pk=job).fingerprint
    run = items.failed("run", handler="fail")
    assert FailureGroup.objects.get(fingerprint=fp).kind == "job"

    triage.ignore(admin, "job", job)  # one failure, until it happens again
    items.failed("run", handler="fail")
    assert state_of("job", job) == "open"

    triage.ignore_group(admin, fp)  # the whole group, until it happens again
    regressed = items.failed("run", handler="fail")
    assert (state_of("job", job), state_of("run", run)) == ("open", "open")
    assert state_of("run", regressed) == "regressed"
    assert FailureGroup.objects.get(fingerprint=fp).state == "open"

    triage.ignore_group(admin, fp, until=timezone.now() + timedelta(days=1))
    quiet = items.failed("run", handler="fail")
    assert {state_of("job", job), state_of("run", run), state_of("run", quiet)} == {"ignored"}


def rebuild_groups(rows: bool) -> None:
    """Migration 0025's data migration, as `migrate` runs it (`rows`: its row-by-row form, for
    databases other than PostgreSQL)."""
    from importlib import import_module
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = import_module("executions.migrations.0025_rebuild_failure_groups")
    # It only runs statements on the editor's connection; SQLite refuses a real schema editor
    # inside the test's transaction.
    editor = SimpleNamespace(connection=connection)
    (migration._rebuild_rows if rows else migration.rebuild)(apps, editor)


@pytest.mark.parametrize("rows", [False, True], ids=["set-based", "row-by-row"])
@pytest.mark.django_db
def test_groups_keyed_by_old_fingerprints_are_rebuilt_for_the_current_ones(admin, items, rows):
    """After 0023 recomputed the fingerprints, each group is rebuilt for its current fingerprint
    from its failures' state (an ignore that still applies, with its reason), stale keys go, and
    running it again changes nothing."""
    ignored = items.failed("job", handler="fail")
    fp = MODELS["job"].objects.get(pk=ignored).fingerprint
    until = timezone.now() + timedelta(days=1)
    triage.ignore_group(admin, fp, reason="vendor outage", until=until)
    open_run = items.failed("run")  # another error, open
    open_fp = MODELS["run"].objects.get(pk=open_run).fingerprint
    again = items.failed("function", handler="fail", error="http_502")
    again_fp = MODELS["function"].objects.get(pk=again).fingerprint
    triage.ignore_group(admin, again_fp)  # until it happens again
    assert len({fp, open_fp, again_fp}) == 3
    # As 0023 left them: each group under the fingerprint its failures had before.
    for n, key in enumerate((fp, open_fp, again_fp)):
        FailureGroup.objects.filter(fingerprint=key).update(fingerprint=f"{n:016x}")

    rebuild_groups(rows)

    groups = FailureGroup.objects.filter(tenant=admin.tenant)
    rows = sorted(groups.values_list("fingerprint", "state", "until", "reason"))
    assert rows == sorted(
        [
            (fp, "ignored", until, "vendor outage"),
            (open_fp, "open", None, ""),
            (again_fp, "ignored", None, ""),
        ]
    )
    assert FailureGroup.objects.get(fingerprint=open_fp).kind == "run"
    rebuild_groups(rows)
    assert sorted(groups.values_list("fingerprint", "state", "until", "reason")) == rows

    # The ignore applies again: the group's next failure joins it, no new group, no regression.
    later = items.failed("job", handler="fail")
    assert state_of("job", later) == "ignored"
    assert not OutboxEvent.objects.filter(name="failure.regressed").exists()
    assert OutboxEvent.objects.filter(name="failure.new_group").count() == 3


@pytest.mark.django_db
def test_a_group_stays_open_while_another_kind_has_an_open_failure(admin, items):
    """Resolving a group's failures in one kind leaves it open while another kind's are open:
    their next failure is no regression."""
    from executions.kinds.jobs import run as jobs_run

    job, run = items.failed("job"), items.failed("run")  # the same error (flaky), two kinds
    fp = MODELS["job"].objects.get(pk=job).fingerprint
    assert MODELS["run"].objects.get(pk=run).fingerprint == fp
    jobs_run.execute(services.retry_job(admin, job).new_id, "test-host")
    assert (state_of("job", job), state_of("run", run)) == ("resolved", "open")
    assert FailureGroup.objects.get(fingerprint=fp).state == "open"

    again = items.failed("run")
    assert state_of("run", again) == "open"
    assert not OutboxEvent.objects.filter(name="failure.regressed").exists()
