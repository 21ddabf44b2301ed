"""The console says what an unprocessed job waits for: "no live worker for host <name>" when no
worker of its target host beats (issue 23), on the job's page and on the inbox row of the job it
retries; one query for all the hosts of an inbox page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from executions.models import Job, WorkerHeartbeat

from .conftest import failed_job
from .test_views import detail_url, retry_url

pytestmark = pytest.mark.django_db


def row_of(page: str, job: Job) -> str:
    match = re.search(rf'<tr id="row-job-{job.pk}".*?</tr>', page, re.S)
    assert match, f"no inbox row for job {job.pk}"
    return match.group(0)


def test_a_job_waiting_for_a_host_without_a_live_worker_says_so(login, cast, settings) -> None:
    client = login("alice")
    client.post(retry_url("job", cast.job.pk), {"target_hostname": "web-01"})
    clone = Job.objects.get(retry_of=cast.job)
    assert clone.status == "unprocessed"

    said = "no live worker for host web-01"
    assert said in client.get(detail_url("job", clone.pk)).content.decode()
    # The original's row and page, beside what it was retried as.
    assert said in row_of(client.get(reverse("inbox")).content.decode(), cast.job)
    assert said in client.get(detail_url("job", cast.job.pk)).content.decode()

    beat = WorkerHeartbeat.objects.create(worker_id="w-1", hostname="web-01", pid=1)
    assert said not in client.get(detail_url("job", clone.pk)).content.decode()
    assert said not in row_of(client.get(reverse("inbox")).content.decode(), cast.job)

    lease_ago = timezone.now() - timedelta(seconds=settings.REDRIVE_LEASE_SECONDS + 1)
    WorkerHeartbeat.objects.filter(pk=beat.pk).update(seen_at=lease_ago)  # it stopped beating
    assert said in client.get(detail_url("job", clone.pk)).content.decode()


def test_the_inbox_asks_for_the_hosts_of_its_page_in_one_query(login, cast) -> None:
    client = login("alice")
    jobs = [failed_job(cast.acme) for _ in range(4)]
    for job, host in zip(jobs, ["web-01", "web-02", "web-01", "_any"], strict=True):
        client.post(retry_url("job", job.pk), {"target_hostname": host})
    WorkerHeartbeat.objects.create(worker_id="w-2", hostname="web-02", pid=1)

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("inbox")).content.decode()

    asked = [q["sql"] for q in queries.captured_queries if "workerheartbeat" in q["sql"]]
    assert len(asked) == 1
    waiting = [job for job in jobs if "no live worker for host" in row_of(page, job)]
    assert waiting == [jobs[0], jobs[2]]
