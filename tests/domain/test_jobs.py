"""Seed 002's rule: clone finished jobs only; the original operation's permission is required too;
target `_any` by default; the original keeps its state and records the clone."""

from __future__ import annotations

import pytest

from executions import services
from executions.errors import InvalidInput, NotRetryable, PermissionDenied
from executions.models import Job


@pytest.mark.django_db
def test_an_operator_cannot_rerun_a_command_job_but_an_admin_can(items, operator, admin):
    job = items.command_job()

    with pytest.raises(PermissionDenied) as denied:
        services.retry_job(operator, job)
    assert denied.value.permission == "command:execute"
    assert not Job.objects.filter(retry_of=job).exists()

    outcome = services.retry_job(admin, job)
    assert outcome.obj.operation == Job.objects.get(pk=job).operation


@pytest.mark.django_db
def test_the_clone_targets_any_host_by_default_or_the_given_one(items, admin):
    first = services.retry_job(admin, items.failed("job"))
    assert (first.obj.target_hostname, first.obj.status, first.obj.revision) == (
        "_any",
        "unprocessed",
        1,
    )
    second = services.retry_job(admin, items.failed("job"), target_hostname="web-7.internal")
    assert second.obj.target_hostname == "web-7.internal"


@pytest.mark.django_db
def test_a_bad_target_hostname_is_rejected_and_changes_nothing(items, admin):
    job = items.failed("job")
    with pytest.raises(InvalidInput) as bad:
        services.retry_job(admin, job, target_hostname="not a host!")
    assert bad.value.field == "target_hostname"
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_a_job_in_flight_is_refused(items, admin):
    job = Job.objects.create(
        tenant=admin.tenant,
        operation_type="backup.run",
        operation={"type": "backup.run", "data": {}},
        status="processing",
    )
    with pytest.raises(NotRetryable, match=r"^Job is still in flight \(status processing\)$"):
        services.retry_job(admin, str(job.pk))


@pytest.mark.django_db
def test_the_original_keeps_its_state_and_records_the_clone(items, admin):
    job_id = items.failed("job")
    before = Job.objects.get(pk=job_id)

    outcome = services.retry_job(admin, job_id)

    after = Job.objects.get(pk=job_id)
    assert (after.status, after.error_message) == (before.status, before.error_message)
    assert after.revision == before.revision + 1
    retried = after.events.get(type="retried")
    assert (retried.revision, retried.data["new_job_id"]) == (after.revision, outcome.new_id)
    assert list(outcome.obj.events.values_list("revision", "type")) == [(1, "created")]
    assert outcome.obj.retry_of_id == after.pk


@pytest.mark.django_db(transaction=True)
def test_the_clone_runs_only_on_its_target_host(items, admin, run_worker):
    outcome = services.retry_job(admin, items.failed("job"), target_hostname="web-7")

    run_worker(hostname="web-8")
    assert Job.objects.get(pk=outcome.new_id).status == "unprocessed"

    run_worker(hostname="web-7")
    clone = Job.objects.get(pk=outcome.new_id)
    assert (clone.status, clone.taken_by) == ("completed", "web-7")
    assert list(clone.events.values_list("revision", "type")) == [
        (1, "created"),
        (2, "processing"),
        (3, "completed"),
    ]


def test_migration_0026_dates_a_finished_jobs_start_from_its_processing_event(items, tenant):
    """Jobs run before 0026 recorded their start only as the `processing` event."""
    from importlib import import_module

    from django.apps import apps

    ran = Job.objects.get(pk=items.failed("job"))
    waiting = Job.objects.create(
        tenant=tenant, operation_type="package.install", operation={"type": "package.install"}
    )
    Job.objects.update(started_at=None)
    migration = import_module("executions.migrations.0026_job_started_at")
    migration.from_events(apps, None)

    event = ran.events.get(type="processing")
    assert Job.objects.get(pk=ran.pk).started_at == event.timestamp
    assert Job.objects.get(pk=waiting.pk).started_at is None
