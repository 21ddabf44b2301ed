"""Issue 20 §3's operator actions in a real Chromium (fixtures: tests/console/test_browser.py):
retry with a reason (inbox row, detail page, bulk confirm), retry with an edited input (validated,
a diff before confirming), a staged bulk retry live on its page, and a preview that lists items."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from executions.models import (
    AuditEvent,
    AutomationExecution,
    AutomationRule,
    BulkRetry,
    Job,
    Tenant,
)
from tests.domain.conftest import Items

from . import test_browser
from .test_browser import row, shot, sign_in

# The same Chromium and pages as test_browser.py (its fixtures, used here by name).
browser = test_browser.browser
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def audit(kind: str, pk: str) -> AuditEvent:
    return AuditEvent.objects.filter(kind=kind, target_id=pk, action="retry").latest("id")


def test_retry_with_a_reason_from_the_row_and_the_detail_page(page: Page, manifest: dict) -> None:
    job_id = manifest["acme"]["jobs"]["failed"]
    sign_in(page, manifest, "alice")
    page.goto("/?kind=job")
    target = row(page, "job", job_id)
    target.locator("input[name=reason]").fill("disk was full, cleaned up")
    target.locator("button.retry").click()
    expect(target.locator(".msg")).to_contain_text("Retried as job")
    assert audit("job", job_id).details["reason"] == "disk was full, cleaned up"

    automation_id = manifest["acme"]["automations"]["failed"]
    page.goto(f"/executions/automation/{automation_id}/")
    page.fill("#retry-reason", "webhook endpoint is back")
    page.click("#status-box button.retry")
    expect(page.locator("#status-box .msg")).to_contain_text("Retry queued")
    page.reload()
    expect(page.locator("#h-audit ~ .table-wrap .audit-reason")).to_have_text(
        "Reason: webhook endpoint is back"
    )
    # Too long: a clear message, nothing retried.
    other = manifest["acme"]["runs"]["failure"]
    page.goto(f"/executions/run/{other}/")
    page.eval_on_selector("#retry-reason", "e => e.removeAttribute('maxlength')")
    page.fill("#retry-reason", "x" * 501)
    page.click("#status-box button.retry")
    expect(page.locator("#status-box .msg-error")).to_contain_text("reason is too long")
    assert not AuditEvent.objects.filter(kind="run", target_id=other).exists()


def test_retry_with_an_edited_input_checks_it_and_shows_the_diff_first(
    page: Page, manifest: dict
) -> None:
    pk = manifest["acme"]["automations"]["failed"]
    before = AutomationExecution.objects.get(pk=pk).trigger_data
    sign_in(page, manifest, "alice")
    page.goto(f"/executions/automation/{pk}/")
    page.click("#edit-input summary")
    editor = page.locator("#input-editor")
    assert json.loads(editor.input_value()) == before  # prefilled with the original

    editor.fill('{"orderId": ')
    page.click("#review-input")
    expect(page.locator("#input-error")).to_contain_text("input is not valid JSON")
    expect(page.locator("#confirm-input-retry")).to_have_count(0)
    assert AutomationExecution.objects.get(pk=pk).status == "failed"

    editor.fill(json.dumps({**before, "orderId": "A-77"}))
    page.fill("#edit-reason", "the order id was wrong")
    page.click("#review-input")
    expect(page.locator("#input-diff li")).to_have_count(1)
    expect(page.locator("#input-diff li")).to_contain_text("orderId")
    expect(page.locator("#input-diff li")).to_contain_text('"A-77"')
    assert AutomationExecution.objects.get(pk=pk).status == "failed"  # nothing yet
    shot(page, "retry-edited-input.png")
    page.click("#confirm-input-retry")
    expect(page.locator("#status-box .msg")).to_contain_text("Retry queued")
    execution = AutomationExecution.objects.get(pk=pk)
    assert execution.trigger_data == {**before, "orderId": "A-77"}
    details = audit("automation", pk).details
    assert details["input"]["before"] == before
    assert details["reason"] == "the order id was wrong"
    page.reload()
    expect(page.locator(".audit-input summary")).to_have_text("Input edited (1 change)")


def test_a_job_retried_with_edited_data_runs_it_in_its_clone(page: Page, manifest: dict) -> None:
    pk = manifest["acme"]["jobs"]["failed"]
    original = Job.objects.get(pk=pk)
    sign_in(page, manifest, "alice")
    page.goto(f"/executions/job/{pk}/")
    page.click("#edit-input summary")
    data = json.loads(page.locator("#input-editor").input_value())
    page.fill("#input-editor", json.dumps({**data, "version": "2.0"}))
    page.click("#review-input")
    expect(page.locator("#input-diff li")).to_contain_text("version")
    page.click("#confirm-input-retry")
    expect(page.locator("#status-box .msg")).to_contain_text("Retried as job")
    clone = Job.objects.get(retry_of_id=pk)
    assert clone.operation["data"] == {**original.operation["data"], "version": "2.0"}
    assert Job.objects.get(pk=pk).operation == original.operation


def test_a_staged_bulk_retry_stops_when_its_canary_fails_again_and_lists_them(
    page: Page, manifest: dict, worker_process
) -> None:
    acme = Tenant.objects.get(slug="acme")
    maker = Items(acme)
    ids = [maker.failed("automation", "fail") for _ in range(5)]
    sign_in(page, manifest, "alice")
    page.goto("/?kind=automation&name=rule-fail")
    page.click("#retry-all")
    expect(page).to_have_title("Retry preview · Redrive")
    expect(page.locator("#preview-items li")).to_have_count(5)
    expect(page.locator("#preview-more")).to_have_count(0)
    page.fill("#bulk-reason", "trying the fix on two first")
    page.click("#staging summary")
    page.fill("#canary-size", "2")
    page.fill("#canary-min", "100")
    page.fill("#rate", "5")
    page.click("#confirm-retry")
    expect(page).to_have_title("Bulk retry · Redrive")
    expect(page.locator("#bulk-stage strong")).to_have_text("canary")
    worker_process()
    expect(page.locator("#bulk-stage strong")).to_have_text("stopped", timeout=30_000)
    expect(page.locator("#bulk-failed-again")).to_have_text("2")
    expect(page.locator("#bulk-pending")).to_have_text("0")
    expect(page.locator("#bulk-stopped")).to_contain_text("0 of 2 succeeded")
    links = page.locator("#bulk-failed-again-items li a")
    expect(links).to_have_count(2)
    shot(page, "bulk-staged-stopped.png")
    bulk = BulkRetry.objects.get()
    assert (bulk.stage, bulk.done) == ("stopped", 2)
    assert AutomationExecution.objects.filter(pk__in=ids, attempt=1).count() == 3  # never retried
    links.first.click()
    expect(page.locator("#h-audit")).to_be_visible()
    expect(page.locator(".audit-reason").first).to_have_text("Reason: trying the fix on two first")


def test_the_preview_lists_the_first_50_items_and_how_many_more(page: Page, manifest: dict) -> None:
    acme = Tenant.objects.get(slug="acme")
    rule = AutomationRule.objects.create(tenant=acme, name="many", actions=[{"handler": "fail"}])
    AutomationExecution.objects.bulk_create(
        AutomationExecution(tenant=acme, automation_rule=rule, status="failed", error_message="x")
        for _ in range(53)
    )
    sign_in(page, manifest, "alice")
    page.goto("/?kind=automation&name=many")
    page.click("#retry-all")
    expect(page.locator("#preview-items li")).to_have_count(50)
    expect(page.locator("#preview-more")).to_have_text("and 3 more")
    expect(page.locator("table.preview tbody tr")).to_have_count(1)  # no kinds with 0
