"""Triage of error groups: one row per (tenant, fingerprint) once it has failed, saying whether
the group is open, resolved or ignored (and until when). The failures' own state is their
`triage` column (models.base.Failure); both change only in executions/triage.py."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .tenancy import Tenant


class FailureGroup(models.Model):
    class State(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"
        IGNORED = "ignored"

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+"
    )
    fingerprint = models.CharField(max_length=16)
    kind = models.CharField(max_length=16)
    state = models.CharField(max_length=9, choices=State.choices, default=State.OPEN)
    # Ignored: until the fingerprint fails again (None) or fails after this time.
    until = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    first_seen_at = models.DateTimeField(default=timezone.now)
    regressed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "fingerprint"], name="failuregroup_key")
        ]
        # The reaper round's sweep of groups ignored until a date (triage.lapse_ignores).
        indexes = [
            models.Index(
                fields=["until"],
                name="failuregroup_ignored_until",
                condition=models.Q(state="ignored", until__isnull=False),
            )
        ]
