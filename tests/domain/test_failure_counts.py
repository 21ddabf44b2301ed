"""The failure-count rollup (FailureCount, kept by PostgreSQL triggers) always equals counting the
failed rows themselves, whatever wrote them, and the console's error groups and chart read from it
give what counting the rows gives."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import F, Q, TextField
from django.db.models.functions import Cast, Trunc
from django.utils import timezone

from executions import demo, failure_counts, filters, kinds, selectors, services
from executions.models import (
    AutomationExecution,
    FailureCount,
    FunctionExecution,
    Job,
    Run,
    Tenant,
    WorkflowExecution,
)
from executions.tenancy import Actor

pytestmark = pytest.mark.pg_only

SOURCES = {
    "function": (FunctionExecution, "function_id"),
    "automation": (AutomationExecution, "automation_rule_id"),
    "job": (Job, "operation_type"),
    "workflow": (WorkflowExecution, "workflow_id"),
    "run": (Run, "workflow_id"),
}


def counted_rows() -> Counter:
    """What the rollup should hold: the failed rows grouped by its key, counted one by one."""
    expected: Counter = Counter()
    for kind, (model, source) in SOURCES.items():
        meta = kinds.get(kind)
        # Failed rows, and records resolved by their own success (triage: by state too).
        rows = (
            model.objects.filter(Q(status__in=meta.failed_statuses) | Q(triage="resolved"))
            .annotate(
                src=Cast(source, output_field=TextField()),
                hour=Trunc(meta.time_field, "hour", tzinfo=timezone.UTC),
            )
            .values_list("tenant_id", "status", "triage", "fingerprint", "src", "hour")
        )
        for tenant_id, status, state, fp, src, hour in rows:
            state = "open" if state == "regressed" else state
            expected[(tenant_id, kind, status, state, fp, str(src), hour)] += 1
    return expected


def rollup() -> Counter:
    failure_counts.fold()
    held: Counter = Counter()
    for row in FailureCount.objects.exclude(n=0).values_list(
        "tenant_id", "kind", "status", "state", "fingerprint", "source", "bucket", "n"
    ):
        held[row[:-1]] += row[-1]
    return held


@pytest.fixture
def alice(manifest) -> Actor:
    from django.contrib.auth.models import User

    tenant = Tenant.objects.get(slug="acme")
    return Actor.for_user(User.objects.get(username="alice"), tenant, source="cli")


def test_the_rollup_follows_every_way_failures_are_written(alice) -> None:
    demo.scale(400)
    assert rollup() == counted_rows()
    assert sum(rollup().values()) > 2000

    # A bulk retry (set-based UPDATE), a single retry of each cloning kind, a bulk retry of runs.
    services.retry_many(alice, {"filter": filters.parse({"kind": "automation", "state": "all"})})
    job = Job.objects.filter(tenant=alice.tenant, status="failed").first()
    services.retry_job(alice, str(job.pk))
    services.retry_many(alice, {"filter": filters.parse({"kind": "run", "state": "all"})})
    assert not AutomationExecution.objects.filter(tenant=alice.tenant, status="failed").exists()
    assert rollup() == counted_rows()

    # Rows moving between hours, statuses and fingerprints, failing again, and deleted.
    now = timezone.now()
    WorkflowExecution.objects.filter(status="FAILED").update(
        updated_at=F("updated_at") - timedelta(minutes=45)
    )
    first = list(
        FunctionExecution.objects.filter(status="failed").values_list("pk", flat=True)[:50]
    )
    FunctionExecution.objects.filter(pk__in=first[:25]).update(status="timeout")
    FunctionExecution.objects.filter(pk__in=first[25:]).update(fingerprint="0123456789abcdef")
    AutomationExecution.objects.filter(tenant=alice.tenant, status="pending").update(
        status="failed", updated_at=now
    )
    Job.objects.filter(status="failed", tenant__slug="globex").delete()
    assert rollup() == counted_rows()


def _groups(tenant, flt) -> list[tuple]:
    return [
        (g.fingerprint, g.count, tuple(sorted(g.kinds.items())), g.first_seen, g.last_seen)
        for g in selectors.group_by_fingerprint(tenant, flt, limit=1000)
    ]


def _chart(tenant, flt, now) -> list[tuple]:
    series = selectors.failures_over_time(tenant, flt, now=now)
    return [(b.start, tuple(sorted(b.counts.items()))) for b in series.buckets]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"kind": "automation"},
        {"kind": ["function", "run"], "status": "failed"},
        {"status": "timeout"},
        {"fingerprint": "FP"},  # replaced by a real one
        {"range": "24h"},
        {"range": "7d"},
        {"since": "-30h", "until": "-2h"},  # neither edge on the hour
        {"since": "-5h", "until": "-5h+20m"},  # within an hour: the rows answer
        {"name": "charge-card"},  # a function
        {"name": "Enrich new lead", "range": "7d"},  # an automation rule
        {"name": "stock-sync"},  # a workflow
        {"name": "wf_lead_enrichment", "kind": "run"},
    ],
)
def test_groups_and_chart_from_the_rollup_equal_counting_the_rows(
    alice, monkeypatch, query
) -> None:
    demo.scale(300)
    now = timezone.now()
    data = {}
    for key, value in query.items():
        if key in ("since", "until"):
            hours, _, minutes = value.partition("+")
            when = now + timedelta(hours=int(hours[:-1]))
            if minutes:
                when += timedelta(minutes=int(minutes[:-1]))
            value = when.isoformat()
        data[key] = value
    tenant = alice.tenant
    if "fingerprint" in data:
        data["fingerprint"] = (
            FunctionExecution.objects.filter(tenant=tenant, status="failed").first().fingerprint
        )
    flt = filters.parse(data)
    if flt.since and flt.until:
        # at least one failure inside a short window, whatever the random times gave
        FunctionExecution.objects.filter(
            pk=FunctionExecution.objects.filter(tenant=tenant, status="failed").first().pk
        ).update(executed_at=flt.since + (flt.until - flt.since) / 2)

    from_rollup = (
        _groups(tenant, flt),
        _chart(tenant, flt, now),
        selectors.matching_count(tenant, flt, cap=10**6),
    )
    monkeypatch.setattr(selectors.rollup, "counted", lambda tenant, flt: (None, [flt]))
    from_rows = (
        _groups(tenant, flt),
        _chart(tenant, flt, now),
        selectors.matching_count(tenant, flt, cap=10**6),
    )

    assert from_rollup == from_rows
    assert from_rows[0], "the filter should match some failures"


def test_a_tenant_sees_only_its_own_counts(alice) -> None:
    demo.scale(200)
    globex = Tenant.objects.get(slug="globex")
    mine = selectors.group_by_fingerprint(alice.tenant, filters.parse({"state": "all"}), limit=1000)
    theirs = selectors.group_by_fingerprint(globex, filters.parse({"state": "all"}), limit=1000)
    assert sum(g.count for g in mine) == sum(
        kinds.get(k)
        .model.objects.filter(tenant=alice.tenant, status__in=kinds.get(k).failed_statuses)
        .count()
        for k in kinds.names()
    )
    assert sum(g.count for g in theirs) == sum(
        kinds.get(k)
        .model.objects.filter(tenant=globex, status__in=kinds.get(k).failed_statuses)
        .count()
        for k in kinds.names()
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_folds_lose_no_count(alice) -> None:
    """Workers failing items, bulk retries and console reads folding at the same time: every
    change is counted exactly once (appends never wait on each other; a fold takes each delta
    once)."""
    import threading

    from django.db import connection

    from tests.domain.test_bulk import failed_rows

    errors: list[BaseException] = []

    def fail_more(i: int) -> None:
        try:
            for _ in range(10):
                failed_rows(alice.tenant, "automation", 20)
                failure_counts.fold()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def retry_and_fold() -> None:
        try:
            for _ in range(5):
                services.retry_many(
                    alice, {"filter": filters.parse({"kind": "automation", "state": "all"})}
                )
                failure_counts.fold()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fail_more, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=retry_and_fold) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert rollup() == counted_rows()
    assert AutomationExecution.objects.filter(tenant=alice.tenant).count() >= 600
