"""Seed 002: jobs and their event timelines."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .base import Failure, Leased, check_definition, ignored_until_index
from .tenancy import Tenant


class Job(Leased, Failure):
    class Status(models.TextChoices):
        UNPROCESSED = "unprocessed"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    ANY_HOST = "_any"

    job_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The (tenant, status, time) list index serves tenant lookups: no index of its own.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    operation = models.JSONField()  # {"type": ..., "data": ...}
    operation_type = models.CharField(max_length=64)  # operation["type"], indexed for filters
    target_hostname = models.CharField(max_length=253, default=ANY_HOST)
    taken_by = models.CharField(max_length=253, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNPROCESSED)
    revision = models.PositiveIntegerField(default=1)
    result = models.JSONField(null=True, blank=True)
    logs = models.JSONField(default=list, blank=True)
    # A finished job may be cloned again once its earlier clones are finished, like function
    # executions: `retry_of` names the original, `retried_by` the original's latest clone, and at
    # most one clone of a job is in flight (job_one_retry_in_flight).
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    retried_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # When a worker claimed it: a job may wait long for its host, and what it took is from here.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    IN_FLIGHT = ("unprocessed", "processing")

    def clean(self) -> None:
        # Refused when saved, naming the field, rather than failing when it runs.
        from executions.kinds.jobs.definition import validate_definition

        check_definition(lambda: validate_definition(self.operation), "operation")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["retry_of"],
                name="job_one_retry_in_flight",
                condition=Q(status__in=["unprocessed", "processing"], retry_of__isnull=False),
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant", "-updated_at", "-job_id"],
                name="job_failed_inbox",
                condition=Q(status="failed"),
            ),
            # Triage (executions/triage.py): the open inbox, the resolved tab, a fingerprint's
            # failures by state (ignoring a group, reopening it).
            models.Index(
                fields=["tenant", "-updated_at", "-job_id"],
                name="job_open_inbox",
                condition=Q(status="failed") & Q(triage__in=["open", "regressed"]),
            ),
            models.Index(
                fields=["tenant", "-updated_at", "-job_id"],
                name="job_resolved",
                condition=Q(triage="resolved"),
            ),
            models.Index(
                fields=["tenant", "fingerprint", "triage"],
                name="job_triage_fp",
                condition=Q(status="failed"),
            ),
            ignored_until_index("job_ignored_until"),
            models.Index(fields=["tenant", "status", "-created_at"], name="job_list"),
            models.Index(
                fields=["status", "lease_expires_at"],
                name="job_lease",
                condition=Q(status="processing"),
            ),
            # The reaper's look for jobs waiting on a host that is gone, every round.
            models.Index(
                fields=["created_at"],
                name="job_waiting_for_host",
                condition=Q(status="unprocessed") & ~Q(target_hostname="_any"),
            ),
        ]


class JobEvent(models.Model):
    """Append-only timeline of a job: one row per state change (and the `retried` marker)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    revision = models.PositiveIntegerField()
    type = models.CharField(max_length=32)
    data = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["timestamp", "id"]
