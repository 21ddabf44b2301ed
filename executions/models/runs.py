"""Seed 004: runs."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .base import Failure, Leased, check_definition, ignored_until_index, run_id
from .tenancy import Tenant


class Run(Leased, Failure):
    class Status(models.TextChoices):
        RUNNING = "running"
        WAITING = "waiting"
        SUCCESS = "success"
        PARTIAL = "partial"
        FAILURE = "failure"
        CANCELLED = "cancelled"

    RETRYABLE = ("failure", "cancelled", "partial")

    id = models.CharField(primary_key=True, max_length=40, default=run_id, editable=False)
    # The (tenant, status, time) list index serves tenant lookups: no index of its own.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    workflow_id = models.CharField(max_length=100)
    workflow_version = models.PositiveIntegerField(default=1)
    workflow_owner_user_id = models.CharField(max_length=100, blank=True, default="")
    # The snapshot this run executes: {"nodes": {...}, "triggerNodeIds": [...],
    # "inputSchema": [...], "variableDefs": [...], "blockExpansions": {...}}.
    workflow_definition = models.JSONField()
    execution_state = models.JSONField(default=dict, blank=True)  # node id -> output
    node_states = models.JSONField(default=dict, blank=True)  # node id -> {status, error, ...}
    prop_values = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    # One retry per run: the unique constraint makes a racing second retry fail in the database.
    source_run = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retried_by"
    )
    is_dust_test = models.BooleanField(default=False)
    is_simulation = models.BooleanField(default=False)
    simulation_forks = models.JSONField(default=list, blank=True)
    simulation_mode = models.CharField(max_length=32, blank=True, default="")
    summary = models.TextField(blank=True, default="")
    total_cu = models.FloatField(default=0)
    trigger_node_id = models.CharField(max_length=100, blank=True, default="")
    trigger_source = models.CharField(max_length=32, blank=True, default="manual")
    triggered_by = models.CharField(max_length=100, blank=True, default="")
    progress = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def clean(self) -> None:
        # A run's snapshot of its workflow: refused when saved, naming the field.
        from executions.kinds.runs.definition import validate_definition

        check_definition(
            lambda: validate_definition(self.workflow_definition, "workflow_definition"),
            "workflow_definition",
        )

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "-started_at", "-id"],
                name="run_failed_inbox",
                condition=Q(status__in=["failure", "cancelled", "partial"]),
            ),
            # Triage (executions/triage.py): the open inbox, the resolved tab, a fingerprint's
            # failures by state (ignoring a group, reopening it).
            models.Index(
                fields=["tenant", "-started_at", "-id"],
                name="run_open_inbox",
                condition=Q(status__in=["failure", "cancelled", "partial"])
                & Q(triage__in=["open", "regressed"]),
            ),
            models.Index(
                fields=["tenant", "-started_at", "-id"],
                name="run_resolved",
                condition=Q(triage="resolved"),
            ),
            models.Index(
                fields=["tenant", "fingerprint", "triage"],
                name="run_triage_fp",
                condition=Q(status__in=["failure", "cancelled", "partial"]),
            ),
            ignored_until_index("run_ignored_until"),
            models.Index(fields=["tenant", "status", "-started_at"], name="run_list"),
            models.Index(
                fields=["status", "lease_expires_at"],
                name="run_lease",
                condition=Q(status="running"),
            ),
        ]


def workflow_id() -> str:
    return f"wf_{uuid.uuid4().hex}"


class SavedWorkflow(models.Model):
    """A saved workflow (seed 004's `/v1/workflows`): the graph its runs snapshot. Saving a
    changed definition bumps `version`; a run keeps the definition and version it started with
    (kinds/runs/definition.py says what a valid definition is)."""

    id = models.CharField(primary_key=True, max_length=40, default=workflow_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # {"nodes": {...}, "triggerNodeIds": [...], "inputSchema": [...], "variableDefs": [...]}
    definition = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    owner_user_id = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at"], name="savedworkflow_list")]

    def __str__(self) -> str:
        return self.name
