"""Redrive's own endpoints: the failures inbox across kinds, bulk retry (preview, 202, progress,
rate limit), the token endpoint, create_api_key and the health checks."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from executions.models import ApiKey, BulkRetry, Job

from .conftest import ROOT_DIR

pytestmark = pytest.mark.django_db


def test_failures_lists_every_kind_newest_first_without_repeats(api, manifest):
    seen, cursor, kinds = [], None, set()
    previous = None
    while True:
        r = api.get("/api/failures", {"limit": 40, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        body = r.json()
        for item in body["items"]:
            assert set(item) == {
                "kind",
                "id",
                "status",
                "name",
                "error",
                "fingerprint",
                "state",
                "chain",
                "failedAt",
                "url",
                "retryUrl",
            }
            kinds.add(item["kind"])
            if previous is not None:
                assert item["failedAt"] <= previous
            previous = item["failedAt"]
        seen += [(i["kind"], i["id"]) for i in body["items"]]
        cursor = body["nextCursor"]
        if not cursor:
            break
    assert kinds == {"function", "automation", "job", "workflow", "run"}
    assert len(seen) == len(set(seen))
    acme = manifest["acme"]
    assert ("job", acme["jobs"]["failed"]) in seen
    assert ("run", acme["runs"]["failure"]) in seen
    assert ("job", manifest["globex"]["jobs"]["failed"]) not in seen
    assert ("job", acme["jobs"]["completed"]) not in seen


def test_failure_links_resolve(api, manifest):
    items = api.get("/api/failures", {"limit": 200}).json()["items"]
    for kind in ("function", "automation", "job", "workflow", "run"):
        item = next(i for i in items if i["kind"] == kind)
        assert api.get(item["url"]).status_code == 200, item


def test_failures_filter_by_kind_and_text_and_group(api, manifest):
    r = api.get("/api/failures", {"kind": "job", "q": "connection", "group": "fingerprint"})
    assert r.status_code == 200
    body = r.json()
    assert body["items"] and all(i["kind"] == "job" for i in body["items"])
    assert all("connection" in i["error"].lower() for i in body["items"])
    assert body["groups"] and sum(g["count"] for g in body["groups"]) >= len(body["items"])


def test_failures_list_the_consoles_inbox_and_share_its_cursor(api, manifest):
    from executions import filters, selectors
    from executions.models import Tenant

    acme = Tenant.objects.get(slug="acme")
    first = api.get("/api/failures", {"limit": 7}).json()
    page = selectors.inbox(acme, filters.parse({}), limit=7)
    assert [(i["kind"], i["id"]) for i in first["items"]] == [(r.kind, r.id) for r in page.rows]
    assert [i["error"] for i in first["items"]] == [r.error_message for r in page.rows]
    assert first["nextCursor"] == page.next_cursor

    # One cursor: what the API hands out continues the console's inbox, and the other way round.
    second = api.get("/api/failures", {"limit": 7, "cursor": page.next_cursor}).json()
    console = selectors.inbox(acme, filters.parse({}), cursor=first["nextCursor"], limit=7)
    assert [(i["kind"], i["id"]) for i in second["items"]] == [(r.kind, r.id) for r in console.rows]


def test_failure_groups_are_the_consoles_groups_per_kind(api, manifest):
    from executions import filters, selectors
    from executions.models import Tenant

    acme = Tenant.objects.get(slug="acme")
    groups = api.get("/api/failures", {"group": "fingerprint", "limit": 1}).json()["groups"]
    console = {
        (kind, g.fingerprint): part
        for g in selectors.group_by_fingerprint(acme, filters.parse({}), limit=None)
        for kind, part in g.by_kind.items()
    }
    assert 0 < len(groups) <= 50
    for g in groups:
        part = console[(g["kind"], g["fingerprint"])]
        assert (g["count"], g["error"]) == (part.count, part.sample)
    counts = [g["count"] for g in groups]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == max(part.count for part in console.values())


def test_a_cursor_from_another_filter_kind_still_answers(api, manifest):
    # A cursor names its kind; a page of other kinds continues by time alone, never a 500.
    job_cursor = api.get("/api/failures", {"kind": "job", "limit": 1}).json()["nextCursor"]
    r = api.get("/api/failures", {"kind": "run", "cursor": job_cursor})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "params, field",
    [
        ({"kind": "nope"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"fingerprint": "xyz"}, "fingerprint"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"group": "kind"}, "group"),
    ],
)
def test_bad_failure_filters_are_400_naming_the_field(api, manifest, params, field):
    r = api.get("/api/failures", params)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == field


def test_preview_then_bulk_retry(api, manifest):
    acme = manifest["acme"]
    ids = {
        "job": [acme["jobs"]["failed"], acme["jobs"]["processing"]],
        "run": [acme["runs"]["failure"]],
    }
    preview = api.post("/api/failures/retry", {"ids": ids, "dry_run": True})
    assert preview.status_code == 200
    body = preview.json()
    assert body["dry_run"] is True and body["total"] == 3 and body["will_retry"] == 2
    assert body["kinds"]["job"]["not_retryable"] == {"still in flight": 1}
    assert not Job.objects.filter(retry_of=acme["jobs"]["failed"]).exists()

    r = api.post("/api/failures/retry", {"ids": ids})
    assert r.status_code == 202
    bulk = r.json()
    assert bulk["status"] == "pending" and bulk["total"] == 2 and bulk["skipped"] == 1
    assert r["Location"] == bulk["url"] == f"/api/bulk-retries/{bulk['id']}"
    progress = api.get(bulk["url"])
    assert progress.status_code == 200 and progress.json()["id"] == bulk["id"]
    cancelled = api.post(f"{bulk['url']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelOutcome"] == "cancelled"


def test_a_cancel_after_the_bulk_finished_says_it_came_too_late(api, manifest):
    from executions import services

    bulk = api.post("/api/failures/retry", {"filter": {"kind": "run"}}).json()
    services.run_bulk_retry(bulk["id"])  # what the worker's task does

    r = api.post(f"{bulk['url']}/cancel")

    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["cancelRequested"], body["cancelOutcome"]) == (
        "finished",
        False,
        "too_late",
    )
    assert body["message"] == "Cancel came too late: the bulk retry had already finished"
    assert BulkRetry.objects.get(pk=bulk["id"]).status == "finished"


def test_bulk_retry_by_filter_preview(api, manifest):
    r = api.post("/api/failures/retry", {"filter": {"kind": "run"}, "dry_run": True})
    assert r.status_code == 200
    assert set(r.json()["kinds"]) == {"run"} and r.json()["will_retry"] >= 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "body"),
        ({"ids": {"job": ["x"]}, "filter": {}}, "ids"),
        ({"ids": {"nope": ["x"]}}, "ids"),
        ({"ids": {"job": "x"}}, "ids.job"),
        ({"ids": {"job": ["…"]}}, "ids.job"),
        ({"ids": {"job": ["…"]}, "dry_run": True}, "ids.job"),
        ({"ids": {"automation": ["not-a-uuid"], "run": ["run_1"]}}, "ids.automation"),
        ({"filter": {"kind": "nope"}}, "kind"),
        ({"filter": {"kind": "job"}, "dry_run": "yes"}, "dry_run"),
    ],
)
def test_bad_bulk_bodies_are_400_naming_the_field(api, manifest, body, field):
    from executions.models import BulkRetry

    r = api.post("/api/failures/retry", body)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == field
    assert not BulkRetry.objects.exists()  # and nothing was started


def test_bulk_retry_is_rate_limited_per_key(api, manifest, settings):
    settings.REDRIVE_BULK_RETRY_RATE = "2/min"
    body = {"filter": {"kind": "run"}, "dry_run": True}
    assert api.post("/api/failures/retry", body).status_code == 200
    assert api.post("/api/failures/retry", body).status_code == 200
    limited = api.post("/api/failures/retry", body)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    # Another caller has its own budget.
    assert api.as_("dave").post("/api/failures/retry", body).status_code == 200


def test_a_foreign_bulk_retry_is_404(api, manifest):
    carol = api.as_("carol")
    r = carol.post("/api/failures/retry", {"filter": {"kind": "run"}})
    assert r.status_code == 202
    other = api.get(r.json()["url"])
    assert other.status_code == 404
    assert other.json()["error"]["message"] == "Bulk retry not found"
    assert BulkRetry.objects.filter(pk=r.json()["id"]).exists()


# --- tokens and keys --------------------------------------------------------------------------


def test_a_token_from_username_and_password_works(api, manifest):
    anonymous = api.as_(None)
    r = anonymous.post(
        "/api/auth/token", {"username": "dave", "password": manifest["users"]["dave"]["password"]}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["tokenType"] == "Bearer" and body["tenant"] == "acme" and body["expiresIn"] > 0
    ok = anonymous.get("/v1/runs", headers={"Authorization": f"Bearer {body['token']}"})
    assert ok.status_code == 200


def test_a_wrong_password_is_401(api, manifest):
    r = api.as_(None).post("/api/auth/token", {"username": "dave", "password": "wrong"})
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "Invalid username or password."
    missing = api.as_(None).post("/api/auth/token", {"username": "dave"})
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "password"


def test_create_api_key_prints_a_working_key_once(api, manifest):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key", tenant="acme", name="ci", role="operator", stdout=out, stderr=err
    )
    key = out.getvalue().strip()
    stored = ApiKey.objects.get(prefix=key.split(".")[0])
    assert key not in stored.hashed_key and stored.tenant.slug == "acme"
    assert "not shown again" in err.getvalue()
    r = api.as_(None).post(
        f"/job/{manifest['acme']['jobs']['failed_command']}/retry", headers={"X-API-Key": key}
    )
    assert r.status_code == 403  # operator: no command:execute
    out = StringIO()
    call_command(
        "create_api_key",
        tenant="acme",
        name="ro",
        permissions="runs:read",
        stdout=out,
        stderr=StringIO(),
    )
    narrow = {"X-API-Key": out.getvalue().strip()}
    assert api.as_(None).get("/v1/runs", headers=narrow).status_code == 200
    assert api.as_(None).get("/job", headers=narrow).status_code == 403


@pytest.mark.parametrize(
    "options, message",
    [
        ({"tenant": "nope", "name": "x", "role": "admin"}, "No tenant 'nope'"),
        ({"tenant": "acme", "name": "x", "permissions": "runs:fly"}, "Unknown permission"),
        ({"tenant": "acme", "name": "x", "role": "admin", "user": "carol"}, "No user 'carol'"),
    ],
)
def test_create_api_key_refuses_bad_input(manifest, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", stdout=StringIO(), stderr=StringIO(), **options)


# --- health -------------------------------------------------------------------------------------


def test_health_reports_the_database(api, manifest):
    r = api.as_(None).get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok"}


def test_liveness_touches_no_database(api, manifest, django_assert_num_queries):
    with django_assert_num_queries(0):
        r = api.as_(None).get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_health_is_503_when_the_database_is_unreachable():
    # A real web process configuration whose database does not answer (nothing listens on
    # port 1): no mock.
    script = (
        "import django; django.setup();"
        "from django.test.utils import setup_test_environment; setup_test_environment();"
        "from django.test import Client;"
        "r = Client().get('/health'); print(r.status_code, r.content.decode())"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DEBUG": "1",
        "LOG_LEVEL": "CRITICAL",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '503 {"status":"unavailable","database":"unavailable"}'
