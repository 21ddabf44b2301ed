"""Seed 002 (jobs): retry clones a finished job (201); errors as {"error", "details", "code"}."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions.kinds.jobs import run as jobs_run
from executions.models import Job, WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_it_clones_a_failed_job(api, manifest):
    pk = manifest["acme"]["jobs"]["failed"]
    r = api.post(f"/job/{pk}/retry", {"target_hostname": "worker-7.example.com"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {"job_id", "status", "revision", "timestamp"}
    assert body["status"] == "unprocessed" and body["revision"] == 1
    assert body["job_id"] != pk
    clone = Job.objects.get(pk=body["job_id"])
    original = Job.objects.get(pk=pk)
    assert clone.retry_of_id == original.pk
    assert clone.operation == original.operation
    assert clone.target_hostname == "worker-7.example.com"
    assert body["timestamp"] == clone.created_at.isoformat().replace("+00:00", "Z")
    assert original.status == "failed" and original.error_message
    assert original.events.filter(type="retried", data__new_job_id=body["job_id"]).exists()


def test_the_body_is_optional_and_defaults_to_any_host(api, manifest):
    r = api.post(f"/job/{manifest['acme']['jobs']['completed']}/retry")
    assert r.status_code == 201
    assert Job.objects.get(pk=r.json()["job_id"]).target_hostname == "_any"


@pytest.mark.parametrize("hostname", ["bad host", "-x", "", 42, None, "a" * 300])
def test_an_invalid_hostname_is_a_400(api, manifest, hostname):
    r = api.post(f"/job/{manifest['acme']['jobs']['failed']}/retry", {"target_hostname": hostname})
    assert r.status_code == 400
    assert r.json() == {
        "error": "target_hostname must be a valid hostname",
        "details": "invalid field: target_hostname",
        "code": 400,
    }


def test_a_body_that_is_not_an_object_is_a_400(api, manifest):
    r = api.post(f"/job/{manifest['acme']['jobs']['failed']}/retry", ["x"])
    assert r.status_code == 400
    assert r.json()["error"] == "Request body must be a JSON object"


def test_a_job_in_flight_is_a_400(api, manifest):
    r = api.post(f"/job/{manifest['acme']['jobs']['processing']}/retry")
    assert r.status_code == 400
    assert r.json() == {
        "error": "Job is still in flight (status processing)",
        "details": "status is processing",
        "code": 400,
    }


def test_the_operator_may_not_rerun_a_command(api, manifest):
    pk = manifest["acme"]["jobs"]["failed_command"]
    r = api.as_("dave").post(f"/job/{pk}/retry")
    assert r.status_code == 403
    assert r.json() == {
        "error": "Missing permission command:execute",
        "details": "Missing permission command:execute",
        "code": 403,
    }
    assert not Job.objects.filter(retry_of=pk).exists()
    # The admin holds command:execute.
    assert api.as_("alice").post(f"/job/{pk}/retry").status_code == 201


def test_missing_and_foreign_jobs_are_the_same_404(api, manifest):
    for pk in (manifest["globex"]["jobs"]["failed"], "00000000-0000-4000-8000-000000000000"):
        r = api.post(f"/job/{pk}/retry")
        assert r.status_code == 404
        assert r.json() == {"error": "Job not found", "details": "Job not found", "code": 404}


def test_a_malformed_uuid_is_a_400(api, manifest):
    r = api.post("/job/1234/retry")
    assert r.status_code == 400
    assert r.json()["error"] == "id must be a valid UUID"


def test_detail_has_the_event_timeline(api, manifest):
    pk = manifest["acme"]["jobs"]["failed"]
    clone = api.post(f"/job/{pk}/retry").json()["job_id"]
    r = api.get(f"/job/{pk}")
    assert r.status_code == 200
    job = r.json()
    assert job["job_id"] == pk and job["status"] == "failed" and job["error"]
    assert job["retried_by"] == clone
    types = [e["type"] for e in job["events"]]
    assert types[0] == "created" and types[-1] == "retried"
    assert [e["revision"] for e in job["events"]] == sorted(e["revision"] for e in job["events"])
    assert job["revision"] == job["events"][-1]["revision"]
    assert api.get(f"/job/{clone}").json()["retry_of"] == pk


def test_detail_says_when_an_unprocessed_jobs_host_has_no_live_worker(api, manifest, settings):
    pk = manifest["acme"]["jobs"]["failed"]
    clone = api.post(f"/job/{pk}/retry", {"target_hostname": "web-01"}).json()["job_id"]
    assert api.get(f"/job/{clone}").json()["waiting"] == "no live worker for host web-01"
    assert api.get(f"/job/{pk}").json()["waiting"] is None  # finished: it waits for nothing

    beat = WorkerHeartbeat.objects.create(worker_id="w-1", hostname="web-01", pid=1)
    assert api.get(f"/job/{clone}").json()["waiting"] is None
    lease_ago = timezone.now() - timedelta(seconds=settings.REDRIVE_LEASE_SECONDS + 1)
    WorkerHeartbeat.objects.filter(pk=beat.pk).update(seen_at=lease_ago)  # it stopped beating
    assert api.get(f"/job/{clone}").json()["waiting"] == "no live worker for host web-01"


def test_list_pages_through_the_tenants_jobs(api, manifest):
    seen, cursor = [], None
    while True:
        body = api.get("/job", {"limit": 5, **({"cursor": cursor} if cursor else {})}).json()
        seen += [j["job_id"] for j in body["jobs"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == Job.objects.filter(tenant__slug="acme").count()
    failed = api.get("/job", {"status": "failed", "limit": 100}).json()["jobs"]
    assert failed and all(j["status"] == "failed" for j in failed)


# --- cloning the same finished job again (issue 16.3) ------------------------------------------


def test_a_job_whose_clone_failed_is_cloned_again_to_another_host(api, manifest):
    # An operator retries a failed job to _any, the clone fails, then retries the original to
    # web-01: a second clone (seed 002 clones whenever the job is finished).
    cert = Job.objects.filter(tenant__slug="acme", operation_type="cert.renew", status="failed")
    pk = str(cert.filter(retried_by=None).first().pk)
    first = api.post(f"/job/{pk}/retry").json()["job_id"]
    jobs_run.execute(first, "worker-9")  # the `fail` handler: the clone fails too
    assert Job.objects.get(pk=first).status == "failed"

    r = api.post(f"/job/{pk}/retry", {"target_hostname": "web-01"})

    assert r.status_code == 201, r.content
    clone = Job.objects.get(pk=r.json()["job_id"])
    assert (clone.retry_of_id, clone.target_hostname, clone.status) == (
        Job.objects.get(pk=pk).pk,
        "web-01",
        "unprocessed",
    )
    assert clone.pk != first and Job.objects.filter(retry_of=pk).count() == 2
    original = api.get(f"/job/{pk}").json()
    assert (original["status"], original["retried_by"]) == ("failed", str(clone.pk))
    retried = [e["data"]["new_job_id"] for e in original["events"] if e["type"] == "retried"]
    assert retried == [first, str(clone.pk)]


def test_a_job_is_refused_while_its_clone_is_in_flight_naming_it(api, manifest):
    pk = manifest["acme"]["jobs"]["failed"]
    clone = api.post(f"/job/{pk}/retry").json()["job_id"]
    r = api.post(f"/job/{pk}/retry", {"target_hostname": "web-01"})
    assert r.status_code == 400
    assert r.json() == {
        "error": f"Job was already retried as {clone}, which is still unprocessed",
        "details": f"already retried by {clone}",
        "code": 400,
    }
    assert Job.objects.filter(retry_of=pk).count() == 1
