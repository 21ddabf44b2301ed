"""Redrive's data: tenants and who may do what, the five kinds of work, and the evidence trail
(attempt history, audit, outbox events, idempotency, bulk retries).

Field names follow the seed each kind comes from (snake_case here, the seed's own spelling in the
API serializers). State changes do not live here: they are conditional UPDATEs in
`executions/engine.py` (running the work) and `executions/kinds/` (retrying it).
"""

from __future__ import annotations

import functools
import secrets
import uuid

from django.conf import settings
from django.db import connections, models
from django.db.models import Q
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from . import sets


def object_id() -> str:
    """A MongoDB-ObjectId-shaped id (24 hex), as seed 000's projectId/functionId/_id are."""
    return f"{int(timezone.now().timestamp()):08x}{secrets.token_hex(8)}"


def run_id() -> str:
    return f"run_{uuid.uuid4().hex}"


# --- kinds ------------------------------------------------------------------------------------


class Kind(models.TextChoices):
    FUNCTION = "function", "Function execution"
    AUTOMATION = "automation", "Automation execution"
    JOB = "job", "Job"
    WORKFLOW = "workflow", "Workflow execution"
    RUN = "run", "Run"


# --- tenancy and permissions ------------------------------------------------------------------

READ_PERMISSIONS = (
    "functions:read",
    "automation:read",
    "jobs:read",
    "workflowOrchestrationACL:READ",
    "runs:read",
)
RETRY_PERMISSIONS = (
    "functions:retry",
    "automation:execute",
    "jobs:write",
    "workflowOrchestrationACL:WRITE",
    "runs:write",
)
COMMAND_PERMISSION = "command:execute"
ADMIN_PERMISSIONS = ("apikeys:manage", "audit:read")
ALL_PERMISSIONS = READ_PERMISSIONS + RETRY_PERMISSIONS + (COMMAND_PERMISSION,) + ADMIN_PERMISSIONS


class Role(models.TextChoices):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(ALL_PERMISSIONS),
    Role.OPERATOR: frozenset(READ_PERMISSIONS + RETRY_PERMISSIONS + ("audit:read",)),
    Role.VIEWER: frozenset(READ_PERMISSIONS),
}


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    # Seed 000 addresses functions under a project (ObjectId); seed 003 under a CDF project name.
    functions_project_id = models.CharField(max_length=24, unique=True, default=object_id)
    workflows_project = models.SlugField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"

    @property
    def permissions(self) -> frozenset[str]:
        return ROLE_PERMISSIONS[self.role]


class ApiKeyManager(BaseAPIKeyManager):
    def usable_with_owner(self, prefix: str) -> ApiKey | None:
        """The usable key with this prefix, its tenant and user attached: what
        `get_usable_keys().select_related("tenant", "user").filter(prefix=prefix).first()` gives,
        from one statement written once from the models' metadata. Every API request runs it:
        building that queryset took ~0.8 ms of CPU per request, this ~0.14 ms. The statement
        also reads the user's role in the key's tenant now (`key.owner_role`, None for a key
        without a user or a user who is no longer a member)."""
        sql, loaders = _usable_key_statement(self.db)
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, [prefix])
            row = cursor.fetchone()
        if row is None:
            return None
        found, start = [], 0
        for loader in loaders:
            found.append(loader.load(row[start : start + len(loader.fields)]))
            start += len(loader.fields)
        key, key.tenant, key.user = found
        key.owner_role = row[start]
        return key


class ApiKey(AbstractAPIKey):
    """A server-to-server key: hashed with SHA-512 (high-entropy secret, so no slow KDF), looked up
    by its prefix, scoped to one tenant and a set of permissions.

    A key made for a user speaks for that user: it dies with them (CASCADE; SET_NULL would leave a
    user-less key with the key's full permissions), works only while they are active and members
    of the key's tenant, and never with more than their role there now (effective_permissions).
    A key without a user stands for a script and has exactly its own permissions."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    permissions = models.JSONField(default=list)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"

    def owner_membership_role(self) -> str | None:
        """The user's role in the key's tenant now (read with the key by usable_with_owner)."""
        if not hasattr(self, "owner_role"):
            self.owner_role = (
                Membership.objects.filter(user_id=self.user_id, tenant_id=self.tenant_id)
                .values_list("role", flat=True)
                .first()
            )
        return self.owner_role

    def effective_permissions(self) -> frozenset[str]:
        """The key's permissions, cut down to its user's current role (none if they left)."""
        own = frozenset(self.permissions)
        if self.user_id is None:
            return own
        role = self.owner_membership_role()
        return own & ROLE_PERMISSIONS[role] if role in ROLE_PERMISSIONS else frozenset()


@functools.cache
def _usable_key_statement(alias: str) -> tuple[str, list[sets.Loader]]:
    """ApiKeyManager.usable_with_owner's statement on the database `alias`, and the loaders of
    its key, tenant and user columns, in the statement's order (then the user's role)."""
    from django.contrib.auth import get_user_model

    q = connections[alias].ops.quote_name
    user_model = get_user_model()
    loaders = [sets.loader(m, alias) for m in (ApiKey, Tenant, user_model)]
    key = ApiKey._meta

    def join(kind: str, model: type[models.Model], alias_: str, fk: str) -> str:
        table, pk = q(model._meta.db_table), q(model._meta.pk.column)
        return f"{kind} {table} {alias_} ON {alias_}.{pk} = k.{q(key.get_field(fk).column)}"

    columns = ", ".join(loader.columns(a) for loader, a in zip(loaders, "ktu", strict=True))
    member = Membership._meta
    membership = (
        f"LEFT JOIN {q(member.db_table)} m ON m.{q(member.get_field('user').column)} = "
        f"k.{q(key.get_field('user').column)} AND m.{q(member.get_field('tenant').column)} = "
        f"k.{q(key.get_field('tenant').column)}"
    )
    sql = (
        f"SELECT {columns}, m.{q(member.get_field('role').column)} "  # noqa: S608 (from metadata)
        f"FROM {q(key.db_table)} k "
        f"{join('JOIN', Tenant, 't', 'tenant')} {join('LEFT JOIN', user_model, 'u', 'user')} "
        f"{membership} "
        f"WHERE k.{q(key.get_field('prefix').column)} = %s "
        f"AND NOT k.{q(key.get_field('revoked').column)} ORDER BY k.{q(key.pk.column)} LIMIT 1"
    )
    return sql, loaders


# --- leases (shared by every unit of work a worker runs) ---------------------------------------


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


class Failure(models.Model):
    """What every kind records when it fails, for the inbox."""

    error_message = models.TextField(null=True, blank=True)
    error_stack = models.TextField(null=True, blank=True)
    fingerprint = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        abstract = True


# --- seed 000: functions ----------------------------------------------------------------------


class Function(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=object_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="functions")
    name = models.CharField(max_length=200)
    handler = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    timeout_ms = models.PositiveIntegerField(default=30_000)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


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
    # The definition that ran, so a retry runs the same version even if the function changed since.
    handler = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
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
            models.Index(
                fields=["status", "lease_expires_at"],
                name="fnexec_lease",
                condition=Q(status="running"),
            ),
        ]

    @property
    def success(self) -> bool:
        return self.status == self.Status.SUCCESS


# --- seed 001: automations --------------------------------------------------------------------


class AutomationRule(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="automation_rules")
    name = models.CharField(max_length=200)
    trigger = models.JSONField(default=dict)
    # Ordered list of {"handler": name, "params": {...}}.
    actions = models.JSONField(default=list)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


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
            models.Index(fields=["tenant", "status", "-started_at"], name="autoexec_list"),
            models.Index(
                fields=["status", "lease_expires_at"],
                name="autoexec_lease",
                condition=Q(status="running"),
            ),
        ]


# --- seed 002: jobs ---------------------------------------------------------------------------


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
    finished_at = models.DateTimeField(null=True, blank=True)

    IN_FLIGHT = ("unprocessed", "processing")

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


# --- seed 003: workflows ----------------------------------------------------------------------


class Workflow(models.Model):
    """One version of a workflow: a DAG of tasks, each
    {"externalId", "handler", "params", "dependsOn": [...], "isOptional", "retries", "timeout"}."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="workflows")
    external_id = models.CharField(max_length=255)
    version = models.CharField(max_length=255)
    tasks = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id", "version"], name="workflow_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.external_id}@{self.version}"


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


class WorkflowSession(models.Model):
    """Seed 003's sessions: a nonce that authorises one retry, as the user who created it."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.CASCADE)
    type = models.CharField(max_length=32, default="TOKEN_EXCHANGE")
    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


# --- seed 004: runs ---------------------------------------------------------------------------


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

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "-started_at", "-id"],
                name="run_failed_inbox",
                condition=Q(status__in=["failure", "cancelled", "partial"]),
            ),
            models.Index(fields=["tenant", "status", "-started_at"], name="run_list"),
            models.Index(
                fields=["status", "lease_expires_at"],
                name="run_lease",
                condition=Q(status="running"),
            ),
        ]


# --- evidence: attempts, audit, events, idempotency, bulk ---------------------------------------


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

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id", "number"], name="attempt_unique")
        ]


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


class AuditEvent(models.Model):
    """Append-only: who retried what, from where, when. Written in the retry's own transaction."""

    class Source(models.TextChoices):
        API = "api"
        CONSOLE = "console"
        ADMIN = "admin"
        CLI = "cli"

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


class HandlerCall(models.Model):
    """One row per call of the `counter` demo handler (proof of what ran, across processes)."""

    key = models.CharField(max_length=200, db_index=True)
    called_at = models.DateTimeField(default=timezone.now)


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
                fields=["tenant", "kind", "status", "fingerprint", "source", "bucket"],
                name="failurecount_key",
            )
        ]


class FailureCountDelta(models.Model):
    """A change to FailureCount not yet folded in (see FailureCount)."""

    tenant_id = models.UUIDField()
    kind = models.CharField(max_length=16)
    status = models.CharField(max_length=32)
    fingerprint = models.CharField(max_length=16)
    source = models.CharField(max_length=200)
    bucket = models.DateTimeField()
    n = models.BigIntegerField()
    first_at = models.DateTimeField(null=True)
    last_at = models.DateTimeField(null=True)
    sample = models.TextField(default="")
