"""What every kind's work shares: its kind's name, its ids, the lease a worker holds it by, what
it records when it fails, and the workers that hold leases."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.utils import timezone

from executions.errors import InvalidInput


def check_definition(validate: Callable[[], Any], field: str | None = None) -> None:
    """For a model's clean(): `validate()` (a kind's validate_definition) refusing a definition
    becomes a ValidationError on the model's `field` (default: the one the error names), naming
    the field inside it (`actions[2].url: host not allowed: 127.0.0.1`)."""
    try:
        validate()
    except InvalidInput as exc:
        field = field or re.split(r"[.\[]", exc.field or "")[0] or NON_FIELD_ERRORS
        where = f"{exc.field}: " if exc.field and exc.field != field else ""
        raise ValidationError({field: f"{where}{exc.message}"}) from None


def object_id() -> str:
    """A MongoDB-ObjectId-shaped id (24 hex), as seed 000's projectId/functionId/_id are."""
    return f"{int(timezone.now().timestamp()):08x}{secrets.token_hex(8)}"


def run_id() -> str:
    return f"run_{uuid.uuid4().hex}"


class Kind(models.TextChoices):
    FUNCTION = "function", "Function execution"
    AUTOMATION = "automation", "Automation execution"
    JOB = "job", "Job"
    WORKFLOW = "workflow", "Workflow execution"
    RUN = "run", "Run"


class Leased(models.Model):
    """A worker holds an attempt through a lease it renews; `lease_token` is the fencing token:
    bumped on every claim, and every finishing UPDATE requires it, so a presumed-dead worker's late
    finish cannot overwrite a newer attempt."""

    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_token = models.PositiveBigIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class WorkerHeartbeat(models.Model):
    """A running `manage.py worker` (either backend), under the id it takes queued tasks with.
    A task left running under an id whose heartbeat stopped was cut off by the worker's death
    before it could claim its work; `executions.heartbeats` gives such tasks back to the queue,
    and tells which hosts have a live worker."""

    worker_id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)
    # The queues it asks for now: its own less the paused ones (executions/queues.py).
    queues = models.JSONField(default=list, blank=True)


class Failure(models.Model):
    """What every kind records when it fails, for the inbox."""

    error_message = models.TextField(null=True, blank=True)
    error_stack = models.TextField(null=True, blank=True)
    fingerprint = models.CharField(max_length=16, blank=True, default="")
    # Whether it still needs an operator (executions/triage.py, the one place that changes it):
    # open (regressed: open again after its fingerprint was resolved or ignored), resolved,
    # ignored (until its fingerprint fails again, or after `triage_until`). A database default,
    # so the set-based inserts of retries and seeds need not name it.
    triage = models.CharField(max_length=9, default="open", db_default="open")
    triage_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


def ignored_until_index(name: str) -> models.Index:
    """Each kind's failures ignored until a date, by that date: what the reaper round's sweep
    (triage.lapse_ignores) reads to open them again when it passes, at any table size."""
    return models.Index(
        fields=["triage_until"],
        name=name,
        condition=models.Q(triage="ignored", triage_until__isnull=False),
    )
