"""Triage through the API: GET /api/failures?state=..., ignore and reopen one failure or a group;
operators and admins may, viewers may not; another tenant's ids are 404; bad input a 400 naming
the field, changing nothing."""

from __future__ import annotations

import pytest

from executions import kinds
from executions.models import AuditEvent, FailureGroup, Job

pytestmark = pytest.mark.django_db


def listed(api, state: str | None = None) -> set[tuple[str, str]]:
    params = {"limit": 200, **({"state": state} if state else {})}
    r = api.get("/api/failures", params)
    assert r.status_code == 200, r.content
    return {(i["kind"], i["id"]) for i in r.json()["items"]}


def test_ignore_moves_a_failure_from_open_to_ignored_and_reopen_back(api, manifest):
    job = manifest["acme"]["jobs"]["failed"]
    assert ("job", job) in listed(api)
    assert ("job", job) not in listed(api, "ignored")

    r = api.post(f"/api/failures/job/{job}/ignore", {"reason": "known", "until": "again"})
    assert r.status_code == 200, r.content
    assert r.json() == {"kind": "job", "id": job, "state": "ignored", "until": None}
    assert ("job", job) not in listed(api)
    assert ("job", job) in listed(api, "ignored")
    assert ("job", job) in listed(api, "all")
    audit = AuditEvent.objects.get(action="ignore", target_id=job)
    assert (audit.source, audit.details["reason"], audit.status_before) == ("api", "known", "open")

    r = api.post(f"/api/failures/job/{job}/reopen")
    assert r.status_code == 200, r.content
    assert r.json()["state"] == "open"
    assert ("job", job) in listed(api)


def test_a_date_until_is_kept(api, manifest):
    job = manifest["acme"]["jobs"]["failed"]
    r = api.post(f"/api/failures/job/{job}/ignore", {"until": "2099-01-01T00:00:00Z"})
    assert r.status_code == 200, r.content
    assert r.json()["until"].startswith("2099-01-01T00:00:00")


def test_ignoring_a_group_ignores_its_open_failures(api, manifest):
    job = manifest["acme"]["jobs"]["failed"]
    fp = Job.objects.get(pk=job).fingerprint
    # An error group spans kinds and names: every open failure with its fingerprint.
    same = {
        (spec.name, str(pk))
        for spec in kinds.KINDS
        for pk in spec.model.objects.filter(
            fingerprint=fp,
            tenant__slug="acme",
            status__in=spec.failed_statuses,
            triage__in=("open", "regressed"),
        ).values_list("pk", flat=True)
    }
    assert ("job", job) in same

    r = api.post(f"/api/groups/{fp}/ignore", {"reason": "vendor outage"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["state"], body["reason"], body["failures"]) == (
        "ignored",
        "vendor outage",
        len(same),
    )
    assert not same & listed(api)
    groups = api.get("/api/failures", {"group": "fingerprint", "state": "ignored"}).json()["groups"]
    assert fp in {g["fingerprint"] for g in groups}

    r = api.post(f"/api/groups/{fp}/reopen")
    assert r.status_code == 200, r.content
    assert r.json()["state"] == "open"
    assert FailureGroup.objects.get(fingerprint=fp, tenant__slug="acme").state == "open"


def test_viewers_may_not(api, manifest):
    job = manifest["acme"]["jobs"]["failed"]
    fp = Job.objects.get(pk=job).fingerprint
    bob = api.as_("bob")
    assert bob.post(f"/api/failures/job/{job}/ignore", {}).status_code == 403
    assert bob.post(f"/api/groups/{fp}/ignore", {}).status_code == 403
    assert api.as_("dave").post(f"/api/failures/job/{job}/ignore", {}).status_code == 200
    assert not AuditEvent.objects.filter(actor__contains="bob").exists()


def test_another_tenants_failure_or_group_is_not_found(api, manifest):
    theirs = manifest["globex"]["jobs"]["failed"]
    r = api.post(f"/api/failures/job/{theirs}/ignore", {})
    assert r.status_code == 404
    assert Job.objects.get(pk=theirs).triage == "open"
    assert api.post("/api/groups/0123456789abcdef/ignore", {}).status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/failures/job/{job}/ignore", {"until": "next week"}, "until"),
        ("/api/failures/job/{job}/ignore", {"until": "2001-01-01T00:00:00Z"}, "until"),
        ("/api/failures/job/{job}/ignore", {"reason": 7}, "reason"),
        ("/api/failures/thing/{job}/ignore", {}, "kind"),
        ("/api/groups/XYZ/ignore", {}, "fingerprint"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(api, manifest, path, body, field):
    job = manifest["acme"]["jobs"]["failed"]
    r = api.post(path.format(job=job), body)
    assert r.status_code == 400, r.content
    assert r.json()["error"]["field"] == field
    assert Job.objects.get(pk=job).triage == "open"


def test_a_bad_state_is_a_400_naming_state(api):
    r = api.get("/api/failures", {"state": "closed"})
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "state"


def test_the_groups_page_renders_a_failure_without_a_fingerprint(manifest):
    from django.contrib.auth import get_user_model
    from django.test import Client

    Job.objects.filter(pk=manifest["acme"]["jobs"]["failed"]).update(fingerprint="")
    client = Client()
    client.force_login(get_user_model().objects.get(username="alice"))
    page = client.get("/groups/")
    assert page.status_code == 200
    assert "Ignore group" in page.content.decode()  # the groups with a fingerprint still have it
