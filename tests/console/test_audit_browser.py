"""The audit page says what each retry ended as (issue 20: "Audit rows show the outcome, not only
'failed → running'"), in Chromium through Playwright (test_browser.py's fixtures): a clone that
succeeded, one that failed again, one still queued, and a record retried in place twice, each
retry with the attempt it made."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import Page, expect

from executions import selectors, services, triage
from executions.kinds.automations import run as automations_run
from executions.kinds.jobs import run as jobs_run
from executions.models import AutomationExecution, AutomationRule, Job, Tenant
from executions.tenancy import Actor

from . import test_browser
from .test_browser import sign_in

# test_browser's Chromium and page (its skip when chromium is missing comes with them).
browser, page = test_browser.browser, test_browser.page
pytestmark = test_browser.pytestmark


def alice() -> Actor:
    tenant = Tenant.objects.get(slug="acme")
    return Actor.for_user(get_user_model().objects.get(username="alice"), tenant, source="console")


def failed_job(tenant: Tenant, failures: int) -> str:
    """A job that fails its first `failures` attempts (each retry is an attempt)."""
    data = {"handler": "flaky", "failures": failures, "package": "nginx"}
    job = jobs_run.create_job(tenant, {"type": "package.install", "data": data}, "web-1")
    jobs_run.execute(str(job.pk), "web-1")
    return str(job.pk)


def retried_job(actor: Actor, failures: int, *, run: bool = True) -> str:
    job = failed_job(actor.tenant, failures)
    new = services.retry_job(actor, job).new_id
    if run:
        jobs_run.execute(str(new), "web-1")
    return job


def failed_automation(tenant: Tenant, failures: int) -> str:
    rule = AutomationRule.objects.create(
        tenant=tenant,
        name="Sync CRM contact twice",
        trigger={"type": "event", "event": "contact.updated"},
        actions=[{"name": "push", "handler": "flaky", "params": {"failures": failures}}],
    )
    execution = automations_run.start_automation(rule, {"contactId": "c_2"})
    automations_run.execute([str(execution.pk)])
    return str(execution.pk)


def retry_automation(actor: Actor, pk: str) -> None:
    services.retry_one(actor, "automation", pk)
    automations_run.execute([pk])


def retry_rows(page: Page, kind: str, pk: str):
    """The audit page's rows of alice's retries of one item, newest first."""
    item = page.locator('td[data-label="Item"]', has=page.locator(f'a[href$="/{kind}/{pk}/"]'))
    who = page.locator('td[data-label="Who"]', has_text="alice")
    return page.locator("tbody tr").filter(has=item).filter(has=who)


def test_the_audit_page_shows_what_each_retry_ended_as(page: Page, manifest: dict) -> None:
    actor = alice()
    succeeded = retried_job(actor, failures=1)
    failed_again = retried_job(actor, failures=5)
    queued = retried_job(actor, failures=1, run=False)
    twice = failed_automation(actor.tenant, failures=2)
    retry_automation(actor, twice)  # attempt 2: fails again
    retry_automation(actor, twice)  # attempt 3: succeeds
    assert AutomationExecution.objects.get(pk=twice).status == "completed"

    sign_in(page, manifest, "alice")
    page.goto("/audit/")
    expect(page.locator("table.plain thead th").last).to_have_text("Outcome")

    outcome = 'td[data-label="Outcome"] .badge'
    expect(retry_rows(page, "job", succeeded).locator(outcome)).to_have_text("succeeded")
    expect(retry_rows(page, "job", failed_again).locator(outcome)).to_have_text("failed again")
    expect(retry_rows(page, "job", queued).locator(outcome)).to_have_text("queued")
    # In place, each retry shows the attempt it made, not the record's latest status.
    expect(retry_rows(page, "automation", twice).locator(outcome)).to_have_text(
        ["succeeded", "failed again"]
    )


def test_the_audit_pages_outcomes_take_the_same_queries_for_more_rows(manifest: dict) -> None:
    """No query per row: twice the retries of each kind read in as many queries."""
    actor = alice()

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            events, _ = selectors.audit_events(actor.tenant, actor="user:alice")
        assert events and all(e.outcome for e in events if e.action == "retry")
        return len(seen.captured_queries)

    retried_job(actor, failures=1)
    retry_automation(actor, failed_automation(actor.tenant, failures=1))
    few = queries()
    for _ in range(3):
        retried_job(actor, failures=5)
        retry_automation(actor, failed_automation(actor.tenant, failures=1))
    assert queries() == few


def test_the_audit_page_shows_what_a_passed_ignore_reopened(page: Page, manifest: dict) -> None:
    """An error group ignored until a date the workers saw pass: its row names the group (a link
    to its failures), by "redrive", and each failure it opened again."""
    actor = alice()
    job = failed_job(actor.tenant, failures=5)
    fp = Job.objects.get(pk=job).fingerprint
    until = timezone.now() + timedelta(hours=1)
    triage.ignore_group(actor, fp, until=until)
    triage.lapse_ignores(now=until + timedelta(seconds=1))

    sign_in(page, manifest, "alice")
    page.goto("/audit/?actor=redrive")
    group = page.locator("tbody tr").filter(has_text="reopen_group")
    expect(group.locator('td[data-label="Item"]')).to_have_text(f"error group {fp}")
    expect(group.locator('td[data-label="Change"]')).to_have_text("reopen_group (ignored → open)")
    reopened = page.locator("tbody tr", has=page.locator(f'a[href$="/job/{job}/"]'))
    expect(reopened.locator('td[data-label="Change"]')).to_have_text("ignored → open")
    group.locator('td[data-label="Item"] a').click()
    expect(page.locator(f"tr#row-job-{job}")).to_be_visible()

    # On the job's page the reopen is no retry: it has no outcome (not "failed again").
    page.goto(f"/executions/job/{job}/")
    expect(page.locator("#audit tbody tr")).to_contain_text("reopen")
    expect(page.locator("#audit td.outcome .badge")).to_have_count(0)
