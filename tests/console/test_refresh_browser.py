"""The inbox refreshes itself: it polls how many failures matching its filter came since it was
rendered ("3 new failures — show"), and "show" reloads the list keeping the filter, the
selection and the scroll. Plus the workers page in a real browser."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from executions.models import AutomationExecution, Job, Tenant, WorkerHeartbeat
from tests.console import test_browser
from tests.console.conftest import failed_automation, failed_job
from tests.console.test_browser import shot, sign_in

NOW = timezone.now
browser, page = test_browser.browser, test_browser.page  # the browser tests' fixtures


def test_new_counts_only_failures_after_the_list_was_rendered_and_follows_the_filter(
    cast, login
) -> None:
    client = login("alice")
    after = (NOW() + timedelta(seconds=1)).isoformat()
    assert client.get("/new/", {"after": after}).content.strip() == b""
    future = NOW() + timedelta(minutes=1)
    # Two of acme's failures fail again later; globex's too, which acme never counts.
    AutomationExecution.objects.filter(pk__in=[cast.automation.pk, cast.foreign.pk]).update(
        updated_at=future
    )
    Job.objects.filter(pk=cast.job.pk).update(updated_at=future)
    answer = client.get("/new/", {"after": after}).content.decode()
    assert ">2 new failures — show</button>" in answer
    assert 'hx-get="/"' in answer
    only_automations = client.get("/new/", {"after": after, "kind": "automation"})
    assert ">1 new failure — show</button>" in only_automations.content.decode()
    assert 'hx-get="/?kind=automation"' in only_automations.content.decode()  # keeps the filter


def test_new_refuses_a_bad_after_or_filter_naming_the_field(cast, login) -> None:
    client = login("alice")
    for query, field in (
        ({}, "after"),
        ({"after": "yesterday"}, "after"),
        ({"after": NOW().isoformat(), "kind": "nope"}, "kind"),
    ):
        response = client.get("/new/", query)
        assert response.status_code == 400, query
        assert field in response.content.decode(), query


def test_new_asks_a_signed_in_user(client) -> None:
    response = client.get("/new/", {"after": NOW().isoformat()})
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_inbox_shows_new_failures_without_losing_selection_or_scroll(
    page, manifest, settings
) -> None:
    settings.REDRIVE_INBOX_POLL_SECONDS = 1
    sign_in(page, manifest, "alice")
    page.goto("/?kind=automation")
    rows = page.locator("tbody#rows tr.row")
    expect(rows.first).to_be_visible()
    before = rows.count()
    picked = page.locator('tbody#rows input[name="sel"]:not(:disabled)').nth(1)
    picked.check()
    picked_value = picked.get_attribute("value")
    expect(page.locator("#retry-selected")).to_have_text("Retry 1 selected")
    page.evaluate("window.scrollTo(0, 300)")
    page.wait_for_function("window.scrollY === 300")
    page.evaluate("window.__notReloaded = true")

    acme = Tenant.objects.get(slug="acme")
    for n in range(3):
        failed_automation(acme, f"Fresh failure {n}")
    failed_job(acme)  # another kind: the filter leaves it out

    notice = page.locator("#new-failures .new-show")
    expect(notice).to_have_text("3 new failures — show")
    assert page.evaluate("window.scrollY") == 300  # the notice moved nothing
    assert page.locator(f'input[name="sel"][value="{picked_value}"]').is_checked()
    shot(page, "inbox-new-failures.png")

    notice.click()
    expect(page.locator("tbody#rows tr.row td", has_text="Fresh failure")).to_have_count(3)
    expect(page).to_have_url(re.compile(r"/\?kind=automation$"))
    assert rows.count() == min(before + 3, 50)
    assert page.locator(f'input[name="sel"][value="{picked_value}"]').is_checked()
    expect(page.locator("#retry-selected")).to_have_text("Retry 1 selected")
    # "show" brings the new ones into view (the selection further down stays checked).
    expect(page.locator("tbody#rows tr.row td", has_text="Fresh failure").first).to_be_in_viewport()
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#new-failures .new-show")).to_have_count(0)  # counting from now on


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_workers_page_from_the_navigation_and_a_staff_pause(page, manifest) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="alice").update(is_staff=True)
    WorkerHeartbeat.objects.create(
        worker_id="w-1", hostname="web-1", pid=4242, queues=["default", "host-_any", "host-web-1"]
    )
    sign_in(page, manifest, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workers").click()
    expect(page).to_have_title("Workers and queues · Redrive")
    worker = page.locator("#workers tr.worker", has_text="web-1")
    expect(worker.locator(".current")).to_have_text("idle")
    expect(worker.locator(".asks")).to_have_text("default, host-_any, host-web-1")
    default = page.locator("#queue-default")
    expect(default.locator(".state .badge")).to_have_text("running")

    default.get_by_role("button", name="Pause").click()
    expect(page.locator("#toast")).to_contain_text("Paused queue default")
    expect(default.locator(".state .badge")).to_have_text("paused")
    expect(default.locator(".state")).to_contain_text("by user:alice")
    shot(page, "workers.png")
    default.get_by_role("button", name="Resume").click()
    expect(default.locator(".state .badge")).to_have_text("running")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_chart_fits_its_window_and_says_what_it_counts(page, manifest) -> None:
    sign_in(page, manifest, "alice")
    caption = page.locator("figure#chart figcaption")
    # Any time: the demo's week of history, a bar per day (not the last 24 hours).
    expect(caption).to_contain_text("one bar per day")
    assert 7 <= page.locator("figure#chart svg > g").count() <= 9
    page.select_option("#f-range", "1h")
    expect(caption).to_contain_text("one bar per minute")
    assert 60 <= page.locator("figure#chart svg > g").count() <= 61
    page.select_option("#f-range", "24h")
    expect(caption).to_contain_text("one bar per hour")
    assert 24 <= page.locator("figure#chart svg > g").count() <= 25
    expect(caption).not_to_contain_text("per hour,")  # the count is the window's, not an hour's
    shot(page, "chart-24h.png")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_group_spans_kinds_and_names_and_drills_into_all_of_them(page, manifest) -> None:
    sign_in(page, manifest, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="By error").click()
    rows = page.locator("table.groups tbody tr", has_text="connection reset by peer")
    expect(rows).to_have_count(1)  # one group, whatever kind or name it happened in
    assert rows.locator("span.kind").count() == 5
    names = rows.locator(".names").inner_text().split(", ")
    assert len(names) >= 5
    shot(page, "groups.png")
    rows.locator("td.err a").click()
    expect(page.locator("p.chip", has_text="Error group")).to_be_visible()
    kinds = set(page.locator("tbody#rows tr.row span.kind").all_inner_texts())
    assert len(kinds) == 5


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_one_search_box_finds_an_id_prefix_and_the_name_a_part(page, manifest) -> None:
    job_id = manifest["acme"]["jobs"]["failed"]
    sign_in(page, manifest, "alice")
    page.fill("#f-q", job_id[:23])
    rows = page.locator("tbody#rows tr.row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_id(f"row-job-{job_id}")
    page.fill("#f-q", "")
    page.fill("#f-name", "install")  # package.install
    expect(page).to_have_url(re.compile(r"name=install"))
    expect(rows.first).to_be_visible()
    assert set(rows.locator("span.kind").all_inner_texts()) == {"Job"}
