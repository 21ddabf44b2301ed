"""The Django admin: every model, read-mostly, and a "Retry selected" action on the five kinds that
calls the same domain code as the console and the API (services.retry_one, with source="admin").

Executions and the evidence trail (attempts, audit, outbox, bulk retries) are read-only here: a
retry is the only way the admin changes them, and nothing deletes evidence.

Superusers see every tenant. A tenant admin (executions.adminsite) sees only the rows of the
tenants they are admin of: every list, page, action and choice of a related tenant or user goes
through TenantScopedAdmin, and models that belong to no tenant are for superusers only.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.functional import cached_property
from django.utils.html import format_html
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from . import handlers, kinds, permissions, services
from .adminsite import admin_tenant_ids
from .adminstart import StartWorkMixin
from .client_ip import client_ip
from .errors import InvalidInput, NotFound, NotRetryable, PermissionDenied
from .kinds.forms import DefinitionForm, audit_definition_change
from .kinds.functions import defining, starting
from .kinds.functions.forms import FunctionForm, audit_change, masked_environment
from .kinds.runs import saved
from .models import (
    ApiKey,
    Attempt,
    AuditEvent,
    AutomationExecution,
    AutomationRule,
    BulkRetry,
    BulkRetryPlan,
    FailureCount,
    FailureCountDelta,
    FailureGroup,
    Function,
    FunctionExecution,
    FunctionVersion,
    IdempotencyRecord,
    Job,
    JobEvent,
    Kind,
    Membership,
    OutboxEvent,
    QueuePause,
    Role,
    Run,
    SavedWorkflow,
    Tenant,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    WorkerHeartbeat,
    Workflow,
    WorkflowExecution,
    WorkflowHeader,
    WorkflowSession,
    WorkflowTaskExecution,
)
from .tenancy import Actor
from .webhooks import signing as webhook_signing
from .webhooks import subscriptions as webhook_subscriptions
from .work import secrets

# Above this many items the action asks for confirmation first.
CONFIRM_OVER = 5


def admin_actor(request: HttpRequest, tenant: Tenant) -> Actor:
    """Superusers act as an admin of the item's tenant; staff act with their membership there."""
    extra = {
        "request_id": getattr(request, "request_id", ""),
        "ip": client_ip(request),
    }
    if request.user.is_superuser:
        return Actor(
            tenant=tenant,
            permissions=permissions.of_role(Role.ADMIN),
            source="admin",
            user=request.user,
            **extra,
        )
    return Actor.for_user(request.user, tenant, source="admin", **extra)


# djangorestframework-api-key's own APIKey model is unused (ApiKey is ours): one "API keys" entry.
admin.site.unregister(APIKey)


class TenantFilter(admin.SimpleListFilter):
    """The tenants the user may see (Django's filter for a foreign key would list every tenant)."""

    title = "tenant"
    parameter_name = "tenant"

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        self.tenant_path = model_admin.tenant_path
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenants = Tenant.objects.order_by("slug")
        ids = admin_tenant_ids(request)
        if ids is not None:
            tenants = tenants.filter(pk__in=ids)
        return [(str(t.pk), t.slug) for t in tenants]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        if self.value() not in {value for value, _ in self.lookup_choices}:
            return queryset.none()
        return queryset.filter(**{self.tenant_path: self.value()})


class TenantScopedAdmin(admin.ModelAdmin):
    """Rows of the tenants where the user is admin (superusers: all). `tenant_path` is the lookup
    from the model to its tenant's id; None: the model belongs to no tenant (superusers only).
    Tenant admins may edit a model only if `tenant_admins_edit`; superusers as Django allows."""

    tenant_path: str | None = "tenant"
    tenant_admins_edit = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        ids = admin_tenant_ids(request)
        if ids is None:
            return qs
        if self.tenant_path is None:
            return qs.none()
        return qs.filter(**{f"{self.tenant_path}__in": ids})

    def _tenant_admin(self, request: HttpRequest) -> bool:
        return self.tenant_path is not None and bool(admin_tenant_ids(request))

    def has_module_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return super().has_module_permission(request)
        return self._tenant_admin(request)

    # Object-level scope comes from get_queryset: another tenant's object is not found.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self._tenant_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return super().has_add_permission(request)
        return self.tenant_admins_edit and self._tenant_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self.tenant_admins_edit and self._tenant_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self.tenant_admins_edit and self._tenant_admin(request)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any):
        ids = admin_tenant_ids(request)
        if ids is not None:
            if db_field.related_model is Tenant:
                kwargs["queryset"] = Tenant.objects.filter(pk__in=ids)
            elif db_field.related_model is get_user_model():
                kwargs["queryset"] = (
                    get_user_model().objects.filter(memberships__tenant__in=ids).distinct()
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> tuple:
        return tuple(TenantFilter if f == "tenant" else f for f in super().get_list_filter(request))


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FailureFieldsMixin:
    """error_message and error_stack as preformatted, read-only text."""

    class Media:
        css = {"all": ("executions/admin.css",)}

    @admin.display(description="Error message")
    def error_message_pre(self, obj: Any) -> str:
        return format_html("<pre>{}</pre>", obj.error_message or "—")

    @admin.display(description="Error stack")
    def error_stack_pre(self, obj: Any) -> str:
        return format_html('<pre class="stack">{}</pre>', obj.error_stack or "—")

    @admin.display(description="Error")
    def short_error(self, obj: Any) -> str:
        text = obj.error_message or ""
        return text if len(text) <= 80 else text[:79] + "…"


class EstimatedCountPaginator(Paginator):
    """An unfiltered list of a big table is counted from PostgreSQL's statistics, not COUNT(*)
    (which reads every row); filtered lists and small tables are counted exactly."""

    ESTIMATE_ABOVE = 100_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if connection.vendor == "postgresql" and isinstance(qs, QuerySet) and not qs.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > self.ESTIMATE_ABOVE:
                return int(row[0])
        return super().count


def masked_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(secrets.masked_deep(value), indent=2))


class MaskedDefinitionsMixin:
    """A read-only page whose JSON `masked_fields` hold units of work (an HTTP request's headers,
    a command's env): each shown with its secret values masked, never in full."""

    masked_fields: tuple[str, ...] = ()

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*(super().get_exclude(request, obj) or ()), *self.masked_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        shown = tuple(f"{name}_masked" for name in self.masked_fields)
        return (*super().get_readonly_fields(request, obj), *shown)

    def __getattr__(self, name: str) -> Any:
        # `<field>_masked`: the display of a masked field (a readonly "field" the admin calls).
        field = name.removesuffix("_masked")
        if name.endswith("_masked") and field in type(self).masked_fields:

            def shown(obj: Any) -> str:
                return masked_json(getattr(obj, field))

            shown.short_description = f"{field.replace('_', ' ')} (secrets masked)"
            return shown
        raise AttributeError(name)


class ExecutionAdmin(ReadOnlyMixin, FailureFieldsMixin, TenantScopedAdmin):
    kind: str = ""
    actions = ["retry_selected"]
    exclude = ("error_message", "error_stack")
    show_full_result_count = False  # a second COUNT(*) of a million rows is not worth it
    paginator = EstimatedCountPaginator
    list_per_page = 50

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("error_message_pre", "error_stack_pre", *super().get_readonly_fields(request, obj))

    def has_retry_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return True
        permission = kinds.get(self.kind).permission
        return any(
            permission in permissions.of_role(m.role)
            for m in Membership.objects.filter(
                user=request.user, tenant_id__in=admin_tenant_ids(request)
            ).only("role")
        )

    @admin.action(description="Retry selected", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        items = list(queryset.select_related("tenant"))
        if len(items) > CONFIRM_OVER and request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/executions/retry_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"Retry {len(items)} {self.model._meta.verbose_name_plural}?",
                    "opts": self.model._meta,
                    "items": items[:100],
                    "count": len(items),
                    "more": max(0, len(items) - 100),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "selected": [str(obj.pk) for obj in items],
                    "select_across": request.POST.get("select_across", "0"),
                },
            )
        retried, skipped = 0, 0
        refused: Counter[str] = Counter()
        actors: dict[Any, Actor | None] = {}
        for obj in items:
            if obj.tenant_id not in actors:
                try:
                    actors[obj.tenant_id] = admin_actor(request, obj.tenant)
                except NotFound:
                    actors[obj.tenant_id] = None
            actor = actors[obj.tenant_id]
            if actor is None:
                refused[f"not a member of {obj.tenant.slug}"] += 1
                continue
            try:
                # Queued for the workers: the list shows each retry's status, no waiting here.
                services.retry_one(actor, self.kind, str(obj.pk), wait=False)
                retried += 1
            except NotRetryable:
                skipped += 1
            except PermissionDenied as exc:
                refused[f"missing permission {exc.permission}"] += 1
        self.message_user(
            request,
            f"Retried {retried} executions; {skipped} skipped (not retryable)",
            messages.SUCCESS if retried else messages.WARNING,
        )
        if refused:
            self.message_user(
                request,
                "Refused: " + ", ".join(f"{n} ({why})" for why, n in refused.items()),
                messages.ERROR,
            )
        return None


@admin.register(FunctionExecution)
class FunctionExecutionAdmin(ExecutionAdmin):
    kind = Kind.FUNCTION
    list_display = (
        "id",
        "function",
        "tenant",
        "status",
        "short_error",
        "executed_at",
        "retry_count",
        "invoked_by",
    )
    list_filter = ("status", "invoked_by", "tenant")
    search_fields = ("id", "function__name", "handler", "error_message", "fingerprint")
    list_select_related = ("function", "tenant")
    raw_id_fields = ("function", "retry_of", "retried_by")
    ordering = ("-executed_at", "-id")
    exclude = (*ExecutionAdmin.exclude, "environment")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("environment_masked", *super().get_readonly_fields(request, obj))

    @admin.display(description="Environment (secrets masked)")
    def environment_masked(self, obj: Any) -> str:
        return format_html("<pre>{}</pre>", masked_environment(obj.environment))


@admin.register(AutomationExecution)
class AutomationExecutionAdmin(MaskedDefinitionsMixin, ExecutionAdmin):
    kind = Kind.AUTOMATION
    masked_fields = ("execution_context",)
    list_display = (
        "execution_id",
        "automation_rule",
        "tenant",
        "status",
        "short_error",
        "attempt",
        "failed_action_index",
        "updated_at",
    )
    list_filter = ("status", "tenant")
    search_fields = ("execution_id", "automation_rule__name", "error_message", "fingerprint")
    list_select_related = ("automation_rule", "tenant")
    ordering = ("-started_at", "-execution_id")


class OperationTypeFilter(admin.SimpleListFilter):
    """The operation types there may be: command.exec and the registered handlers (a DISTINCT
    over every job would read the whole table)."""

    title = "operation type"
    parameter_name = "operation_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in handlers.operation_types()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(operation_type=self.value()) if self.value() else queryset


@admin.register(Job)
class JobAdmin(StartWorkMixin, MaskedDefinitionsMixin, ExecutionAdmin):
    kind = Kind.JOB
    masked_fields = ("operation",)
    start_input_label = 'Operation (JSON: {"type": ..., "data": {...}})'
    start_with_host = True

    def start_initial(self, obj: Job) -> dict:
        # A new job like this one: its operation shown masked, kept as stored if left so.
        operation = json.dumps(secrets.masked_deep(obj.operation), indent=2)
        return {"input": operation, "target_hostname": obj.target_hostname}

    def start_work(self, actor: Actor, obj: Job, data: dict, host: str) -> list:
        operation = secrets.keep_masked(data, obj.operation)
        return [(Kind.JOB, services.start_job(actor, operation, host or None))]

    def audits_start(self) -> bool:
        return True

    list_display = (
        "job_id",
        "operation_type",
        "tenant",
        "status",
        "target_hostname",
        "taken_by",
        "revision",
        "short_error",
        "updated_at",
    )
    list_filter = ("status", OperationTypeFilter, "tenant")
    search_fields = ("job_id", "operation_type", "target_hostname", "error_message", "fingerprint")
    list_select_related = ("tenant",)
    ordering = ("-created_at", "-job_id")


@admin.register(WorkflowExecution)
class WorkflowExecutionAdmin(ExecutionAdmin):
    kind = Kind.WORKFLOW
    list_display = ("id", "workflow", "tenant", "status", "short_error", "attempt", "updated_at")
    list_filter = ("status", "tenant")
    search_fields = ("id", "workflow__external_id", "error_message", "fingerprint")
    list_select_related = ("workflow", "tenant")
    ordering = ("-created_time", "-id")


def shown_definition(definition: Any) -> str:
    """A seed 004 definition as preformatted JSON, its secret header and env values masked."""
    text = json.dumps(secrets.masked_deep(definition or {}), indent=2, sort_keys=True)
    return format_html("<pre>{}</pre>", text)


@admin.register(Run)
class RunAdmin(MaskedDefinitionsMixin, ExecutionAdmin):
    kind = Kind.RUN
    masked_fields = ("workflow_definition",)
    list_display = ("id", "workflow_id", "tenant", "status", "short_error", "started_at")
    list_filter = ("status", "tenant")
    search_fields = ("id", "workflow_id", "error_message", "fingerprint", "summary")
    list_select_related = ("tenant",)
    ordering = ("-started_at", "-id")
    exclude = (*ExecutionAdmin.exclude, "workflow_definition")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*super().get_readonly_fields(request, obj), "definition_pre")

    @admin.display(description="Workflow definition")
    def definition_pre(self, obj: Run) -> str:
        return shown_definition(obj.workflow_definition)


# --- definitions and tenancy (editable) --------------------------------------------------------


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    """Tenant admins see their tenants; creating, renaming or deleting one is for superusers."""

    tenant_path = "pk"
    list_display = ("slug", "name", "functions_project_id", "workflows_project", "created_at")
    search_fields = ("slug", "name", "functions_project_id", "workflows_project")
    ordering = ("-created_at",)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    tenant_admins_edit = True
    list_display = ("user", "tenant", "role")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "tenant__slug")
    list_select_related = ("user", "tenant")
    ordering = ("-pk",)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin, APIKeyModelAdmin):
    tenant_admins_edit = True
    list_display = (*APIKeyModelAdmin.list_display, "tenant", "user", "last_used_at")
    list_filter = ("revoked", "tenant", "created")
    search_fields = ("name", "prefix", "tenant__slug", "user__username")
    list_select_related = ("tenant", "user")
    ordering = ("-created",)


@admin.register(Function)
class FunctionAdmin(StartWorkMixin, TenantScopedAdmin):
    form = FunctionForm
    tenant_admins_edit = True
    ordering = ("-created_at",)
    list_display = ("name", "tenant", "handler", "version", "timeout_ms", "created_at")
    list_filter = ("handler", "tenant")
    search_fields = ("id", "name", "handler")
    list_select_related = ("tenant",)
    # The version is the functions API's: a code change made here is a new one (save_model).
    readonly_fields = ("version",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        code = obj.code
        obj.code = Function.objects.values_list("code", flat=True).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        if code != obj.code:
            # The API's PUT: the new code as the next version, which executions record.
            actor = admin_actor(request, obj.tenant)
            function = defining.update(actor, obj, {"code": code, "versionComment": "admin"})
            obj.code, obj.version = function.code, function.version
        audit_change(form, request.user, client_ip(request))

    def start_work(self, actor: Actor, obj: Function, data: dict, host: str) -> list:
        actor.require("functions:execute")
        return [(Kind.FUNCTION, starting.start(obj, data, invoked_by="manual"))]


class AutomationRuleForm(DefinitionForm):
    definition_field = "actions"

    class Meta:
        model = AutomationRule
        fields = ("tenant", "name", "trigger", "actions", "version", "created_at")


class WorkflowForm(DefinitionForm):
    definition_field = "tasks"

    class Meta:
        model = Workflow
        fields = ("tenant", "external_id", "version", "tasks", "created_at")


@admin.register(FunctionVersion)
class FunctionVersionAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """Every code a function has had (written by the functions API; read-only here)."""

    tenant_path = "function__tenant"
    ordering = ("-created_at", "-id")
    list_display = ("function", "version", "comment", "created_by", "created_at")
    search_fields = ("function__id", "function__name", "comment")
    raw_id_fields = ("function",)
    list_select_related = ("function",)


@admin.register(AutomationRule)
class AutomationRuleAdmin(StartWorkMixin, TenantScopedAdmin):
    form = AutomationRuleForm
    start_input_label = (
        "Event data (JSON object): fires an event of this rule's type, which runs every "
        "enabled rule it matches"
    )

    def start_work(self, actor: Actor, obj: AutomationRule, data: dict, host: str) -> list:
        event = (obj.trigger or {}).get("event")
        fired = services.fire_automation_event(actor, event, data)
        return [(Kind.AUTOMATION, execution) for execution in fired]

    def audits_start(self) -> bool:
        return True

    tenant_admins_edit = True
    ordering = ("-created_at",)
    list_display = ("name", "tenant", "version", "created_at")
    list_filter = ("tenant",)
    search_fields = ("id", "name")
    list_select_related = ("tenant",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_definition_change(
            form, request.user, client_ip(request), action="rule_changed", kind=Kind.AUTOMATION
        )


@admin.register(Workflow)
class WorkflowAdmin(StartWorkMixin, TenantScopedAdmin):
    form = WorkflowForm
    start_input_label = "Input (JSON object)"

    def start_work(self, actor: Actor, obj: Workflow, data: dict, host: str) -> list:
        # Cognite's run: as the signed-in admin (a session made on their behalf, no nonce).
        project = actor.tenant.workflows_project
        execution = services.run_workflow(
            actor, project, obj.external_id, obj.version, nonce=None, input_data=data
        )
        return [(Kind.WORKFLOW, execution)]

    tenant_admins_edit = True
    ordering = ("-created_at",)
    list_display = ("external_id", "version", "tenant", "created_at")
    list_filter = ("tenant",)
    search_fields = ("id", "external_id", "version")
    list_select_related = ("tenant",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_definition_change(
            form, request.user, client_ip(request), action="workflow_changed", kind=Kind.WORKFLOW
        )


@admin.register(SavedWorkflow)
class SavedWorkflowAdmin(StartWorkMixin, ReadOnlyMixin, TenantScopedAdmin):
    """Seed 004's saved workflows, shown read-only (secrets masked): they are saved through
    PUT /v1/workflows/{id}, which checks the whole definition."""

    ordering = ("-created_at",)
    list_display = ("name", "id", "tenant", "version", "updated_at")
    list_filter = ("tenant",)
    search_fields = ("id", "name")
    list_select_related = ("tenant",)
    exclude = ("definition",)
    readonly_fields = ("definition_pre",)

    start_input_label = "Inputs (JSON object, as its inputSchema says)"

    @admin.display(description="Definition")
    def definition_pre(self, obj: SavedWorkflow) -> str:
        return shown_definition(obj.definition)

    def start_work(self, actor: Actor, obj: SavedWorkflow, data: dict, host: str) -> list:
        return [(Kind.RUN, saved.start_workflow_run(actor, obj.pk, inputs=data))]


@admin.register(WorkflowHeader)
class WorkflowHeaderAdmin(TenantScopedAdmin):
    # The workflow Cognite's POST /workflows upserts; its versions are the Workflow rows.
    tenant_admins_edit = True
    ordering = ("-updated_at",)
    list_display = ("external_id", "description", "tenant", "updated_at")
    list_filter = ("tenant",)
    search_fields = ("external_id", "description")
    list_select_related = ("tenant",)


# --- the evidence trail and internals (read-only) ----------------------------------------------


@admin.register(JobEvent)
class JobEventAdmin(MaskedDefinitionsMixin, ReadOnlyMixin, TenantScopedAdmin):
    masked_fields = ("data",)
    tenant_path = "job__tenant"
    ordering = ("-timestamp", "-id")
    list_display = ("job", "revision", "type", "timestamp")
    list_filter = ("type",)
    search_fields = ("job__job_id", "type")
    raw_id_fields = ("job",)


@admin.register(WorkflowTaskExecution)
class WorkflowTaskExecutionAdmin(ReadOnlyMixin, FailureFieldsMixin, TenantScopedAdmin):
    tenant_path = "execution__tenant"
    ordering = (F("started_at").desc(nulls_last=True), "-pk")
    list_display = (
        "task_external_id",
        "execution",
        "status",
        "attempts",
        "max_attempts",
        "short_error",
    )
    list_filter = ("status",)
    search_fields = ("task_external_id", "execution__id", "error_message")
    exclude = ("error_message", "error_stack")
    readonly_fields = ("error_message_pre", "error_stack_pre")


@admin.register(WorkflowSession)
class WorkflowSessionAdmin(ReadOnlyMixin, TenantScopedAdmin):
    ordering = ("-created_at",)
    list_display = (
        "id",
        "tenant",
        "user",
        "api_key",
        "type",
        "created_at",
        "expires_at",
        "used_at",
    )
    list_filter = ("type", "tenant")
    search_fields = ("id", "user__username")
    exclude = ("nonce",)  # a live nonce authorises a retry: never shown


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyMixin, FailureFieldsMixin, TenantScopedAdmin):
    ordering = ("-recorded_at", "-id")
    list_display = ("kind", "object_id", "number", "status", "short_error", "recorded_at")
    list_filter = ("kind", "status", "tenant")
    search_fields = ("object_id", "error_message")
    exclude = ("error_message", "error_stack")
    readonly_fields = ("error_message_pre", "error_stack_pre")


@admin.register(BulkRetry)
class BulkRetryAdmin(ReadOnlyMixin, TenantScopedAdmin):
    ordering = ("-created_at",)
    list_display = (
        "id",
        "tenant",
        "actor",
        "source",
        "status",
        "total",
        "done",
        "skipped",
        "failed",
        "created_at",
    )
    list_filter = ("status", "source", "tenant")
    search_fields = ("id", "actor")


@admin.register(BulkRetryPlan)
class BulkRetryPlanAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """What a running bulk retry still works through (deleted when it ends)."""

    tenant_path = "bulk__tenant"
    ordering = ("-bulk__created_at", "kind")
    list_display = ("bulk", "kind", "planned")
    list_filter = ("kind",)
    list_select_related = ("bulk",)
    exclude = ("keys",)
    readonly_fields = ("planned",)

    @admin.display(description="planned items")
    def planned(self, obj: BulkRetryPlan) -> int:
        return len(obj.keys)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, TenantScopedAdmin):
    ordering = ("-created_at", "-id")
    list_display = (
        "created_at",
        "actor",
        "source",
        "action",
        "kind",
        "target_id",
        "new_target_id",
        "status_before",
        "status_after",
        "tenant",
    )
    list_filter = ("source", "kind", "action", "tenant")
    search_fields = ("actor", "target_id", "new_target_id", "request_id", "idempotency_key")
    list_select_related = ("tenant",)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyMixin, TenantScopedAdmin):
    ordering = ("-created_at", "-id")
    list_display = ("name", "tenant", "created_at", "published_at")
    list_filter = ("name", "tenant")
    search_fields = ("name",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyMixin, TenantScopedAdmin):
    ordering = ("-created_at", "-id")
    list_display = ("actor", "key", "scope", "state", "status_code", "tenant", "created_at")
    list_filter = ("state", "status_code")
    search_fields = ("actor", "key", "scope")


@admin.register(FailureCount)
class FailureCountAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """The hourly failure counts the console's chart and error groups read (kept by triggers)."""

    ordering = ("-bucket", "-id")

    list_display = ("bucket", "kind", "status", "fingerprint", "source", "n", "tenant_id")
    list_filter = ("kind", "status")
    search_fields = ("fingerprint", "source")
    date_hierarchy = "bucket"


@admin.register(FailureCountDelta)
class FailureCountDeltaAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """Count changes the triggers appended and the next read or reaper round folds in."""

    tenant_path = "tenant_id"
    ordering = ("-bucket", "-id")

    list_display = ("bucket", "kind", "status", "fingerprint", "source", "n", "tenant_id")
    list_filter = ("kind", "status")


@admin.register(FailureGroup)
class FailureGroupAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """Error groups' triage (executions/triage.py changes them: the console and the API)."""

    ordering = ("-updated_at", "-id")
    list_display = ("fingerprint", "kind", "state", "until", "reason", "regressed_at", "tenant")
    list_filter = ("kind", "state")
    search_fields = ("fingerprint", "reason")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """The workers running now (and those gone within the hour): the reaper gives back the tasks
    of a worker whose last beat is older than REDRIVE_LEASE_SECONDS. Shared by every tenant:
    superusers only."""

    tenant_path = None

    list_display = ("worker_id", "hostname", "pid", "started_at", "seen_at")
    search_fields = ("worker_id", "hostname")
    ordering = ("-seen_at",)


# --- webhooks (issue 21) ----------------------------------------------------------------------


class WebhookSubscriptionForm(forms.ModelForm):
    """Checked by the API's own validation (webhooks.subscriptions.validate): the allow-list,
    the event types, the filter's kind."""

    class Meta:
        model = WebhookSubscription
        fields = (
            "tenant",
            "url",
            "events",
            "filter_kind",
            "filter_name",
            "format",
            "description",
            "enabled",
        )

    def clean(self) -> dict:
        data = super().clean()
        body = {
            "url": data.get("url"),
            "events": data.get("events"),
            "filter": {"kind": data.get("filter_kind"), "name": data.get("filter_name") or ""},
        }
        try:
            webhook_subscriptions.validate(body, partial=False)
        except InvalidInput as exc:
            field = exc.field.split(".")[-1].split("[")[0]
            field = {"kind": "filter_kind", "name": "filter_name"}.get(field, field)
            self.add_error(field if field in self.fields else None, exc.message)
        return data


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(TenantScopedAdmin):
    form = WebhookSubscriptionForm
    tenant_admins_edit = True
    ordering = ("-created_at",)
    list_display = ("url", "tenant", "enabled", "disabled_reason", "format", "created_at")
    list_filter = ("tenant", "enabled")
    readonly_fields = ("masked_secret", "disabled_reason", "disabled_at", "failing_since")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        new = not change
        if new:
            obj.secret = webhook_signing.new_secret()
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if new:  # shown once: the pages after this one mask it
            messages.warning(request, f"Signing secret (shown only now): {obj.secret}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, FailureFieldsMixin, TenantScopedAdmin):
    ordering = ("-id",)
    list_display = ("id", "event_type", "url", "status", "attempt", "response_status", "updated_at")
    list_filter = ("tenant", "status", "event_type")
    search_fields = ("message_id", "url")
    list_select_related = ("tenant",)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """Every attempt of every delivery: a subscription's delivery log."""

    ordering = ("-id",)
    list_display = ("id", "subscription", "number", "at", "response_status", "ok", "duration_ms")
    list_filter = ("tenant", "ok")
    list_select_related = ("subscription",)


@admin.register(QueuePause)
class QueuePauseAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """The paused queues (paused and resumed on the console's workers page, audited there).
    Shared by every tenant: superusers only."""

    tenant_path = None

    list_display = ("queue_name", "paused_by", "paused_at")
    ordering = ("queue_name",)
