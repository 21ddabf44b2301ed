"""Seed 001: automation rules and their executions."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .base import Failure, Leased, check_definition, ignored_until_index
from .tenancy import Tenant


class AutomationRule(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="automation_rules")
    name = models.CharField(max_length=200)
    # {"type": "event", "event": "ticket.created"} fires on that event (POST .../events); the
    # demo's rules also have schedule and webhook triggers, which nothing fires yet.
    trigger = models.JSONField(default=dict)
    # All must hold of the event's data: [{"field": "ticket.priority", "operator", "value"}]
    # (kinds/automations/definition.py).
    conditions = models.JSONField(default=list, blank=True)
    # Ordered units of work (executions.work): handler, http or javascript.
    actions = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Deleting a rule keeps it (its executions are evidence, and their `rule` link resolves):
    # a deleted rule never fires and cannot be changed.
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Refused when saved, naming the field, rather than failing when it runs.
        from executions.kinds.automations.definition import validate_definition

        check_definition(lambda: validate_definition(self.actions), "actions")


class AutomationExecution(Leased, Failure):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"
        TIMEOUT = "timeout"
        SKIPPED = "skipped"

    execution_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The (tenant, status, time) list index serves tenant lookups: no index of its own.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    automation_rule = models.ForeignKey(
        AutomationRule, on_delete=models.CASCADE, related_name="executions"
    )
    trigger_data = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    actions_total = models.PositiveIntegerField(default=0)
    actions_successful = models.PositiveIntegerField(default=0)
    actions_failed = models.PositiveIntegerField(default=0)
    failed_action_index = models.IntegerField(null=True, blank=True)
    # Holds the snapshot of the rule's actions (and version) this execution runs.
    execution_context = models.JSONField(default=dict, blank=True)
    logs = models.JSONField(default=list, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "-updated_at", "-execution_id"],
                name="autoexec_failed_inbox",
                condition=Q(status__in=["failed", "timeout"]),
            ),
            # Triage (executions/triage.py): the open inbox, the resolved tab, a fingerprint's
            # failures by state (ignoring a group, reopening it).
            models.Index(
                fields=["tenant", "-updated_at", "-execution_id"],
                name="autoexec_open_inbox",
                condition=Q(status__in=["failed", "timeout"]) & Q(triage__in=["open", "regressed"]),
            ),
            models.Index(
                fields=["tenant", "-updated_at", "-execution_id"],
                name="autoexec_resolved",
                condition=Q(triage="resolved"),
            ),
            models.Index(
                fields=["tenant", "fingerprint", "triage"],
                name="autoexec_triage_fp",
                condition=Q(status__in=["failed", "timeout"]),
            ),
            ignored_until_index("autoexec_ignored_until"),
            models.Index(fields=["tenant", "status", "-started_at"], name="autoexec_list"),
            models.Index(
                fields=["status", "lease_expires_at"],
                name="autoexec_lease",
                condition=Q(status="running"),
            ),
        ]
