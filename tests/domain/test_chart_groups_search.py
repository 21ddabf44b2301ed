"""Issue 20's chart, groups and search, as data: buckets that fit the window and cover it, one
group per error across kinds and names, and one search box for ids and error text (the console
and GET /api/failures read the same selectors)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from executions import filters, kinds, selectors
from executions.fingerprints import fingerprint
from executions.kinds.base import KindSpec
from executions.models import FunctionExecution, Job, Membership, Role, Run
from tests.domain.conftest import KINDS, Items

pytestmark = pytest.mark.django_db


def move(kind: str, pk, when) -> None:
    """Set when an item failed (its kind's time field)."""
    meta: KindSpec = kinds.get(kind)
    meta.model.objects.filter(pk=pk).update(**{meta.time_field: when})


def chart(tenant, query: dict, now=None):
    return selectors.failures_over_time(tenant, filters.parse(query), now=now)


# --- the chart -----------------------------------------------------------------------------------


def test_the_last_hour_is_charted_per_minute(tenant, items: Items) -> None:
    now = timezone.now()
    pk = items.failed("job")
    move("job", pk, now - timedelta(minutes=10))
    series = chart(tenant, {"range": "1h"}, now=now)
    assert series.unit == "minute"
    assert 60 <= len(series.buckets) <= 61
    (hit,) = [b for b in series.buckets if b.total]
    assert hit.start == (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
    assert hit.counts == {"job": 1} and series.total == 1


@pytest.mark.parametrize(
    ("query", "unit", "bars"), [({"range": "24h"}, "hour", 24), ({"range": "30d"}, "day", 30)]
)
def test_a_day_is_charted_per_hour_and_a_month_per_day(tenant, items, query, unit, bars) -> None:
    now = timezone.now()
    pk = items.failed("function")
    move("function", pk, now - timedelta(hours=20))
    series = chart(tenant, query, now=now)
    assert series.unit == unit
    assert bars <= len(series.buckets) <= bars + 1
    assert series.total == 1
    assert (
        series.buckets[0].start
        <= series.start
        < series.buckets[0].start + (timedelta(hours=1) if unit == "hour" else timedelta(days=1))
    )


def test_any_time_charts_from_the_first_failure(tenant, items, other_tenant) -> None:
    now = timezone.now()
    old, recent = items.failed("automation"), items.failed("run")
    move("automation", old, now - timedelta(days=12, hours=3))
    move("run", recent, now - timedelta(minutes=5))
    foreign = Items(other_tenant).failed("job")  # another tenant's older failure: not ours
    move("job", foreign, now - timedelta(days=60))

    series = chart(tenant, {}, now=now)
    assert series.unit == "day"
    assert series.start == now - timedelta(days=12, hours=3)
    assert series.total == 2  # not 24 hours of it: the whole window
    assert 13 <= len(series.buckets) <= 14

    # Nothing failed yet: the last 24 hours, per hour.
    empty = chart(other_tenant, {"kind": "function"}, now=now)
    assert (empty.unit, empty.total) == ("hour", 0)
    assert empty.start == now - timedelta(hours=24)


def test_the_chart_label_says_what_it_counts(tenant, items, admin) -> None:
    move("job", items.failed("job"), timezone.now() - timedelta(minutes=3))
    client = Client()
    client.force_login(admin.user)
    page = client.get("/chart/", {"range": "1h"}).content.decode()
    caption = page.split("<figcaption>")[1].split("</figcaption>")[0]
    assert "<strong>1</strong> failure from " in caption and "one bar per minute" in caption
    assert "per hour" not in caption
    assert page.count("<title>") == len(chart(tenant, {"range": "1h"}).buckets)
    daily = client.get("/chart/", {"range": "30d"}).content.decode()
    assert "one bar per day" in daily


# --- groups --------------------------------------------------------------------------------------


def test_the_same_error_is_one_group_across_kinds_and_names(tenant, items) -> None:
    for kind in KINDS:
        items.failed(kind)  # the flaky handler: "connection reset by peer (attempt 1; ...)"
    # A second function of another name failing the same way.
    from executions.kinds.functions import run as functions_run
    from executions.models import Function

    other = Function.objects.create(tenant=tenant, name="charge-card", handler="flaky", params={})
    functions_run.invoke_function(other, {}, queued=False)

    (group,) = selectors.group_by_fingerprint(tenant, filters.parse({}))
    assert group.count == 6
    assert set(group.kinds) == set(KINDS) and group.kinds["function"] == 2
    assert {"fn-flaky", "charge-card"} <= group.names
    assert group.sample.startswith("connection reset by peer")
    # Drilling in (the group's link) lists all six, of every kind.
    rows = selectors.inbox(tenant, filters.parse({"fingerprint": group.fingerprint})).rows
    assert len(rows) == 6 and {r.kind for r in rows} == set(KINDS)


def test_the_fingerprint_is_the_message_not_where_it_happened() -> None:
    one = fingerprint("job", "package.install", "ConnectionResetError", "reset after 3 tries")
    assert one == fingerprint("run", "fetch", "UpstreamError", "reset after 12 tries")
    # Without a message, the kind, handler and error type still tell failures apart.
    assert fingerprint("job", "a", "E", "") != fingerprint("run", "a", "E", "")


def test_a_group_without_a_message_shows_the_failures_summary(tenant, items) -> None:
    pk = items.failed("run")
    Run.objects.filter(pk=pk).update(
        error_message="", summary="2 of 3 nodes failed", fingerprint="00000000000000aa"
    )
    groups = {g.fingerprint: g for g in selectors.group_by_fingerprint(tenant, filters.parse({}))}
    assert groups["00000000000000aa"].sample == "2 of 3 nodes failed"


# --- search --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_q_finds_any_kinds_item_by_its_id_or_a_prefix_of_it(tenant, items, other_tenant, kind):
    pk = str(items.failed(kind))
    items.failed(kind)  # another of the same kind: not found
    Items(other_tenant).failed(kind)
    # (Ids made in the same second share their first 8-12 characters: the prefixes are longer.)
    for q in (pk, pk[:22], pk.upper()[:21], pk.removeprefix("run_")[:20]):
        rows = selectors.inbox(tenant, filters.parse({"q": q})).rows
        assert [(r.kind, r.id) for r in rows] == [(kind, pk)], q
    six = selectors.inbox(tenant, filters.parse({"q": pk.removeprefix("run_")[:6]})).rows
    assert (kind, pk) in [(r.kind, r.id) for r in six]
    # Five characters are text to search, not an id.
    assert not selectors.inbox(tenant, filters.parse({"q": pk.removeprefix("run_")[:5]})).rows
    # Another tenant's id is no match.
    foreign = str(kinds.get(kind).model.objects.filter(tenant=other_tenant).first().pk)
    assert not selectors.inbox(tenant, filters.parse({"q": foreign})).rows


@pytest.mark.parametrize("start", ["facade", "deface-", "201612", "2016-12"])
def test_an_ids_start_without_a_letter_or_a_digit_finds_it_and_the_words_too(tenant, items, start):
    # About one uuid in 17 starts with six digits, one in 360 with six letters: both are found.
    job = Job.objects.get(pk=items.failed("job"))
    Job.objects.filter(pk=job.pk).update(error_message=f"mirror {start} unreachable")
    hex_start = start.replace("-", "")
    pk = uuid.UUID(hex_start + "0" * (32 - len(hex_start)))
    Job.objects.create(
        job_id=pk, tenant=tenant, operation_type="package.install", operation={}, status="failed"
    )
    items.failed("job")  # neither
    rows = selectors.inbox(tenant, filters.parse({"q": start.upper()})).rows
    assert sorted(r.id for r in rows) == sorted([str(job.pk), str(pk)])


def test_the_readmes_error_search_finds_the_words_in_any_order(tenant, items) -> None:
    now = timezone.now()
    job, run, function = items.failed("job"), items.failed("run"), items.failed("function")
    Job.objects.filter(pk=job).update(error_message="read timed out after 60s")
    Run.objects.filter(pk=run).update(error_message="fetch: Timed Out after 10s")
    FunctionExecution.objects.filter(pk=function).update(error_message="read timed out")
    for pk, kind in ((job, "job"), (run, "run")):
        move(kind, pk, now - timedelta(hours=2))
    # The README's example: curl '.../api/failures?kind=job,run&range=24h&q=timed+out'
    flt = filters.parse({"kind": "job,run", "range": "24h", "q": "timed out"})
    found = {(r.kind, r.id) for r in selectors.inbox(tenant, flt).rows}
    assert found == {("job", str(job)), ("run", run)}
    words = filters.parse({"q": "out TIMED   after"})
    assert {r.id for r in selectors.inbox(tenant, words).rows} == {str(job), run}


def test_the_name_filter_matches_part_of_a_name(tenant, items) -> None:
    items.failed("function")  # fn-flaky
    items.failed("job")  # package.install
    for name, kind in (("FLAKY", "function"), ("pack", "job"), ("install", "job")):
        flt = filters.parse({"name": name})
        assert {r.kind for r in selectors.inbox(tenant, flt).rows} == {kind}, name
        assert selectors.matching_count(tenant, flt) == (1, False), name
        (group,) = selectors.group_by_fingerprint(tenant, flt)
        assert group.count == 1


def test_the_api_searches_the_same(tenant, items, admin) -> None:
    pk = str(items.failed("job"))
    items.failed("job")
    Membership.objects.filter(user=admin.user).update(role=Role.ADMIN)
    client = Client()
    client.force_login(admin.user)
    body = client.get("/api/failures", {"q": pk[:23]}).json()
    assert [(i["kind"], i["id"]) for i in body["items"]] == [("job", pk)]
    by_name = client.get("/api/failures", {"name": "install"}).json()
    assert len(by_name["items"]) == 2


def test_six_digits_are_an_ids_start_or_a_number_in_the_text(tenant) -> None:
    import uuid

    def job(pk: str, message: str) -> str:
        return str(
            Job.objects.create(
                tenant=tenant,
                job_id=uuid.UUID(pk),
                operation={"type": "backup.run", "data": {}},
                operation_type="backup.run",
                status="failed",
                error_message=message,
            ).pk
        )

    by_id = job("12345678-1234-4234-8234-123456789abc", "disk full")
    by_text = job("abcdef00-1234-4234-8234-123456789abc", "quota 1234567 exceeded")
    job("fedcba00-1234-4234-8234-123456789abc", "disk full")
    for q, expected in (("123456", {by_id, by_text}), ("12345678-12", {by_id})):
        found = {r.id for r in selectors.inbox(tenant, filters.parse({"q": q})).rows}
        assert found == expected, q
