"""Seed 003: workflow versions, their executions and task executions."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .base import Failure, Leased, check_definition, ignored_until_index
from .tenancy import Tenant


class WorkflowHeader(models.Model):
    """A workflow as Cognite's POST /workflows upserts it (its versions are `Workflow` rows of the
    same external id)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="workflow_headers")
    external_id = models.CharField(max_length=255)
    description = models.TextField(null=True, blank=True)
    data_set_id = models.BigIntegerField(null=True, blank=True)
    max_concurrent_executions = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="workflow_header_unique")
        ]

    def __str__(self) -> str:
        return self.external_id


class Workflow(models.Model):
    """One version of a workflow: a DAG of tasks. Seeded ones are
    {"externalId", "handler", "params", "dependsOn": [...], "isOptional", "retries", "timeout"};
    those upserted through the API keep Cognite's "type" and "parameters" too
    (kinds/workflows/cognite.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="workflows")
    external_id = models.CharField(max_length=255)
    version = models.CharField(max_length=255)
    tasks = models.JSONField(default=list)
    description = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id", "version"], name="workflow_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.external_id}@{self.version}"

    def clean(self) -> None:
        # Refused when saved, naming the field, rather than failing when it runs.
        from executions.kinds.workflows.definition import validate_definition

        check_definition(lambda: validate_definition(self.tasks, tenant=self.tenant), "tasks")


class WorkflowExecution(Failure):
    class Status(models.TextChoices):
        RUNNING = "RUNNING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"
        TIMED_OUT = "TIMED_OUT"
        TERMINATED = "TERMINATED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The (tenant, status, time) list index serves tenant lookups: no index of its own.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="executions")
    engine_execution_id = models.UUIDField(default=uuid.uuid4)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    input = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_time = models.DateTimeField(default=timezone.now)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    reason_for_incompletion = models.TextField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "-updated_at", "-id"],
                name="wfexec_failed_inbox",
                condition=Q(status__in=["FAILED", "TIMED_OUT", "TERMINATED"]),
            ),
            # Triage (executions/triage.py): the open inbox, the resolved tab, a fingerprint's
            # failures by state (ignoring a group, reopening it).
            models.Index(
                fields=["tenant", "-updated_at", "-id"],
                name="wfexec_open_inbox",
                condition=Q(status__in=["FAILED", "TIMED_OUT", "TERMINATED"])
                & Q(triage__in=["open", "regressed"]),
            ),
            models.Index(
                fields=["tenant", "-updated_at", "-id"],
                name="wfexec_resolved",
                condition=Q(triage="resolved"),
            ),
            models.Index(
                fields=["tenant", "fingerprint", "triage"],
                name="wfexec_triage_fp",
                condition=Q(status__in=["FAILED", "TIMED_OUT", "TERMINATED"]),
            ),
            ignored_until_index("wfexec_ignored_until"),
            models.Index(fields=["tenant", "status", "-created_time"], name="wfexec_list"),
        ]


class WorkflowTaskExecution(Leased, Failure):
    class Status(models.TextChoices):
        SCHEDULED = "SCHEDULED"
        IN_PROGRESS = "IN_PROGRESS"
        COMPLETED = "COMPLETED"
        CANCELED = "CANCELED"
        FAILED = "FAILED"
        FAILED_WITH_TERMINAL_ERROR = "FAILED_WITH_TERMINAL_ERROR"
        TIMED_OUT = "TIMED_OUT"
        SKIPPED = "SKIPPED"

    FINAL_BAD = ("CANCELED", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Served by wftask_unique_per_execution (execution, task_external_id).
    execution = models.ForeignKey(
        WorkflowExecution, on_delete=models.CASCADE, related_name="task_executions", db_index=False
    )
    task_external_id = models.CharField(max_length=255)
    is_optional = models.BooleanField(
        default=False
    )  # from the definition; optional tasks never retry
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.SCHEDULED)
    attempts = models.PositiveIntegerField(default=0)
    # retries + 1 to start with; each retry of the execution grants one more when used up.
    max_attempts = models.PositiveIntegerField(default=1)
    output = models.JSONField(null=True, blank=True)
    logs = models.JSONField(default=list, blank=True)
    # Who the task runs as: the identity of the session whose nonce authorised the last retry.
    run_as = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "task_external_id"], name="wftask_unique_per_execution"
            )
        ]
        indexes = [
            models.Index(
                fields=["status", "lease_expires_at"],
                name="wftask_lease",
                condition=Q(status="IN_PROGRESS"),
            ),
        ]
