"""The console in a real browser: Debian's chromium driven by Playwright against pytest-django's
live server, with a real `manage.py worker` process running the retried work.

Screenshots of the inbox, a detail page and a bulk retry's progress go to test-artifacts/ (and
the README's to docs/, with REDRIVE_README_SHOTS=1).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the Django ORM calls the tests make
# between browser steps are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from executions.models import AuditEvent, AutomationExecution, BulkRetry, Job  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=(
            "chromium is not installed: the browser tests drive Debian's chromium "
            "(sudo apt-get install chromium), see the README's Test it"
        ),
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def sign_in(page: Page, manifest: dict, username: str) -> None:
    page.goto("/login/")
    expect(page).to_have_title("Sign in · Redrive")
    page.fill("#id_username", username)
    page.fill("#id_password", manifest["users"][username]["password"])
    page.click("button[type=submit]")
    expect(page).to_have_title("Failures · Redrive")


# The README's screenshots (docs/): the tests that take them refresh them with
# REDRIVE_README_SHOTS=1 (see the README's "Test it"); otherwise test-artifacts/ only.
DOCS = Path(__file__).resolve().parents[2] / "docs"
README_SHOTS = {"inbox.png", "detail-job.png", "keys-help.png", "inbox-dark.png", "api-keys.png"}


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)
    if name in README_SHOTS and os.environ.get("REDRIVE_README_SHOTS") == "1":
        shutil.copyfile(ARTIFACTS / name, DOCS / name)


def row(page: Page, kind: str, pk: str):
    return page.locator(f"tr#row-{kind}-{pk}")


def test_sign_in_and_filter_by_kind_and_error_text(page: Page, manifest: dict) -> None:
    sign_in(page, manifest, "alice")
    rows = page.locator("tbody#rows tr.row")
    expect(rows.first).to_be_visible()
    assert page.locator("tbody#rows tr.row span.kind").all_inner_texts()  # several kinds
    expect(page.locator("figure#chart svg")).to_be_visible()  # loaded after the list
    shot(page, "inbox.png")  # with its chart, as the README describes it
    page.evaluate("window.__notReloaded = true")

    page.select_option("#f-kind", "job")
    expect(page).to_have_url(re.compile(r"/\?kind=job$"))
    expect(page.locator("tbody#rows tr.row").first).to_be_visible()
    kinds = set(page.locator("tbody#rows tr.row span.kind").all_inner_texts())
    assert kinds == {"Job"}

    page.select_option("#f-kind", "")
    page.fill("#f-q", "card declined")
    expect(page).to_have_url(re.compile(r"\?q=card\+declined$"))
    errors = page.locator("tbody#rows tr.row td.err").all_inner_texts()
    assert errors and all("card declined" in e for e in errors)
    assert page.evaluate("window.__notReloaded") is True  # htmx swapped the list in place

    page.fill("#f-q", "no such error anywhere")
    expect(page.locator("#results .empty h2")).to_have_text("No failures match these filters")
    page.go_back()  # filters live in the URL: back restores the previous list
    expect(page).to_have_url(re.compile(r"\?q=card\+declined$"))
    expect(page.locator("tbody#rows tr.row").first).to_be_visible()


def test_retry_on_the_detail_page_goes_pending_then_final_without_reload(
    page: Page, manifest: dict, worker_process
) -> None:
    execution_id = manifest["acme"]["automations"]["failed"]
    sign_in(page, manifest, "alice")
    page.goto(f"/executions/automation/{execution_id}/")
    expect(page.locator("#h-actions")).to_be_visible()
    expect(page.locator("#status-box .now .badge").first).to_have_text("failed")
    page.evaluate("window.__notReloaded = true")

    page.click("#status-box button.retry")
    expect(page.locator("#status-box .msg")).to_have_text("Retry queued: the execution is pending")
    expect(page.locator("#status-box .now .badge").first).to_have_text("queued")  # pending
    # Only now is there a worker: the polling row must pick up the change by itself.
    worker_process()
    expect(page.locator("#status-box .now .badge").first).to_have_text("succeeded", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
    assert AutomationExecution.objects.get(pk=execution_id).status == "completed"
    page.reload()
    expect(page.locator("#h-attempts ~ ol > li")).to_have_count(2)  # the failed attempt is kept
    shot(page, "detail.png")


def test_retry_in_the_inbox_row_and_a_double_click_makes_one_retry(
    page: Page, manifest: dict, worker_process
) -> None:
    job_id = manifest["acme"]["jobs"]["failed"]
    worker_process()
    sign_in(page, manifest, "alice")
    page.goto("/?kind=job")
    target = row(page, "job", job_id)
    expect(target).to_be_visible()
    key = target.locator("input[name=idempotency_key]").get_attribute("value")
    target.locator("button.retry").dblclick()
    expect(target.locator(".msg")).to_contain_text("Retried as job")
    new = Job.objects.get(retry_of_id=job_id)
    # the row follows the new job live until it is final
    expect(target.locator(".then .badge")).to_have_text(
        re.compile("succeeded|failed"), timeout=30_000
    )
    assert Job.objects.filter(retry_of_id=job_id).count() == 1
    assert AuditEvent.objects.filter(kind="job", target_id=job_id, action="retry").count() == 1
    new.refresh_from_db()
    assert new.status in ("completed", "failed")
    # Its clone final, the job may be retried again (issue 16.3): by a new button, a new key.
    expect(target.locator("button.retry")).to_have_count(1)
    assert target.locator("input[name=idempotency_key]").get_attribute("value") not in ("", key)


def test_bulk_retry_with_preview_progress_and_summary(
    page: Page, manifest: dict, worker_process
) -> None:
    sign_in(page, manifest, "alice")
    page.goto("/?kind=automation")
    expect(page.locator("#retry-all")).to_be_visible()
    page.click("#retry-all")
    expect(page).to_have_title("Retry preview · Redrive")
    will = int(page.locator("#will-retry").inner_text())
    expected = AutomationExecution.objects.filter(  # the inbox opens on the open failures
        tenant__slug="acme", status="failed", triage__in=("open", "regressed")
    ).count()
    assert will == expected > 0
    assert not BulkRetry.objects.exists()
    page.click("#confirm-retry")
    expect(page).to_have_title("Bulk retry · Redrive")
    expect(page.locator("#bulk-bar")).to_be_visible()
    shot(page, "bulk-pending.png")
    worker_process()
    expect(page.locator("#bulk-summary")).to_be_visible(timeout=30_000)
    expect(page.locator("#bulk-done")).to_have_text(str(will))
    expect(page.locator("#bulk-bar")).to_have_attribute("value", "100")
    shot(page, "bulk-progress.png")
    bulk = BulkRetry.objects.get()
    assert (bulk.status, bulk.done, bulk.failed) == ("finished", will, 0)
    page.click("text=See everything it retried")
    expect(page).to_have_title("Audit · Redrive")
    # one row per item retried, beside the bulk's own row
    assert page.locator("tbody tr").filter(has_not_text="bulk retry").count() == will


def test_a_viewer_sees_no_retry_controls(page: Page, manifest: dict) -> None:
    sign_in(page, manifest, "bob")
    expect(page.locator("tbody#rows tr.row").first).to_be_visible()
    expect(page.locator("button.retry")).to_have_count(0)
    expect(page.locator('input[name="sel"]')).to_have_count(0)
    expect(page.locator("#retry-all")).to_have_count(0)
    expect(page.locator("tbody#rows .why").first).to_have_text("Read-only role")
    page.goto(f"/executions/automation/{manifest['acme']['automations']['failed']}/")
    expect(page.locator("#status-box .why")).to_have_text("Read-only role")
    expect(page.locator("button.retry")).to_have_count(0)


def test_phone_width_keeps_everything_reachable(page: Page, manifest: dict) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, manifest, "alice")
    first = page.locator("tbody#rows tr.row").first
    expect(first.locator("button.retry, .why").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.locator("a.skip")).to_be_focused()
    shot(page, "inbox-phone.png")
