"""Content-Security-Policy (issue 16.7): every response carries the enforced policy, and the
console, the Django admin and Swagger UI still work under it in a real browser (Debian's chromium)
without a single violation: htmx swaps and polling, the chart, a retry, a bulk retry's preview and
progress, the tenant switcher, a confirmation, the admin's changelist and change page, and Swagger
UI rendering the API's operations."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from executions.models import Job, Membership, Tenant

# (plus the request's nonce in script-src and style-src when the page used it, as the admin does)
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# Any of these in a page would be refused by the policy (no nonce, no 'unsafe-inline').
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style[\s>]|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE
)


def policy_of(response) -> str:
    return re.sub(r" 'nonce-[A-Za-z0-9_-]+'", "", response["Content-Security-Policy"])


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "root-pw-2026")


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_enforced_policy(client, cast, root) -> None:
    assert policy_of(client.get(reverse("login"))) == POLICY
    assert policy_of(client.get("/api/docs/")) == POLICY
    assert policy_of(client.get("/api/docs/", {"script": ""})) == POLICY
    assert policy_of(client.get("/job")) == POLICY  # a 401 of the API
    client.force_login(cast.users["alice"])
    for url in (reverse("inbox"), reverse("groups"), reverse("audit"), reverse("api_keys")):
        response = client.get(url)
        assert response.status_code == 200
        assert policy_of(response) == POLICY
        assert "Content-Security-Policy-Report-Only" not in response
    assert policy_of(client.get("/no/such/page/")) == POLICY
    client.force_login(root)
    admin_page = client.get(reverse("admin:executions_job_changelist"))
    assert admin_page.status_code == 200 and policy_of(admin_page) == POLICY
    assert "'nonce-" in admin_page["Content-Security-Policy"]  # its tags carry the nonce


@pytest.mark.django_db
def test_no_page_has_inline_script_style_or_handlers(client, cast, root) -> None:
    """What the policy would refuse, found without a browser: pages that must work under it."""
    client.force_login(cast.users["maria"])  # in two tenants: the switcher is shown
    pages = [
        reverse("inbox"),
        reverse("groups"),
        reverse("chart"),
        reverse("audit"),
        reverse("api_keys"),
        reverse("detail", kwargs={"kind": "job", "object_id": cast.job.pk}),
    ]
    for url in pages:
        page = client.get(url).content.decode()
        assert not INLINE.findall(page), (url, INLINE.findall(page))
    assert "data-submit-on-change" in client.get(reverse("inbox")).content.decode()
    client.force_login(root)
    change = client.get(reverse("admin:executions_job_change", args=[cast.job.pk]))
    page = change.content.decode()
    assert '<pre class="stack">' in page and "executions/admin.css" in page
    assert " style=" not in page
    docs = client.get("/api/docs/").content.decode()
    assert not INLINE.findall(docs), INLINE.findall(docs)
    from django.template.loader import render_to_string

    assert not INLINE.findall(render_to_string("500.html"))


# --- in a real browser ----------------------------------------------------------------------------

from .test_browser import ARGS, CHROMIUM, sign_in  # noqa: E402


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


# Report every violation to the console, with what was refused: chromium logs its own message too,
# but this one names the directive even when the page navigates away right after.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline")
    + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not __import__("pathlib").Path(CHROMIUM).exists(),
    reason="chromium is not installed (sudo apt-get install chromium), see the README's Test it",
)
def test_the_console_admin_and_swagger_work_under_the_policy_in_a_browser(
    chromium, live_server, manifest: dict, worker_process
) -> None:
    from playwright.sync_api import expect

    globex = Tenant.objects.get(slug="globex")
    alice = get_user_model().objects.get(username="alice")
    Membership.objects.create(user=alice, tenant=globex, role="viewer")  # shows the switcher
    get_user_model().objects.create_superuser("root", "root@example.com", "root-pw-2026")

    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url
    )
    context.set_default_timeout(15_000)
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    messages: list[str] = []
    errors: list[str] = []
    documents: list[tuple[str, str | None]] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda r: (
            r.request.resource_type == "document"
            and documents.append((r.url, r.headers.get("content-security-policy")))
        ),
    )
    try:
        # the inbox: the chart loads by htmx after the list, a filter swaps the list in place
        sign_in(page, manifest, "alice")
        expect(page.locator("figure#chart svg")).to_be_visible()
        page.evaluate("window.__notReloaded = true")
        page.select_option("#f-kind", "job")
        expect(page).to_have_url(re.compile(r"/\?kind=job$"))
        expect(page.locator("tbody#rows tr.row").first).to_be_visible()
        assert set(page.locator("tbody#rows tr.row span.kind").all_inner_texts()) == {"Job"}
        assert page.evaluate("window.__notReloaded") is True
        # a retry from its row (htmx POST, the row swapped in place)
        job_id = manifest["acme"]["jobs"]["failed"]
        row = page.locator(f"tr#row-job-{job_id}")
        row.locator("button.retry").click()
        expect(row.locator(".msg")).to_contain_text("Retried as job")
        # a bulk retry: preview, confirm, progress polled by htmx until done
        page.goto("/?kind=automation")
        page.click("#retry-all")
        expect(page).to_have_title("Retry preview · Redrive")
        page.click("#confirm-retry")
        expect(page.locator("#bulk-bar")).to_be_visible()
        worker_process()
        expect(page.locator("#bulk-summary")).to_be_visible(timeout=30_000)
        expect(page.locator("#bulk-bar")).to_have_attribute("value", "100")
        # a detail page
        page.goto(f"/executions/run/{manifest['acme']['runs']['failure']}/")
        expect(page.locator("#status-box .now .badge").first).to_have_text("failed")
        # a confirmation (was an inline onsubmit): dismissed keeps the key, accepted revokes it
        page.goto("/keys/")
        page.fill("#id_name", "nightly retry script")
        page.click("button.primary")
        expect(page.locator("#new-key")).to_be_visible()
        revoke = page.locator("button.danger")
        page.once("dialog", lambda d: d.dismiss())
        revoke.nth(0).click()
        page.once("dialog", lambda d: d.accept())
        revoke.nth(1).click()
        expect(page.locator("#toast")).to_contain_text("Revoked key")
        # only the second: the dismissed one was not sent
        expect(page.locator("tbody tr").nth(1).locator(".badge.bad")).to_have_text("revoked")
        expect(page.locator(".badge.bad")).to_have_count(1)
        # the tenant switcher (was an inline onchange) submits its form by itself
        page.goto("/")
        page.select_option("#tenant-select", "globex")
        expect(page.locator("#toast")).to_contain_text(f"Switched to {globex.name}")
        expect(page.locator("#tenant-select")).to_have_value("globex")
        # the admin: sign in, a changelist, a change page with its stack in <pre class="stack">
        context.clear_cookies()  # alice may open the admin too: sign in there as root
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "root-pw-2026")
        page.click("input[type=submit]")
        expect(page).to_have_url(re.compile(r"/admin/$"))
        page.goto("/admin/executions/job/")
        expect(page.locator("#result_list tbody tr").first).to_be_visible()
        page.goto(f"/admin/executions/job/{job_id}/change/")
        stack = page.locator("pre.stack")
        expect(stack).to_be_visible()
        assert stack.evaluate("e => getComputedStyle(e).whiteSpace") == "pre"
        # Swagger UI: its script is a file, it fetches the schema and renders every operation
        page.goto("/api/docs/")
        expect(page.locator(".opblock").first).to_be_visible()
        assert page.locator(".opblock").count() >= 20
        page.locator(".opblock-summary").first.click()
        expect(page.locator(".opblock-body").first).to_be_visible()
    finally:
        context.close()
    violations = [m for m in messages if "Content Security Policy" in m or "CSP violation" in m]
    assert not violations, violations
    assert not errors, f"JavaScript errors: {errors}"
    assert Job.objects.filter(retry_of_id=job_id).count() == 1
    missing = [url for url, header in documents if not header]
    assert documents and not missing, missing
    for url, header in documents:
        assert re.sub(r" 'nonce-[A-Za-z0-9_-]+'", "", header) == POLICY, url
