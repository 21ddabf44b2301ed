"""Bulk retries and the plans of what each retries."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .base import Kind
from .tenancy import ApiKey, Tenant


class BulkRetry(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        FINISHED = "finished"
        CANCELLED = "cancelled"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=200)
    source = models.CharField(max_length=16)
    selection = models.JSONField(default=dict)  # {"ids": {...}} or {"filter": {...}}
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Set by the conditional UPDATE that starts the bulk's last batch: from then on a cancel has
    # nothing left to stop and is answered "too late" (services.cancel_bulk_retry).
    last_batch_started = models.BooleanField(default=False)
    # What the caller asked for besides the selection: reason, canary, ratePerSecond,
    # stopWhenFailedAgainRate (executions/staged.py runs a bulk with staging options).
    options = models.JSONField(default=dict, blank=True)
    # A staged bulk's stage (canary, waiting, rest, stopped, finished) and its own progress
    # (position in the plan, what is still pending, what failed again); "" when not staged.
    stage = models.CharField(max_length=16, blank=True, default="")
    staged = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "bulk retries"


class BulkRetryPlan(models.Model):
    """What a bulk retry retries, fixed when it is planned: the keys of one kind that were
    retryable then, in key order. A run, and a resume after its worker died, work through these
    keys only; re-evaluating the selection's filter would also match rows that appeared since,
    among them the clones the bulk itself created (X -> X' -> X'').

    One row per kind holding the key list rather than one row per item: 100,000 items are one
    value written once (~4 MB), not 100,000 rows and index entries to write at planning, and the
    bulk reads them back in one fetch. Deleted when the bulk ends."""

    # The unique (bulk, kind) index serves the look-ups by bulk: no index of its own.
    bulk = models.ForeignKey(
        BulkRetry, on_delete=models.CASCADE, related_name="plans", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    keys = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bulk", "kind"], name="bulk_plan_one_per_kind")
        ]
