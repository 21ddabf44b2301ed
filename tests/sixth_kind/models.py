"""The sixth kind's model: a support ticket that a worker processes, and that can fail."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from executions.models import Failure, Leased, Tenant, ignored_until_index


class Ticket(Leased, Failure):
    class Status(models.TextChoices):
        OPEN = "open"  # queued for a worker
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    queue = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    attempt = models.PositiveIntegerField(default=1)
    fails = models.BooleanField(default=False)  # whether processing it fails
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [ignored_until_index("ticket_ignored_until")]
