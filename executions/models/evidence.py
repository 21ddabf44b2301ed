"""The evidence trail: attempt history, audit, outbox events, idempotency records and failure
counts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .base import Kind
from .bulk import BulkRetry
from .tenancy import ApiKey, Tenant


# Append-only evidence rows (attempts, audit, events) are written by the retry statements with ids
# they have just read, up to 100,000 per bulk retry: their foreign keys are not database
# constraints (Django still cascades and nulls them on delete), because PostgreSQL checks each
# deferred constraint per row at COMMIT - about a quarter of a bulk retry's time.
class Attempt(models.Model):
    """History of kinds that retry in place (automation, workflow): before a retry resets the row,
    the attempt that failed is copied here, error, stack, logs and counters included."""

    # No index of its own: history is read by (kind, object_id), and deleting a tenant may scan.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    object_id = models.CharField(max_length=64)
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=32)
    error_message = models.TextField(null=True, blank=True)
    error_stack = models.TextField(null=True, blank=True)
    logs = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)
    # The audit row of the bulk retry that reset this attempt: a bulk writes one audit row, and
    # its items' history rows name it instead of an audit row each (selectors/audit.py reads
    # them back as the items' audit; bench/bulk_retry.py). Null for a single retry's attempt.
    bulk_audit = models.ForeignKey(
        "AuditEvent",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id", "number"], name="attempt_unique")
        ]
        indexes = [
            # A bulk's items, newest first, as the audit pages them (selectors/audit.py reads
            # the tenant's bulk rows first, then each one's items).
            models.Index(
                fields=["bulk_audit", "id"],
                name="attempt_bulk",
                condition=Q(bulk_audit__isnull=False),
            ),
        ]


class AuditEvent(models.Model):
    """Append-only: who retried what, from where, when. Written in the retry's own transaction."""

    class Source(models.TextChoices):
        API = "api"
        CONSOLE = "console"
        ADMIN = "admin"
        CLI = "cli"
        WORKER = "worker"  # what nobody did by hand: a failure resolved by its retry's success

    # The action of a bulk retry's one row (its items: Attempt.bulk_audit, or rows of their own).
    BULK_RETRY = "bulk retry"

    # Every audit row is one more entry in each of its indexes, and a bulk retry writes one per
    # item: the tenant is the head of audit_recent (no index of its own), and the user, key and
    # bulk indexes (for filtering and for Django's cascades) leave out the rows without one.
    # No tenant: a sign-in lockout of a name that is no member of any (executions.lockout).
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        db_index=False,
    )
    api_key = models.ForeignKey(
        ApiKey,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        db_index=False,
    )
    actor = models.CharField(max_length=200)
    source = models.CharField(max_length=16, choices=Source.choices)
    action = models.CharField(max_length=32, default="retry")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target_id = models.CharField(max_length=64)
    new_target_id = models.CharField(max_length=64, blank=True, default="")
    status_before = models.CharField(max_length=32, blank=True, default="")
    status_after = models.CharField(max_length=32, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    bulk = models.ForeignKey(
        BulkRetry,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        db_index=False,
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_recent"),
            models.Index(fields=["kind", "target_id"], name="audit_target"),
            models.Index(fields=["user"], name="audit_user", condition=Q(user__isnull=False)),
            models.Index(
                fields=["api_key"], name="audit_api_key", condition=Q(api_key__isnull=False)
            ),
            models.Index(fields=["bulk"], name="audit_bulk", condition=Q(bulk__isnull=False)),
        ]


class OutboxEvent(models.Model):
    """Events such as `automation.execution.retried`, written in the retry's transaction and
    published (Django signal) once it commits."""

    # No tenant index: events are read by id and by outbox_unpublished.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    name = models.CharField(max_length=100)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_unpublished",
                condition=Q(published_at__isnull=True),
            ),
        ]


class IdempotencyRecord(models.Model):
    """One Idempotency-Key of one caller in one tenant: the one store behind the API's keyed
    requests and the domain's keyed retries (executions/idempotency.py). In flight while its
    request runs; then done, with what the request did (`outcome`, written in the retry's own
    transaction) and, for the API, the response to replay."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    actor = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=300)  # the request, for people: "POST /job/<id>/retry"
    fingerprint = models.CharField(max_length=64)  # sha256 of the method, path and body
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    holder = models.CharField(max_length=32, blank=True, default="")  # who runs it while in flight
    locked_until = models.DateTimeField(null=True, blank=True)  # then another request may take over
    outcome = models.JSONField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "actor", "key"], name="idempotency_unique_tenant_actor_key"
            )
        ]


class FailureCount(models.Model):
    """How many items of one kind sit in one failed status, per tenant, error fingerprint, source
    (function / rule / operation / workflow) and hour of failure: the console's chart and error
    groups add up these rows instead of counting a million executions.

    PostgreSQL keeps it exact with statement-level triggers on the five tables (migration 0003),
    so every write path counts, whoever writes: a trigger appends what its statement changed to
    FailureCountDelta (append-only, so writers never wait on each other), and
    `executions.failure_counts.fold()` adds the deltas up into these rows before they are read.
    Elsewhere the selectors count the rows directly. `first_at`/`last_at` and `sample` are what the
    hour saw arrive (a retried failure still counts as seen)."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=32)
    state = models.CharField(max_length=9, default="open", db_default="open")  # open/resolved/...
    fingerprint = models.CharField(max_length=16)
    source = models.CharField(max_length=200)
    bucket = models.DateTimeField()
    n = models.BigIntegerField(default=0)
    first_at = models.DateTimeField(null=True)
    last_at = models.DateTimeField(null=True)
    sample = models.TextField(default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "status", "state", "fingerprint", "source", "bucket"],
                name="failurecount_key",
            )
        ]


class FailureCountDelta(models.Model):
    """A change to FailureCount not yet folded in (see FailureCount)."""

    tenant_id = models.UUIDField()
    kind = models.CharField(max_length=16)
    status = models.CharField(max_length=32)
    state = models.CharField(max_length=9, default="open", db_default="open")
    fingerprint = models.CharField(max_length=16)
    source = models.CharField(max_length=200)
    bucket = models.DateTimeField()
    n = models.BigIntegerField()
    first_at = models.DateTimeField(null=True)
    last_at = models.DateTimeField(null=True)
    sample = models.TextField(default="")
