"""The console's Webhooks page in a real browser (Debian's chromium, Playwright): a tenant admin
subscribes the receiver, copies the secret shown once, sees a delivery in the log (a real
worker sends it), and sees why a 410 disabled the subscription, on that page and every other."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import transaction

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402
from standardwebhooks.webhooks import Webhook  # noqa: E402

from executions import events  # noqa: E402
from executions.models import WebhookSubscription  # noqa: E402

from .conftest import WORKER_ENV, wait_for  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]


@pytest.fixture
def page(live_server) -> Iterator[Page]:
    with sync_playwright() as p:
        browser: Browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(15_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
        browser.close()
        assert not errors, f"JavaScript errors: {errors}"


def test_subscribe_see_the_secret_once_the_log_and_a_410(
    page: Page, allow_local, admin, tenant, receiver, worker_process
) -> None:
    page.goto("/login/")
    page.fill("#id_username", "alma")
    page.fill("#id_password", "alma-pass-2026")
    page.click("button[type=submit]")
    page.click("nav >> text=Webhooks")
    expect(page).to_have_title("Webhooks · Redrive")

    page.fill("#wh-url", receiver.url)
    page.check("input[name=events][value='execution.failed']")
    page.click("#webhook-form button[type=submit]")
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    page.reload()
    expect(page.locator("#new-secret")).to_have_count(0)  # shown once
    assert secret not in page.content()

    worker_process(env=WORKER_ENV)
    with transaction.atomic():
        events.emit_many(tenant, "execution.failed", [{"kind": "job", "id": "j1", "name": "n"}])
    got = wait_for(lambda: receiver.received)[0]
    Webhook(secret).verify(got.body, got.headers)
    sub = WebhookSubscription.objects.get()
    wait_for(lambda: sub.attempts.exists())
    page.reload()
    expect(page.locator(f"#webhook-{sub.pk} tbody tr")).to_contain_text("execution.failed")

    receiver.answer = lambda r: 410
    with transaction.atomic():
        events.emit_many(tenant, "execution.failed", [{"kind": "job", "id": "j2", "name": "n"}])
    wait_for(lambda: not WebhookSubscription.objects.get(pk=sub.pk).enabled)
    page.reload()
    expect(page.locator("[role=alert]").first).to_contain_text("410 Gone")
    expect(page.locator("#webhooks-disabled")).to_have_count(0)  # said once on this page
    # Every other page tells the admin too, and leads here.
    page.click("nav >> text=Failures")
    expect(page.locator("#webhooks-disabled")).to_contain_text("410 Gone")
    page.click("#webhooks-disabled a")
    expect(page).to_have_title("Webhooks · Redrive")
    receiver.answer = lambda r: 200
    page.click(f"#webhook-{sub.pk} button:has-text('Resume')")
    expect(page.locator(f"#webhook-{sub.pk}")).to_contain_text("enabled")
    page.click("nav >> text=Failures")
    expect(page.locator("h1").first).to_be_visible()
    expect(page.locator("#webhooks-disabled")).to_have_count(0)
