"""Seed 000: functions and their executions."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .base import Failure, Leased, check_definition, ignored_until_index, object_id
from .tenancy import Tenant

# The definition an execution snapshots, the record of what ran (a retry runs the function's
# current definition): the execution's field -> the function's field. The one list of it.
DEFINITION = {
    "handler": "handler",
    "params": "params",
    "code": "code",
    "environment": "environment",
    "memory_mb": "memory_mb",
    "function_version": "version",
    "timeout_ms": "timeout_ms",
}


class Function(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=object_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="functions")
    name = models.CharField(max_length=200)
    # A function runs its JavaScript `code` when it has some, else its Python `handler`.
    handler = models.CharField(max_length=100, blank=True)
    params = models.JSONField(default=dict, blank=True)
    code = models.TextField(blank=True, default="")
    # Name -> "value" or {"value": "...", "secret": true} (executions/work/secrets.py).
    environment = models.JSONField(default=dict, blank=True)
    memory_mb = models.PositiveIntegerField(null=True, blank=True)  # None: REDRIVE_JS_MEMORY_MB
    timeout_ms = models.PositiveIntegerField(default=30_000)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    # Defined through the API (mudbase's FunctionsApi): executions/kinds/functions/defining.py.
    description = models.TextField(blank=True, default="")
    # {"type": "http" | "webhook" | "cron", "schedule": ..., "path": ..., "method": ...}
    trigger = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    max_payload_size = models.PositiveIntegerField(default=1024 * 1024)  # bytes of JSON
    max_executions_per_minute = models.PositiveIntegerField(null=True, blank=True)
    max_executions_per_hour = models.PositiveIntegerField(null=True, blank=True)
    # retryPolicy: a failed execution is retried by itself up to `retry_max` times in its lineage.
    retry_enabled = models.BooleanField(default=False)
    retry_max = models.PositiveIntegerField(default=3)
    retry_backoff_ms = models.PositiveIntegerField(default=1000)
    # A cron function's next tick: the worker that moves it on (a conditional UPDATE) fires it.
    next_fire_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_fire_at"], name="function_cron_due", condition=Q(is_active=True)
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Refused when saved, naming the field, rather than failing when it runs.
        from executions.kinds.functions.definition import validate_definition

        check_definition(
            lambda: validate_definition(
                code=self.code,
                environment=self.environment,
                timeout_ms=self.timeout_ms,
                memory_mb=self.memory_mb,
                handler=self.handler,
                params=self.params,
            )
        )

    def definition(self) -> dict:
        """What an execution of this function snapshots (FunctionExecution's fields of these
        names): invoking it, and retrying an execution with the current definition."""
        return {field: getattr(self, source) for field, source in DEFINITION.items()}


class FunctionVersion(models.Model):
    """Every code a function has had: its versions, for get_function_versions and rollback."""

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    code = models.TextField()
    comment = models.CharField(max_length=500, blank=True, default="")
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["function", "version"], name="function_version_unique")
        ]


class FunctionExecution(Leased, Failure):
    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAILED = "failed"
        TIMEOUT = "timeout"

    class InvokedBy(models.TextChoices):
        MANUAL = "manual"
        API_KEY = "api_key"
        TRIGGER = "trigger"
        CRON = "cron"

    id = models.CharField(primary_key=True, max_length=24, default=object_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    # Served by fnexec_log_order (function, time, id).
    function = models.ForeignKey(
        Function, on_delete=models.CASCADE, related_name="executions", db_index=False
    )
    # The definition that ran (its record; a retry runs the function's current one).
    handler = models.CharField(max_length=100, blank=True)
    params = models.JSONField(default=dict, blank=True)
    code = models.TextField(blank=True, default="")
    environment = models.JSONField(default=dict, blank=True)
    memory_mb = models.PositiveIntegerField(null=True, blank=True)
    function_version = models.PositiveIntegerField(default=1)
    timeout_ms = models.PositiveIntegerField(default=30_000)
    payload = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    execution_time = models.PositiveIntegerField(null=True, blank=True)  # ms
    executed_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    invoked_by = models.CharField(max_length=16, choices=InvokedBy.choices, default="manual")
    retry_count = models.PositiveIntegerField(default=0)
    # An execution may be retried again once its earlier retries are final: `retry_of` links each
    # retry to what it retried, `retried_by` the original to its latest retry (so a list shows it
    # with one join). At most one retry of an execution is in flight (fnexec_one_retry_running).
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    retried_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    logs = models.JSONField(default=list, blank=True)
    # JavaScript's error class (its stack starts with the message, not the class) and whether its
    # captured logs were cut, out of how many bytes logged.
    error_class = models.CharField(max_length=100, blank=True, default="")
    logs_truncated = models.BooleanField(default=False)
    logs_bytes = models.PositiveIntegerField(default=0)

    IN_FLIGHT = ("running",)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["retry_of"],
                name="fnexec_one_retry_running",
                condition=Q(status="running", retry_of__isnull=False),
            )
        ]
        indexes = [
            models.Index(fields=["function", "-executed_at", "-id"], name="fnexec_log_order"),
            models.Index(
                fields=["tenant", "-executed_at", "-id"],
                name="fnexec_failed_inbox",
                condition=Q(status__in=["failed", "timeout"]),
            ),
            # Triage (executions/triage.py): the open inbox, the resolved tab, a fingerprint's
            # failures by state (ignoring a group, reopening it).
            models.Index(
                fields=["tenant", "-executed_at", "-id"],
                name="fnexec_open_inbox",
                condition=Q(status__in=["failed", "timeout"]) & Q(triage__in=["open", "regressed"]),
            ),
            models.Index(
                fields=["tenant", "-executed_at", "-id"],
                name="fnexec_resolved",
                condition=Q(triage="resolved"),
            ),
            models.Index(
                fields=["tenant", "fingerprint", "triage"],
                name="fnexec_triage_fp",
                condition=Q(status__in=["failed", "timeout"]),
            ),
            ignored_until_index("fnexec_ignored_until"),
            models.Index(
                fields=["status", "lease_expires_at"],
                name="fnexec_lease",
                condition=Q(status="running"),
            ),
        ]

    def definition(self) -> dict:
        """The definition this execution ran (Function.definition()'s keys): what its retry runs
        again."""
        return {field: getattr(self, field) for field in DEFINITION}

    @property
    def final(self) -> bool:
        return self.status not in self.IN_FLIGHT

    @property
    def success(self) -> bool:
        return self.status == self.Status.SUCCESS
