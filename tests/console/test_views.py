"""The console's views, through Django's test client: who sees what, tenant isolation, filters,
htmx fragments versus whole pages, retry (htmx and Post/Redirect/Get), bulk retry, API keys, audit,
and pinned query counts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from executions import filters, kinds, selectors, services
from executions.kinds.jobs import run as jobs_run
from executions.kinds.runs import run as runs_run
from executions.models import (
    ApiKey,
    AuditEvent,
    AutomationExecution,
    BulkRetry,
    FunctionExecution,
    Job,
    Run,
)
from tests.audit import retried_in

from .conftest import failed_automation, failed_function, failed_job, failed_run

pytestmark = pytest.mark.django_db

KINDS = ("function", "automation", "job", "workflow", "run")
HTMX = {"HTTP_HX_REQUEST": "true"}


def detail_url(kind: str, pk) -> str:
    return reverse("detail", kwargs={"kind": kind, "object_id": str(pk)})


def retry_url(kind: str, pk) -> str:
    return reverse("retry", kwargs={"kind": kind, "object_id": str(pk)})


def live_url(kind: str, pk) -> str:
    return reverse("live", kwargs={"kind": kind, "object_id": str(pk)})


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="row-([a-z]+-[^"]+)"', html)


# --- signing in, tenants --------------------------------------------------------------------------


def test_every_page_needs_sign_in(client: Client, cast) -> None:
    for url in (
        reverse("inbox"),
        reverse("groups"),
        detail_url("automation", cast.automation.pk),
        reverse("audit"),
        reverse("api_keys"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_sign_in_with_a_password_lands_on_the_inbox(client: Client, cast) -> None:
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b"<title>Sign in \xc2\xb7 Redrive</title>" in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": "console-test-pw"})
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox")
    wrong = Client().post(reverse("login"), {"username": "alice", "password": "nope"})
    assert wrong.status_code == 200
    assert b"Please enter a correct username and password" in wrong.content


def test_a_user_in_no_tenant_is_told_what_to_do(client: Client, cast) -> None:
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("nobody", password="x"))
    response = client.get(reverse("inbox"))
    assert response.status_code == 403
    assert b"You are not a member of any tenant" in response.content


def test_the_tenant_switcher_changes_what_the_inbox_shows(login, cast) -> None:
    client = login("maria")
    page = client.get(reverse("inbox")).content.decode()
    assert 'name="tenant"' in page  # maria is in two tenants
    assert "Globex secret rule" not in page  # acme first (alphabetical)
    response = client.post(reverse("switch_tenant"), {"tenant": "globex"})
    assert response.status_code == 302
    page = client.get(reverse("inbox")).content.decode()
    assert "Globex secret rule" in page
    assert "Sync CRM contact" not in page
    # a tenant she is not in does not exist for her
    assert client.post(reverse("switch_tenant"), {"tenant": "initech"}).status_code == 404


def test_single_tenant_users_see_no_switcher(login, cast) -> None:
    assert 'name="tenant"' not in login("alice").get(reverse("inbox")).content.decode()


# --- tenant isolation -----------------------------------------------------------------------------


def test_the_inbox_never_shows_another_tenants_failures(login, cast) -> None:
    page = login("alice").get(reverse("inbox")).content.decode()
    assert "Globex secret rule" not in page
    assert str(cast.foreign.pk) not in page


@pytest.mark.parametrize("url_name", ["detail", "live", "retry"])
def test_another_tenants_item_is_404_everywhere(login, cast, url_name) -> None:
    client = login("alice")
    url = reverse(url_name, kwargs={"kind": "automation", "object_id": str(cast.foreign.pk)})
    response = client.post(url) if url_name == "retry" else client.get(url, **HTMX)
    assert response.status_code == 404
    cast.foreign.refresh_from_db()
    assert cast.foreign.status == "failed"  # untouched
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_missing_and_malformed_ids_are_404(login, cast, kind) -> None:
    client = login("alice")
    assert client.get(detail_url(kind, "00000000-0000-0000-0000-000000000000")).status_code == 404
    assert client.get(detail_url(kind, "not-an-id")).status_code == 404


def test_an_unknown_kind_is_404(login, cast) -> None:
    assert login("alice").get("/executions/bogus/123/").status_code == 404


# --- the inbox ------------------------------------------------------------------------------------


def test_the_inbox_lists_all_five_kinds_newest_first(login, cast) -> None:
    response = login("alice").get(reverse("inbox"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Failures · Redrive</title>" in page
    ids = row_ids(page)
    expected = {f"{k}-{cast.item(k).pk}" for k in KINDS} | {f"job-{cast.command_job.pk}"}
    assert set(ids) == expected
    # newest first: the run was created last, the function first
    assert ids[0] == f"run-{cast.run.pk}"
    assert ids[-1] == f"function-{cast.function.pk}"
    for name in ("sync-inventory", "Sync CRM contact", "package.install", "order-fulfilment"):
        assert name in page
    assert "connection reset by peer" in page
    assert 'hx-get="/chart/"' in page  # the chart loads after the list
    assert "6</strong> failures match" in page


def test_filter_by_kind_and_by_error_text(login, cast) -> None:
    client = login("alice")
    page = client.get(reverse("inbox"), {"kind": "job"}).content.decode()
    assert {i.split("-", 1)[0] for i in row_ids(page)} == {"job"}
    failed_automation(cast.acme, "Charge renewal")  # flaky again, but rename its error:
    AutomationExecution.objects.filter(automation_rule__name="Charge renewal").update(
        error_message="card declined: amount 7250 exceeds limit 5000"
    )
    page = client.get(reverse("inbox"), {"q": "card DECLINED"}).content.decode()
    assert len(row_ids(page)) == 1
    assert "Charge renewal" in page
    page = client.get(reverse("inbox"), {"name": "Sync CRM contact"}).content.decode()
    assert row_ids(page) == [f"automation-{cast.automation.pk}"]


def test_error_text_and_names_are_escaped_in_the_rows(login, cast) -> None:
    """Error messages come from the failing code and rule names from users: the row shows them as
    text, in its title attributes too, never as markup."""
    hostile = '"><script>alert(1)</script>&'
    AutomationExecution.objects.filter(pk=cast.automation.pk).update(error_message=hostile)
    cast.automation.automation_rule.__class__.objects.filter(
        pk=cast.automation.automation_rule_id
    ).update(name="<b>Sync</b>")

    page = login("alice").get(reverse("inbox")).content.decode()

    assert "<script>" not in page
    assert "<b>Sync</b>" not in page
    escaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;"
    assert f'<span class="clamp" title="{escaped}">{escaped}</span>' in page
    assert "&lt;b&gt;Sync&lt;/b&gt;</a>" in page


def test_a_time_range_filter_hides_older_failures(login, cast) -> None:
    AutomationExecution.objects.filter(pk=cast.automation.pk).update(
        updated_at=timezone.now() - timedelta(days=3)
    )
    page = login("alice").get(reverse("inbox"), {"range": "24h"}).content.decode()
    assert f"automation-{cast.automation.pk}" not in row_ids(page)
    assert len(row_ids(page)) == 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "cron"}, "kind must be one of function, automation, job, workflow, run"),
        ({"range": "2w"}, "range must be one of 1h, 24h, 7d, 30d"),
        ({"since": "yesterday"}, "since must be an ISO 8601 date-time"),
        ({"fingerprint": "xyz"}, "fingerprint must be 16 lowercase hex characters"),
        ({"cursor": "bm9wZQ"}, "cursor is not a cursor this server gave out"),
    ],
)
def test_bad_filter_values_get_a_clear_message_not_a_500(login, cast, query, message) -> None:
    response = login("alice").get(reverse("inbox"), query)
    assert response.status_code == 400
    page = response.content.decode()
    assert f"Filter not applied: {message}" in page
    assert "<title>Failures · Redrive</title>" in page


def test_a_bad_filter_from_htmx_still_swaps_in_its_message(login, cast) -> None:
    response = login("alice").get(reverse("inbox"), {"range": "2w"}, **HTMX)
    assert response.status_code == 200  # htmx swaps 2xx only
    assert "Filter not applied: range must be one of 1h, 24h, 7d, 30d" in response.content.decode()


def test_htmx_gets_the_results_fragment_and_a_history_restore_the_page(login, cast) -> None:
    client = login("alice")
    fragment = client.get(reverse("inbox"), {"kind": "run"}, **HTMX)
    assert fragment.status_code == 200
    assert "HX-Request" in fragment["Vary"]
    body = fragment.content.decode()
    assert body.lstrip().startswith('<section id="results"')
    assert "<html" not in body
    assert row_ids(body) == [f"run-{cast.run.pk}"]
    restore = client.get(reverse("inbox"), **HTMX, HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in restore.content.decode()
    full = client.get(reverse("inbox"))
    assert "<html" in full.content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in full.content.decode()


def test_every_page_and_api_list_answers_after_retried_jobs_and_runs_fail_again(
    login, cast
) -> None:
    """A job and a run retried twice, each new attempt failing again: the inbox counts the
    chain (the clone of a clone is attempt 3), and no page or list of any kind answers 500."""
    from executions.models import Run
    from executions.tenancy import Actor

    job = jobs_run.create_job(
        cast.acme, {"type": "backup.run", "data": {"handler": "fail"}}, "web-1"
    )
    jobs_run.execute(str(job.pk), "web-1")
    nodes = {"root": {"dependsOn": []}, "boom": {"handler": "fail", "dependsOn": ["root"]}}
    run = runs_run.start_run(
        cast.acme, {"nodes": nodes, "triggerNodeIds": ["root"]}, workflow_id="wf_always_fails"
    )
    runs_run.execute(run.pk)
    alice = Actor.for_user(cast.users["alice"], cast.acme, source="console")
    newest = {"job": str(job.pk), "run": str(run.pk)}
    for _ in range(2):
        newest["job"] = services.retry_one(alice, "job", newest["job"]).new_id
        jobs_run.execute(newest["job"], "web-1")
        newest["run"] = services.retry_one(alice, "run", newest["run"]).new_id
        runs_run.execute(newest["run"])
    assert Job.objects.get(pk=newest["job"]).status == "failed"
    assert Run.objects.get(pk=newest["run"]).status == "failure"

    client = login("alice")
    pages = [reverse("inbox"), reverse("groups"), reverse("chart"), reverse("audit")]
    pages += [reverse("inbox") + f"?kind={kind}" for kind in KINDS]
    for kind, pk in newest.items():
        pages.append(detail_url(kind, pk))
        assert client.get(live_url(kind, pk), **HTMX).status_code in (200, 286)
    project = cast.acme.workflows_project
    pages += [
        "/api/failures",
        "/api/failures?group=fingerprint",
        f"/api/functions/projects/{cast.acme.functions_project_id}/functions/"
        f"{cast.function.function_id}/logs",
        "/api/v1/automation/executions",
        "/job",
        f"/api/v1/projects/{project}/workflows/executions",
        "/v1/runs",
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url

    rows = client.get(reverse("inbox"), {"kind": "job"}).content.decode()
    assert f"row-job-{newest['job']}" in rows
    inbox = selectors.inbox(cast.acme, filters.parse({"kind": "job,run"}))
    attempts = {str(row.obj.pk): row.attempts for row in inbox.rows}
    assert attempts[newest["job"]] == 3
    assert attempts[newest["run"]] == 3


def test_pagination_walks_every_failure_once(login, cast) -> None:
    for i in range(57):
        failed_automation(cast.acme, f"rule {i}")
    client = login("alice")
    first = client.get(reverse("inbox")).content.decode()
    ids = row_ids(first)
    assert len(ids) == 50
    cursor = re.search(r'cursor=([A-Za-z0-9_-]+)"', first).group(1)
    with CaptureQueriesContext(connection) as queries:
        more = client.get(reverse("inbox"), {"cursor": cursor}, **HTMX, HTTP_HX_TARGET="more-rows")
    assert more.status_code == 200
    # Appending rows does not count the matches again (the count is not on the fragment).
    assert not [q for q in queries if "COUNT(" in q["sql"].upper() or "failurecount" in q["sql"]]
    rest = row_ids(more.content.decode())
    assert "<section" not in more.content.decode()  # only rows, appended in place
    assert len(rest) == 6 + 57 - 50
    assert not set(ids) & set(rest)
    assert "Load older failures" not in more.content.decode()


def test_pages_walk_failures_of_one_instant_once_each(cast) -> None:
    """Failures written at the same instant (a bulk retry's clones, a batch) are ordered by id
    within their kind and across kinds by kind: the cursor continues exactly after the last one."""
    for i in range(12):
        failed_automation(cast.acme, f"rule {i}")
        failed_job(cast.acme)
    instant = timezone.now() - timedelta(minutes=5)
    AutomationExecution.objects.filter(tenant=cast.acme).update(updated_at=instant)
    Job.objects.filter(tenant=cast.acme).update(updated_at=instant)
    flt = filters.parse({"kind": "automation,job"})
    expected = {
        f"automation-{pk}"
        for pk in AutomationExecution.objects.filter(tenant=cast.acme, status="failed").values_list(
            "pk", flat=True
        )
    } | {
        f"job-{pk}"
        for pk in Job.objects.filter(tenant=cast.acme, status="failed").values_list("pk", flat=True)
    }
    seen, cursor = [], None
    while True:
        page = selectors.inbox(cast.acme, flt, cursor=cursor, limit=5)
        seen += [f"{row.kind}-{row.id}" for row in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen))
    assert set(seen) == expected


def test_the_inbox_query_count_does_not_grow_with_rows(
    login, cast, django_assert_num_queries, django_assert_max_num_queries, sync_worker
) -> None:
    client = login("alice")
    client.get(reverse("inbox"))  # warm up (session, content types)
    # session, user, memberships, the actor's membership, an admin's disabled webhooks; then per
    # kind the page's keys, and per kind on the page (the five first; no delivery here) its rows;
    # and the count: on PostgreSQL folding and summing the failure counts, elsewhere one capped
    # count per kind.
    queries = (
        5 + len(kinds.KINDS) + 5 + (2 if connection.vendor == "postgresql" else len(kinds.KINDS))
    )
    with django_assert_num_queries(queries):
        client.get(reverse("inbox"))
    for i in range(8):
        failed_automation(cast.acme, f"rule {i}")
        failed_function(cast.acme, f"fn {i}")
        failed_job(cast.acme)
        failed_run(cast.acme)
    # retried rows (retry reasons, "retried as" links) and rows that are retries themselves
    # (attempt numbers) must not cost a query each either: at most one per kind with chains.
    client.post(retry_url("function", cast.function.pk))
    for job in Job.objects.filter(status="failed")[:3]:
        client.post(retry_url("job", job.pk))

    for job in Job.objects.filter(status="unprocessed"):
        jobs_run.execute(str(job.pk), job.target_hostname)  # fails again: flaky, new chain
    with django_assert_max_num_queries(queries + 2):
        # All of them: the retries that succeeded resolved their originals (not open any more).
        page = client.get(reverse("inbox"), {"state": "all"}).content.decode()
    assert len(row_ids(page)) == 6 + 4 * 8
    # Their retries are final (so they may be retried again), and each row links its latest.
    assert page.count('title="Retried as ') == 1 + 3


def test_the_chart_follows_the_filter_and_counts_in_a_few_queries(
    login, cast, django_assert_max_num_queries
) -> None:
    client = login("alice")
    response = client.get(reverse("chart"), {"kind": "job"})
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<figure id="chart"')
    # The cast failed a moment ago: "any time" is from the first failure, a bar per minute.
    assert "<strong>2</strong> failures from " in page and "one bar per minute" in page
    assert page.count('class="seg kind-job"') == 1
    assert "kind-automation" not in page.split("</figcaption>")[1]
    # sign-in (4) + the first failure per kind (5) + the counts: one query per kind (SQLite), or
    # on PostgreSQL the hourly rollup plus the two partial hours at the window's edges per kind
    with django_assert_max_num_queries(4 + 5 + 1 + 2 * 5):
        everything = client.get(reverse("chart")).content.decode()
    failed = sum(
        meta.model.objects.filter(tenant=cast.acme, status__in=meta.failed_statuses).count()
        for meta in kinds.KINDS
    )
    assert failed > 2
    assert f"<strong>{failed}</strong> failures from " in everything
    per_day = client.get(reverse("chart"), {"range": "7d"}).content.decode()
    assert "one bar per day" in per_day
    assert client.get(reverse("chart"), {"kind": "nope"}).status_code == 400


def test_group_by_error_has_one_row_per_fingerprint(login, cast) -> None:
    for i in range(3):
        failed_automation(cast.acme, f"rule {i}")
    response = login("alice").get(reverse("groups"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Failures by error · Redrive</title>" in page
    fp = cast.automation.fingerprint
    assert page.count(f"fingerprint={fp}") == 2  # the group link and "retry this group"
    # The flaky handler's "connection reset by peer" of the other kinds is the same group.
    total = sum(
        meta.model.objects.filter(
            tenant=cast.acme, status__in=meta.failed_statuses, fingerprint=fp
        ).count()
        for meta in kinds.KINDS
    )
    assert total > 4
    assert re.search(rf'data-label="Count" class="num"><strong>{total}</strong>', page)
    assert "Retry this group" in page


def test_group_by_error_answers_htmx_with_its_results_fragment(login, cast) -> None:
    response = login("alice").get(reverse("groups"), {"kind": "run", "status": ""}, **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="results"')
    assert "<html" not in body
    assert response["HX-Push-Url"] == "/groups/?kind=run"  # the empty fields left out
    assert body.count('data-label="Count"') == 1


def test_group_by_error_for_a_viewer_has_no_retry(login, cast) -> None:
    page = login("bob").get(reverse("groups")).content.decode()
    assert "Retry this group" not in page


# --- detail ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_kinds_detail_page_shows_error_stack_and_its_own_view(login, cast, kind) -> None:
    obj = cast.item(kind)
    response = login("alice").get(detail_url(kind, obj.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        f"<title>{kind.capitalize() if kind in ('job', 'run') else ''}" in page or "<title>" in page
    )
    assert "connection reset by peer" in page
    assert "Traceback (most recent call last)" in page
    assert 'class="btn primary retry"' in page
    own = {
        "function": "Invoked by",
        "automation": "← failed here",
        "job": "Event timeline",
        "workflow": "Tasks",
        "run": "Nodes",
    }[kind]
    assert own in page


def test_the_detail_page_query_count_is_fixed(login, cast, django_assert_max_num_queries) -> None:
    client = login("alice")
    for kind in KINDS:
        with django_assert_max_num_queries(12):
            assert client.get(detail_url(kind, cast.item(kind).pk)).status_code == 200


def test_lineage_links_both_ways_after_a_function_retry(login, cast, sync_worker) -> None:
    client = login("alice")
    client.post(retry_url("function", cast.function.pk))
    new = FunctionExecution.objects.get(retry_of=cast.function)
    original_page = client.get(detail_url("function", cast.function.pk)).content.decode()
    assert f'href="{detail_url("function", new.pk)}"' in original_page
    new_page = client.get(detail_url("function", new.pk)).content.decode()
    assert f'href="{detail_url("function", cast.function.pk)}"' in new_page
    assert "user:alice" in new_page  # the audit of the chain
    assert "#2" in new_page and "#1" in new_page


# --- retry ----------------------------------------------------------------------------------------


def test_htmx_retry_swaps_the_row_which_then_polls_itself(login, cast) -> None:
    client = login("alice")
    response = client.post(retry_url("automation", cast.automation.pk), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="row-automation-{cast.automation.pk}"')
    assert "Retry queued: the execution is pending" in body
    assert 'hx-trigger="every 1s"' in body
    assert ">pending<" in body
    audit = AuditEvent.objects.get()
    assert (audit.actor, audit.source, audit.kind, audit.ip) == (
        "user:alice",
        "console",
        "automation",
        "127.0.0.1",
    )
    # while pending the row answers 200 (keep polling) ...
    assert client.get(live_url("automation", cast.automation.pk), **HTMX).status_code == 200
    # ... and 286 (stop polling) once the attempt is final
    AutomationExecution.objects.filter(pk=cast.automation.pk).update(status="completed")
    final = client.get(live_url("automation", cast.automation.pk), **HTMX)
    assert final.status_code == 286
    assert 'hx-trigger="every 1s"' not in final.content.decode()


def test_a_second_retry_is_refused_with_the_reason(login, cast) -> None:
    client = login("alice")
    client.post(retry_url("automation", cast.automation.pk), **HTMX)
    second = client.post(retry_url("automation", cast.automation.pk), **HTMX)
    assert second.status_code == 200
    assert (
        "Not retried: Only failed executions can be retried (status is pending)"
        in second.content.decode()
    )
    assert AuditEvent.objects.count() == 1


def test_a_function_retry_runs_now_and_reports_the_result(login, cast, sync_worker) -> None:
    body = login("alice").post(retry_url("function", cast.function.pk), **HTMX).content.decode()
    new = FunctionExecution.objects.get(retry_of=cast.function)
    assert new.status == "success"  # flaky succeeds on its second attempt
    assert f"Retried as execution {new.pk}: success" in body
    # The row links the retry; its retry being final, it may be retried again (issue 16.3).
    assert f'title="Retried as {new.pk}"' in body and 'class="btn retry"' in body


KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def test_a_retry_button_submitted_twice_retries_once(login, cast, sync_worker) -> None:
    # The function's retry runs now and succeeds, so without the button's key the second
    # submit would be a second, deliberate retry (issue 16.3): the key makes it the same one.
    client = login("alice")
    page = client.get(detail_url("function", cast.function.pk)).content.decode()
    [key] = KEY.findall(page)
    url = retry_url("function", cast.function.pk)
    first = client.post(url, {"idempotency_key": key}, **HTMX, HTTP_HX_TARGET="status-box")
    double = client.post(url, {"idempotency_key": key}, **HTMX, HTTP_HX_TARGET="status-box")
    new = FunctionExecution.objects.get(retry_of=cast.function)
    for response in (first, double):
        assert f"Retried as execution {new.pk}: success" in response.content.decode()
    assert AuditEvent.objects.filter(target_id=cast.function.pk, action="retry").count() == 1
    # The re-rendered button is another one: its key is new, and it retries again.
    [next_key] = KEY.findall(double.content.decode())
    assert next_key != key
    client.post(url, {"idempotency_key": next_key}, **HTMX, HTTP_HX_TARGET="status-box")
    assert FunctionExecution.objects.filter(retry_of=cast.function).count() == 2


def test_an_inbox_row_retry_resent_without_htmx_retries_once(login, cast, sync_worker) -> None:
    client = login("alice")
    page = client.get(reverse("inbox")).content.decode()
    row = re.search(rf'<tr id="row-function-{cast.function.pk}".*?</tr>', page, re.S).group(0)
    keys = KEY.findall(page)
    [key] = KEY.findall(row)
    assert len(keys) == len(set(keys)) > 1  # one per rendered button
    url = retry_url("function", cast.function.pk)
    for _ in range(2):  # a resent form
        response = client.post(url, {"idempotency_key": key, "next": reverse("inbox")})
        assert response.status_code == 302
    assert FunctionExecution.objects.filter(retry_of=cast.function).count() == 1
    assert AuditEvent.objects.filter(target_id=cast.function.pk, action="retry").count() == 1


def test_a_bulk_retry_confirmed_twice_starts_once(login, cast) -> None:
    client = login("alice")
    page = client.get(reverse("bulk_preview"), {"mode": "filter", "kind": "job"}).content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page))
    assert fields["idempotency_key"]
    first = client.post(reverse("bulk_start"), fields)
    double = client.post(reverse("bulk_start"), fields)
    bulk = BulkRetry.objects.get()
    assert first["Location"] == double["Location"] == reverse("bulk", kwargs={"bulk_id": bulk.pk})


def test_a_non_htmx_retry_redirects_with_a_message(login, cast) -> None:
    client = login("alice")
    response = client.post(retry_url("run", cast.run.pk))
    assert response.status_code == 302
    assert response["Location"] == detail_url("run", cast.run.pk)
    page = client.get(response["Location"]).content.decode()
    new_id = AuditEvent.objects.get().new_target_id
    assert f"Retried as run {new_id}" in page
    # a safe `next` is honoured, a foreign one is not
    assert client.post(retry_url("workflow", cast.workflow.pk), {"next": "/?kind=workflow"})[
        "Location"
    ] == ("/?kind=workflow")
    assert client.post(retry_url("job", cast.job.pk), {"next": "https://evil.example/"})[
        "Location"
    ] == detail_url("job", cast.job.pk)


def test_a_job_retry_goes_to_the_chosen_host(login, cast) -> None:
    client = login("alice")
    body = client.post(
        retry_url("job", cast.job.pk), {"target_hostname": "web-9"}, **HTMX
    ).content.decode()
    new = Job.objects.get(retry_of=cast.job)
    assert new.target_hostname == "web-9"
    assert f"Retried as job {new.pk} on web-9" in body
    bad = client.post(
        retry_url("job", cast.command_job.pk), {"target_hostname": "bad host!"}, **HTMX
    ).content.decode()
    assert "target_hostname must be a valid hostname" in bad
    assert not Job.objects.filter(retry_of=cast.command_job).exists()


def test_a_jobs_attempt_took_from_its_run_not_from_its_wait_for_the_host(login, cast) -> None:
    # The worker that ran the job recorded when it took it; the job was made before that.
    job = cast.job
    assert job.created_at <= job.started_at <= job.finished_at
    # A job that waited ten minutes for its host and then ran for two seconds.
    Job.objects.filter(pk=job.pk).update(
        created_at=job.finished_at - timedelta(minutes=10),
        started_at=job.finished_at - timedelta(seconds=2),
    )
    never_ran = jobs_run.create_job(cast.acme, {"type": "package.install", "data": {}}, "gone-1")
    Job.objects.filter(pk=never_ran.pk).update(
        status="failed", finished_at=never_ran.created_at + timedelta(minutes=5)
    )
    client = login("alice")
    page = client.get(detail_url("job", job.pk)).content.decode()
    attempts = page[page.index('id="attempts"') :]
    assert "10 min ago</time> · took 2.0 s" in attempts
    page = client.get(detail_url("job", never_ran.pk)).content.decode()
    attempts = page[page.index('id="attempts"') :]
    assert "took" not in attempts[: attempts.index("</li>")]


def test_an_operator_without_command_execute_sees_why_and_cannot_post(login, cast) -> None:
    client = login("dave")
    page = client.get(reverse("inbox")).content.decode()
    row = page[page.index(f'id="row-job-{cast.command_job.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Needs permission command:execute" in row
    assert "Retry</button>" not in row
    assert client.post(retry_url("job", cast.command_job.pk), **HTMX).status_code == 403
    assert not Job.objects.filter(retry_of=cast.command_job).exists()


def test_a_viewer_sees_no_retry_controls_and_a_forged_post_is_403(login, cast) -> None:
    client = login("bob")
    page = client.get(reverse("inbox")).content.decode()
    assert "Retry</button>" not in page
    assert 'name="sel"' not in page
    assert "Retry all" not in page
    assert "Read-only role" in page
    detail = client.get(detail_url("automation", cast.automation.pk)).content.decode()
    assert "Retry</button>" not in detail
    for kind in KINDS:
        assert client.post(retry_url(kind, cast.item(kind).pk), **HTMX).status_code == 403
        assert client.post(retry_url(kind, cast.item(kind).pk)).status_code == 403
    assert client.post(reverse("bulk_start"), {"mode": "filter"}).status_code == 403
    assert client.get(reverse("bulk_preview"), {"mode": "filter"}).status_code == 403
    assert not AuditEvent.objects.exists()
    assert not BulkRetry.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(cast) -> None:
    from django.contrib.auth import get_user_model

    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="alice"))
    assert client.post(retry_url("automation", cast.automation.pk), **HTMX).status_code == 403
    assert not AuditEvent.objects.exists()
    page = client.get(reverse("inbox"))
    token = page.cookies["csrftoken"].value
    ok = client.post(retry_url("automation", cast.automation.pk), HTTP_X_CSRFTOKEN=token, **HTMX)
    assert ok.status_code == 200


def test_live_without_htmx_goes_to_the_detail_page(login, cast) -> None:
    response = login("alice").get(live_url("run", cast.run.pk))
    assert response.status_code == 302
    assert response["Location"] == detail_url("run", cast.run.pk)


def test_retry_from_the_detail_page_swaps_the_status_box(login, cast) -> None:
    response = login("alice").post(
        retry_url("workflow", cast.workflow.pk), **HTMX, HTTP_HX_TARGET="status-box"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="status-box"')
    assert "Workflow resumed from its failure points" in body
    assert ">RUNNING<" in body


# --- bulk -----------------------------------------------------------------------------------------


def test_retry_all_matching_previews_then_runs_and_reports(login, cast) -> None:
    client = login("dave")  # an operator: the command job is not theirs to retry
    preview = client.get(reverse("bulk_preview"), {"mode": "filter", "kind": "job"})
    assert preview.status_code == 200
    page = preview.content.decode()
    assert (
        '<strong id="will-retry">1</strong> will be retried, <strong>1</strong> will be skipped'
        in page
    )
    assert "needs permission command:execute" in page.lower()
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z]+)" value="([^"]*)">', page))
    assert hidden["mode"] == "filter"
    assert not BulkRetry.objects.exists()  # a preview changes nothing
    started = client.post(reverse("bulk_start"), hidden)
    assert started.status_code == 302
    bulk = BulkRetry.objects.get()
    assert started["Location"] == reverse("bulk", kwargs={"bulk_id": bulk.pk})
    progress = client.get(started["Location"])
    assert progress.status_code == 200
    assert 'hx-trigger="every 1s"' in progress.content.decode()
    services.run_bulk_retry(str(bulk.pk))  # what the worker's task does
    final = client.get(started["Location"], **HTMX)
    assert final.status_code == 286
    body = final.content.decode()
    assert "Summary" in body
    assert '<strong id="bulk-done">1</strong> of 1 retried' in body
    assert Job.objects.filter(retry_of=cast.job).exists()
    assert not Job.objects.filter(retry_of=cast.command_job).exists()


def test_retry_selected_takes_exactly_the_picked_rows(login, cast) -> None:
    client = login("alice")
    picked = [f"automation:{cast.automation.pk}", f"run:{cast.run.pk}"]
    page = client.post(reverse("bulk_preview"), {"sel": picked}).content.decode()
    assert '<strong id="will-retry">2</strong> will be retried' in page
    client.post(reverse("bulk_start"), {"mode": "ids", "sel": picked})
    bulk = BulkRetry.objects.get()
    assert bulk.selection == {
        "ids": {"automation": [str(cast.automation.pk)], "run": [str(cast.run.pk)]}
    }
    services.run_bulk_retry(str(bulk.pk))
    bulk.refresh_from_db()
    assert (bulk.status, bulk.done) == ("finished", 2)
    assert {e.kind for e in retried_in(bulk)} == {"automation", "run"}


def test_an_empty_selection_is_sent_back_with_a_message(login, cast) -> None:
    client = login("alice")
    response = client.post(reverse("bulk_preview"), {})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Select at least one failure to retry" in page


def test_a_bulk_retry_can_be_cancelled_before_it_starts(login, cast) -> None:
    client = login("alice")
    client.post(reverse("bulk_start"), {"mode": "filter", "kind": "automation"})
    bulk = BulkRetry.objects.get()
    response = client.post(reverse("bulk_cancel", kwargs={"bulk_id": bulk.pk}), **HTMX)
    assert response.status_code == 200
    assert ">cancelled<" in response.content.decode()
    bulk.refresh_from_db()
    assert bulk.status == "cancelled"


def test_a_cancel_that_comes_after_the_bulk_finished_says_it_came_too_late(login, cast) -> None:
    client = login("alice")
    client.post(reverse("bulk_start"), {"mode": "filter", "kind": "automation"})
    bulk = BulkRetry.objects.get()
    services.run_bulk_retry(str(bulk.pk))
    url = reverse("bulk_cancel", kwargs={"bulk_id": bulk.pk})

    response = client.post(url, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Cancel came too late: the bulk retry had already finished" in body
    assert ">finished<" in body and "Summary" in body
    # Without htmx: Post/Redirect/Get, and the page says it.
    response = client.post(url)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Cancel came too late: the bulk retry had already finished" in page
    bulk.refresh_from_db()
    assert (bulk.status, bulk.cancel_requested) == ("finished", False)


def test_the_summary_names_what_could_not_be_retried_and_why(login, cast) -> None:
    client = login("alice")
    picked = [f"automation:{cast.automation.pk}", f"run:{cast.run.pk}"]
    client.post(reverse("bulk_start"), {"mode": "ids", "sel": picked})
    bulk = BulkRetry.objects.get()
    # Retried on its own after the bulk was planned, before it ran.
    client.post(retry_url("run", cast.run.pk))
    retried_by = Run.objects.get(source_run=cast.run).pk
    services.run_bulk_retry(str(bulk.pk))

    page = client.get(reverse("bulk", kwargs={"bulk_id": bulk.pk})).content.decode()
    assert (
        "<strong>1</strong> retried, <strong>0</strong> skipped, <strong>1</strong> failed" in page
    )
    failures = re.search(r'<ul id="bulk-failures">(.*?)</ul>', page).group(1)
    assert f">{cast.run.pk}</a>: Run {cast.run.pk} was already retried by run {retried_by}" in (
        failures
    )
    assert str(cast.automation.pk) not in failures


def test_another_tenants_bulk_retry_is_404(login, cast) -> None:
    carol = services.start_bulk_retry(
        services.Actor.for_user(cast.users["carol"], cast.globex, source="console"),
        {"filter": services.filters.parse({})},
    )
    client = login("alice")
    assert client.get(reverse("bulk", kwargs={"bulk_id": carol.pk})).status_code == 404
    assert client.post(reverse("bulk_cancel", kwargs={"bulk_id": carol.pk})).status_code == 404


# --- API keys and audit ---------------------------------------------------------------------------


def test_an_admin_creates_a_key_sees_it_once_and_revokes_it(login, cast) -> None:
    client = login("alice")
    created = client.post(
        reverse("api_keys"), {"name": "nightly", "permissions": ["automation:read", "jobs:write"]}
    )
    assert created.status_code == 302
    page = client.get(reverse("api_keys")).content.decode()
    key = re.search(r'<pre class="mono key" id="new-key">([^<]+)</pre>', page).group(1)
    api_key = ApiKey.objects.get(name="nightly")
    assert ApiKey.objects.is_valid(key)
    assert api_key.permissions == ["automation:read", "jobs:write"]
    assert (api_key.tenant, api_key.user) == (cast.acme, cast.users["alice"])
    assert api_key.prefix in page
    again = client.get(reverse("api_keys")).content.decode()
    assert key not in again  # shown once
    revoked = client.post(reverse("revoke_api_key", kwargs={"key_id": api_key.pk}))
    assert revoked.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked
    assert not ApiKey.objects.is_valid(key)


def test_keys_are_for_admins_and_their_own_tenant_only(login, cast) -> None:
    foreign, _ = ApiKey.objects.create_key(name="globex", tenant=cast.globex, permissions=[])
    assert login("dave").get(reverse("api_keys")).status_code == 403
    assert login("bob").get(reverse("api_keys")).status_code == 403
    client = login("alice")
    assert "globex" not in client.get(reverse("api_keys")).content.decode()
    assert client.post(reverse("revoke_api_key", kwargs={"key_id": foreign.pk})).status_code == 404
    foreign.refresh_from_db()
    assert not foreign.revoked
    bad = client.post(reverse("api_keys"), {"name": "", "permissions": ["nope"]})
    assert bad.status_code == 400
    assert not ApiKey.objects.filter(tenant=cast.acme).exists()


def test_the_audit_lists_who_retried_what_and_filters(login, cast) -> None:
    client = login("alice")
    client.post(retry_url("automation", cast.automation.pk))
    client.post(retry_url("run", cast.run.pk))
    page = client.get(reverse("audit")).content.decode()
    assert "<title>Audit · Redrive</title>" in page
    assert page.count('<td data-label="Who" class="mono">user:alice</td>') == 2
    only_runs = client.get(reverse("audit"), {"kind": "run"}).content.decode()
    assert str(cast.run.pk)[:12] in only_runs
    assert str(cast.automation.pk)[:12] not in only_runs
    assert client.get(reverse("audit"), {"kind": "nope"}).status_code == 400
    assert login("bob").get(reverse("audit")).status_code == 403


def test_the_audit_trail_is_shown_to_those_who_may_open_the_audit_page_only(login, cast) -> None:
    login("dave").post(retry_url("automation", cast.automation.pk))  # an operator retries
    for who, sees in (("alice", True), ("dave", True), ("bob", False)):
        client = login(who)
        detail = client.get(detail_url("automation", cast.automation.pk)).content.decode()
        audit = client.get(reverse("audit"))
        assert ('id="h-audit"' in detail) is sees, who
        assert ("user:dave" in detail) is sees, who
        assert audit.status_code == (200 if sees else 403), who
        assert ("user:dave" in audit.content.decode()) is sees, who


def test_a_browser_asking_for_favicon_ico_gets_the_consoles_icon(client) -> None:
    # A page without <head> (an HTMX fragment opened alone) makes the browser ask /favicon.ico.
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("console/favicon.svg")
