"""Triage in a real browser (Chromium through Playwright, as tests/console/test_browser.py): the
Open / Resolved / Ignored / All tabs, ignoring and reopening a failure and an error group, and a
failure resolved by itself once its retry succeeds (a real worker process)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from executions import kinds
from executions.models import (
    AuditEvent,
    AutomationExecution,
    FailureGroup,
    Job,
)

from . import test_browser
from .test_browser import row, sign_in

# test_browser's Chromium and page (its skip when chromium is missing comes with them).
browser, page = test_browser.browser, test_browser.page
pytestmark = test_browser.pytestmark


def test_the_tabs_switch_the_state_and_open_is_the_default(page: Page, manifest: dict) -> None:
    job_id = manifest["acme"]["jobs"]["failed"]
    Job.objects.filter(pk=job_id).update(triage="ignored")
    sign_in(page, manifest, "alice")
    expect(page.locator("#tab-open")).to_have_attribute("aria-current", "page")
    expect(page.locator("tbody#rows tr.row").first).to_be_visible()
    expect(row(page, "job", job_id)).to_have_count(0)

    page.click("#tab-ignored")
    expect(page).to_have_url(re.compile(r"state=ignored$"))
    expect(page.locator("#tab-ignored")).to_have_attribute("aria-current", "page")
    expect(row(page, "job", job_id)).to_be_visible()
    # Only ignored ones: the job, and the demo's ignored error group (in every kind it spans).
    ignored = sum(
        k.model.objects.filter(
            tenant__slug="acme", triage="ignored", status__in=k.failed_statuses
        ).count()
        for k in kinds.KINDS
    )
    expect(page.locator("tbody#rows tr.row")).to_have_count(ignored)
    expect(page.locator("p.count strong")).to_have_text(str(ignored))

    page.click("#tab-all")
    expect(page).to_have_url(re.compile(r"state=all$"))
    expect(row(page, "job", job_id)).to_be_visible()

    page.select_option("#f-kind", "job")  # a filter keeps the tab
    expect(page).to_have_url(re.compile(r"\?kind=job&state=all$"))
    expect(page.locator("#tab-all")).to_have_attribute("aria-current", "page")
    page.click("#tab-resolved")
    expect(page).to_have_url(re.compile(r"kind=job&state=resolved$"))


def test_ignore_and_reopen_a_failure_in_its_row(page: Page, manifest: dict) -> None:
    job_id = manifest["acme"]["jobs"]["failed"]
    sign_in(page, manifest, "alice")
    page.goto("/?kind=job")
    target = row(page, "job", job_id)
    page.evaluate("window.__notReloaded = true")
    target.locator("button.ignore").click()
    expect(target.locator(".msg")).to_have_text("Ignored until it happens again")
    expect(target.locator(".triage")).to_have_text("ignored")
    assert page.evaluate("window.__notReloaded") is True
    assert Job.objects.get(pk=job_id).triage == "ignored"

    page.click("#tab-ignored")
    target = row(page, "job", job_id)
    expect(target).to_be_visible()
    target.locator("button.reopen").click()
    expect(target.locator(".msg")).to_have_text("Open again")
    assert Job.objects.get(pk=job_id).triage == "open"
    actions = AuditEvent.objects.filter(target_id=job_id).values_list("action", flat=True)
    assert list(actions.order_by("pk")) == ["ignore", "reopen"]


def test_ignore_a_group_until_a_date_then_reopen_it(page: Page, manifest: dict) -> None:
    job_id = manifest["acme"]["jobs"]["failed"]
    fp = Job.objects.get(pk=job_id).fingerprint
    sign_in(page, manifest, "alice")
    page.goto("/groups/?kind=job")
    form = page.locator(f"form[action='/groups/{fp}/ignore/']")
    form.locator("input[name=reason]").fill("vendor outage")
    form.locator("input[name=until]").fill("2099-01-31")
    form.locator("button.ignore-group").click()
    expect(page.locator(".msg").first).to_contain_text("Ignored until 2099-01-31 00:00 UTC")
    group = FailureGroup.objects.get(tenant__slug="acme", fingerprint=fp)
    assert (group.state, group.reason, group.until.year) == ("ignored", "vendor outage", 2099)
    assert Job.objects.get(pk=job_id).triage == "ignored"

    page.click("#tab-ignored")
    page.locator(f"form[action='/groups/{fp}/reopen/'] button").click()
    expect(page.locator(".msg").first).to_contain_text("Open again")
    assert Job.objects.get(pk=job_id).triage == "open"


def test_a_successful_retry_resolves_the_failure_by_itself(
    page: Page, manifest: dict, worker_process
) -> None:
    execution_id = manifest["acme"]["automations"]["failed"]
    sign_in(page, manifest, "alice")
    page.goto(f"/executions/automation/{execution_id}/")
    expect(page.locator("#status-box .triage-state")).to_contain_text("Open")
    page.click("#status-box button.retry")
    worker_process()
    expect(page.locator("#status-box .now .badge").first).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#status-box .triage-resolved")).to_have_text("resolved")
    expect(page.locator("#status-box .chain")).to_have_text("retried → success")
    assert AutomationExecution.objects.get(pk=execution_id).triage == "resolved"

    page.goto("/?kind=automation")
    expect(row(page, "automation", execution_id)).to_have_count(0)
    page.click("#tab-resolved")
    expect(row(page, "automation", execution_id)).to_be_visible()
    expect(row(page, "automation", execution_id).locator(".chain")).to_have_text(
        "retried → success"
    )


def test_a_viewer_has_no_triage_buttons(page: Page, manifest: dict) -> None:
    sign_in(page, manifest, "bob")
    expect(page.locator("tbody#rows tr.row").first).to_be_visible()
    expect(page.locator("button.ignore")).to_have_count(0)
    page.goto("/groups/")
    expect(page.locator("button.ignore-group")).to_have_count(0)
