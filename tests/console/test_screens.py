"""Issue 20's screens in a real browser (Chromium through Playwright, the fixtures of
test_browser.py): success styled as success, one status vocabulary, a retry followed live on the
detail page, what a retried row says, jobs waiting for a host, the keyboard, copy-id buttons, dark
mode, the API keys page, log dates and node outputs."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from executions import permissions
from executions.models import (
    ApiKey,
    AutomationExecution,
    FunctionExecution,
    Job,
    WorkflowExecution,
)

from . import test_browser
from .test_browser import row, shot, sign_in

# test_browser.py's Chromium and page fixtures and marks (browser, transactional database).
browser, page = test_browser.browser, test_browser.page
pytestmark = test_browser.pytestmark


def timed_out_in_acme() -> int:
    return sum(
        model.objects.filter(tenant__slug="acme", status__in=statuses).count()
        for model, statuses in (
            (AutomationExecution, ["timeout"]),
            (FunctionExecution, ["timeout"]),
            (WorkflowExecution, ["TIMED_OUT"]),
        )
    )


DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")


def test_a_successful_run_is_success_everywhere_and_its_nodes_read_in_dependency_order(
    page: Page, manifest: dict
) -> None:
    sign_in(page, manifest, "alice")
    page.goto(f"/executions/run/{manifest['acme']['runs']['success']}/")
    box = page.locator("#status-box .now .badge").first
    expect(box).to_have_text("succeeded")
    expect(box).to_have_class(re.compile(r"\bgood\b"))
    # "3 nodes succeeded" is the run's summary: never in a red "Error" box or red text
    expect(page.locator("#h-error")).to_have_count(0)
    expect(page.locator(".outcome-card")).to_contain_text("nodes succeeded")
    expect(page.locator(".error-message", has_text="succeeded")).to_have_count(0)
    expect(page.locator(".error-card")).to_have_count(0)
    # each node collapsible, root first and every node after what it depends on; no JSON dump
    nodes = page.locator("#h-nodes ~ ol.nodes > li")
    ids = [i.removeprefix("node-") for i in nodes.evaluate_all("els => els.map(e => e.id)")]
    assert ids == ["root", "collect-metrics", "send-digest"]
    expect(page.locator("#h-output")).to_have_count(0)
    send = page.locator("#node-send-digest details.node")
    expect(send.locator("pre.output")).not_to_be_visible()
    send.locator("summary").first.click()
    expect(send.locator("pre.output")).to_contain_text('"to": "ops@example.com"')
    send.locator("details summary", has_text="Logs").click()
    stamp = send.locator(".loglines time.ts").first.inner_text()
    assert DATE_TIME.match(stamp), stamp


def test_one_status_vocabulary_in_the_filter_and_the_badges(page: Page, manifest: dict) -> None:
    acme = manifest["acme"]
    AutomationExecution.objects.filter(pk=acme["automations"]["failed"]).update(status="timeout")
    WorkflowExecution.objects.filter(pk=acme["workflows"]["failed"]).update(status="TIMED_OUT")
    sign_in(page, manifest, "alice")
    options = page.locator("#f-status option").all_inner_texts()
    assert options == ["Any failed status", "failed", "timed out", "cancelled", "terminated"] + [
        "partial"
    ]
    page.select_option("#f-status", "timed out")
    expect(page).to_have_url(re.compile(r"\?status=timed\+out$"))
    rows = page.locator("tbody#rows tr.row")
    expect(row(page, "workflow", acme["workflows"]["failed"])).to_be_visible()
    expect(row(page, "automation", acme["automations"]["failed"])).to_be_visible()
    timed_out = timed_out_in_acme()
    expect(rows).to_have_count(timed_out)
    assert set(rows.locator("td.status > .badge").all_inner_texts()) == {"timed out"}
    # the kind's own word, small beside it
    assert set(rows.locator("td.status .native").all_inner_texts()) == {"TIMED_OUT", "timeout"}
    # the unfiltered list: only the vocabulary's words on the badges (a run's "failure" too)
    page.select_option("#f-status", "")
    expect(page).to_have_url(re.compile(r"/$"))
    page.select_option("#f-kind", "run")
    expect(page.locator("tbody#rows tr.row").first).to_be_visible()
    words = set(page.locator("tbody#rows td.status > .badge").all_inner_texts())
    assert words and words <= {"failed", "timed out", "cancelled", "terminated", "partial"}
    assert "failure" in page.locator("tbody#rows td.status .native").all_inner_texts()


def test_a_retry_on_a_jobs_detail_page_updates_attempts_lineage_and_audit_live(
    page: Page, manifest: dict, worker_process
) -> None:
    job_id = manifest["acme"]["jobs"]["failed"]
    sign_in(page, manifest, "alice")
    page.goto(f"/executions/job/{job_id}/")
    expect(page.locator("#attempts ol > li")).to_have_count(1)
    expect(page.locator("#audit")).to_contain_text("Nobody has retried this yet")
    page.evaluate("window.__notReloaded = true")

    page.click("#status-box button.retry")
    expect(page.locator("#status-box .msg")).to_contain_text("Retried as job")
    new = Job.objects.get(retry_of_id=job_id)
    # said once: no "was already retried as …" beside "Retried as …"
    expect(page.locator("#status-box")).not_to_contain_text("already retried")
    # without a reload: the new attempt, the lineage and the audit row, with its outcome
    expect(page.locator("#attempts ol > li")).to_have_count(2)
    expect(page.locator("#attempt-fact dd")).to_have_text("1 of 2")
    expect(page.locator("#lineage")).to_contain_text(str(new.pk))
    audit = page.locator("#audit tbody tr")
    expect(audit).to_have_count(1)
    expect(audit.locator("td.outcome .badge")).to_have_text("queued")
    expect(page.locator("#status-box .why")).to_have_text("Retry in progress")

    worker_process()  # only now is there a worker: the page follows the job by itself
    # the retry's row (and the resolve it led to) show the clone's outcome
    expect(audit.locator("td.outcome .badge").first).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#attempts ol > li").nth(1).locator(".badge")).to_have_text("succeeded")
    expect(page.locator("#lineage .badge").last).to_have_text("succeeded")
    assert page.evaluate("window.__notReloaded") is True
    page.locator("#attempts").evaluate("e => e.scrollIntoView()")  # what the retry changed
    shot(page, "detail-job.png")


def test_a_retried_row_says_what_happened_once_and_a_job_waiting_for_its_host_says_so(
    page: Page, manifest: dict
) -> None:
    job_id = manifest["acme"]["jobs"]["failed"]
    sign_in(page, manifest, "alice")
    page.goto("/?kind=job")
    target = row(page, "job", job_id)
    target.locator("input[name=target_hostname]").fill("web-01")
    target.locator("button.retry").click()
    expect(target.locator(".msg")).to_have_text(re.compile(r"^Retried as job \S+ on web-01$"))
    expect(target).not_to_contain_text("already retried")
    expect(target.locator(".why")).to_have_count(0)
    # no worker serves web-01 (none runs at all): the row says what the retry waits for
    expect(target.locator(".waiting")).to_have_text("Waiting: no live worker for host web-01")
    # the next poll (no message any more): in progress, in an operator's words
    expect(target.locator(".why")).to_have_text("Retry in progress", timeout=10_000)
    expect(target).not_to_contain_text("already retried")
    new = Job.objects.get(retry_of_id=job_id)
    page.goto(f"/executions/job/{new.pk}/")
    expect(page.locator("#status-box .waiting")).to_have_text(
        "Waiting: no live worker for host web-01"
    )


def test_the_inbox_by_keyboard_and_copy_id_buttons(page: Page, manifest: dict) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, manifest, "alice")
    page.goto("/?kind=job")
    rows = page.locator("tbody#rows tr.row")
    expect(rows.first).to_be_visible()
    help_box = page.locator("#keys-help")
    expect(help_box).to_be_hidden()
    page.keyboard.press("?")
    expect(help_box).to_be_visible()
    expect(help_box.locator("kbd", has_text="j")).to_be_visible()
    shot(page, "keys-help.png")
    page.keyboard.press("Escape")
    expect(help_box).to_be_hidden()

    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bkb-focus\b"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bkb-focus\b"))
    expect(page.locator("tr.kb-focus")).to_have_count(1)
    page.keyboard.press("x")
    expect(rows.nth(1).locator('input[name="sel"]')).to_be_checked()
    expect(page.locator("#retry-selected")).to_have_text("Retry 1 selected")
    focused_id = rows.nth(1).get_attribute("id").removeprefix("row-job-")
    page.keyboard.press("r")  # the focused row's own Retry button
    expect(rows.nth(1).locator(".msg")).to_contain_text("Retried as job")
    assert Job.objects.filter(retry_of_id=focused_id).count() == 1
    # copy-id: a row's, then the detail page's
    first_id = rows.nth(0).get_attribute("id").removeprefix("row-job-")
    rows.nth(0).locator("button.copy").click()
    expect(rows.nth(0).locator("button.copy")).to_have_text("copied")
    assert page.evaluate("navigator.clipboard.readText()") == first_id
    page.keyboard.press("/")
    expect(page.locator("#f-q")).to_be_focused()
    page.keyboard.type("j")  # typing in the search box is text, not a move
    expect(page).to_have_url(re.compile(r"\?kind=job&q=j$"))
    expect(page.locator("#f-q")).to_have_value("j")
    expect(page.locator("tr.kb-focus")).to_have_count(0)

    page.goto(f"/executions/job/{first_id}/")
    page.locator(".detail-head button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == first_id


def test_dark_mode_follows_the_system_setting(page: Page, manifest: dict) -> None:
    sign_in(page, manifest, "alice")
    background = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(background) == "rgb(246, 247, 249)"
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(background) == "rgb(18, 21, 28)"
    card = page.locator(".table-wrap").first
    assert card.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(27, 31, 41)"
    shot(page, "inbox-dark.png")


def test_the_api_keys_page_has_role_presets_an_expiry_and_aligned_labels(
    page: Page, manifest: dict
) -> None:
    sign_in(page, manifest, "alice")
    page.goto("/keys/")
    labels = page.locator("#key-form > label, #key-form > .label")
    lefts = {round(box["x"]) for box in (lab.bounding_box() for lab in labels.all())}
    assert labels.count() == 4 and len(lefts) == 1, lefts
    fields = ["#id_name", "#id_role", "#id_expires"]
    assert len({round(page.locator(f).bounding_box()["x"]) for f in fields}) == 1
    page.fill("#id_name", "nightly operator script")
    page.select_option("#id_role", "operator")
    operator = sorted(permissions.of_role("operator"))
    ticked = page.locator('input[name="permissions"]:checked')
    expect(ticked).to_have_count(len(operator))
    assert sorted(b.get_attribute("value") for b in ticked.all()) == operator
    day = (timezone.now() + timedelta(days=30)).date()
    page.fill("#id_expires", day.isoformat())
    page.locator("#id_expires").blur()  # the README's shot: the day, not a selected field
    shot(page, "api-keys.png")
    page.click("#key-form button.primary")
    expect(page.locator("#new-key")).to_be_visible()
    key = ApiKey.objects.get(name="nightly operator script")
    assert key.permissions == operator
    assert key.expiry_date.date() == day
    expect(page.locator("td.expires").first).to_have_text(f"{day.isoformat()} 00:00 UTC")


def test_log_lines_show_their_date_and_time(page: Page, manifest: dict) -> None:
    sign_in(page, manifest, "alice")
    page.goto(f"/executions/job/{manifest['acme']['jobs']['failed']}/")
    stamp = page.locator("#h-logs ~ ol.logs time.ts").first.inner_text()
    assert DATE_TIME.match(stamp), stamp
