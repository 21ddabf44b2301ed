"""Every API route, at the seeds' own paths (no trailing slashes: the seeds have none)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import schema  # noqa: F401 - registers the auth schemes
from .views import (
    auth,
    automations,
    failures,
    function_definitions,
    functions,
    health,
    jobs,
    runs,
    triage,
    webhooks,
    workflows,
)

FN = "api/functions/projects/<str:projectId>/functions/<str:functionId>"
WF = "api/v1/projects/<str:project>"

FNS = "api/functions/projects/<str:projectId>/functions"
DEF = function_definitions

urlpatterns = [
    # issue 21: webhooks
    path("api/webhooks", webhooks.WebhookListApi.as_view(), name="api-webhooks"),
    path("api/webhooks/<str:id>", webhooks.WebhookApi.as_view(), name="api-webhook"),
    path(
        "api/webhooks/<str:id>/rotate-secret",
        webhooks.WebhookRotateApi.as_view(),
        name="api-webhook-rotate",
    ),
    path(
        "api/webhooks/<str:id>/deliveries",
        webhooks.WebhookDeliveriesApi.as_view(),
        name="api-webhook-deliveries",
    ),
    # seed 000: defining and starting functions
    path(FNS, DEF.FunctionListApi.as_view(), name="api-functions"),
    path(FN, DEF.FunctionApi.as_view(), name="api-function"),
    path(f"{FN}/activate", DEF.FunctionActivateApi.as_view(), name="api-function-activate"),
    path(f"{FN}/deactivate", DEF.FunctionDeactivateApi.as_view(), name="api-function-deactivate"),
    path(f"{FN}/execute", DEF.FunctionExecuteApi.as_view(), name="api-function-execute"),
    path(f"{FN}/versions", DEF.FunctionVersionsApi.as_view(), name="api-function-versions"),
    path(f"{FN}/rollback", DEF.FunctionRollbackApi.as_view(), name="api-function-rollback"),
    path(
        "api/functions/webhook/<str:projectId>",
        DEF.FunctionWebhookApi.as_view(),
        name="api-function-webhook",
    ),
    # seed 000: retries
    path(
        f"{FN}/retry/<str:executionIndex>",
        functions.FunctionRetryByIndexApi.as_view(),
        name="api-function-retry",
    ),
    path(
        f"{FN}/executions/<str:executionId>/retry",
        functions.FunctionRetryByIdApi.as_view(),
        name="api-function-retry-by-id",
    ),
    path(f"{FN}/logs", functions.FunctionLogsApi.as_view(), name="api-function-logs"),
    path(
        f"{FN}/executions/<str:executionId>",
        functions.FunctionExecutionApi.as_view(),
        name="api-function-execution",
    ),
    # seed 001
    path(
        "api/v1/automation/executions",
        automations.AutomationExecutionListApi.as_view(),
        name="api-automation-executions",
    ),
    path(
        "api/v1/automation/executions/<str:id>",
        automations.AutomationExecutionApi.as_view(),
        name="api-automation-execution",
    ),
    path(
        "api/v1/automation/executions/<str:id>/retry",
        automations.AutomationRetryApi.as_view(),
        name="api-automation-retry",
    ),
    path(
        "api/v1/automation/rules",
        automations.AutomationRuleListApi.as_view(),
        name="api-automation-rules",
    ),
    path(
        "api/v1/automation/events",
        automations.AutomationEventApi.as_view(),
        name="api-automation-events",
    ),
    path(
        "api/v1/automation/rules/<str:id>",
        automations.AutomationRuleApi.as_view(),
        name="api-automation-rule",
    ),
    # seed 002
    path("job", jobs.JobListApi.as_view(), name="api-jobs"),
    path("job/<str:id>", jobs.JobApi.as_view(), name="api-job"),
    path("job/<str:id>/retry", jobs.JobRetryApi.as_view(), name="api-job-retry"),
    # seed 003
    path(f"{WF}/sessions", workflows.SessionCreateApi.as_view(), name="api-sessions"),
    path(
        f"{WF}/workflows/executions",
        workflows.WorkflowExecutionListApi.as_view(),
        name="api-workflow-executions",
    ),
    path(
        f"{WF}/workflows/executions/list",
        workflows.WorkflowExecutionListPostApi.as_view(),
        name="api-workflow-executions-list",
    ),
    path(
        f"{WF}/workflows/executions/<str:executionId>",
        workflows.WorkflowExecutionApi.as_view(),
        name="api-workflow-execution",
    ),
    path(
        f"{WF}/workflows/executions/<str:executionId>/retry",
        workflows.WorkflowRetryApi.as_view(),
        name="api-workflow-retry",
    ),
    path(
        f"{WF}/workflows/executions/<str:executionId>/cancel",
        workflows.WorkflowCancelApi.as_view(),
        name="api-workflow-cancel",
    ),
    path(f"{WF}/workflows", workflows.WorkflowUpsertApi.as_view(), name="api-workflows"),
    path(
        f"{WF}/workflows/versions",
        workflows.WorkflowVersionUpsertApi.as_view(),
        name="api-workflow-versions",
    ),
    path(
        f"{WF}/workflows/<str:workflowExternalId>/versions/<str:version>/run",
        workflows.WorkflowRunApi.as_view(),
        name="api-workflow-run",
    ),
    path(
        f"{WF}/workflows/<str:workflowExternalId>/versions/<str:version>",
        workflows.WorkflowVersionApi.as_view(),
        name="api-workflow-version",
    ),
    path(
        f"{WF}/workflows/<str:workflowExternalId>",
        workflows.WorkflowApi.as_view(),
        name="api-workflow",
    ),
    # seed 004
    path("v1/runs", runs.RunListApi.as_view(), name="api-runs"),
    path("v1/runs/<str:id>", runs.RunApi.as_view(), name="api-run"),
    path("v1/runs/<str:id>/retry", runs.RunRetryApi.as_view(), name="api-run-retry"),
    path("v1/workflows", runs.WorkflowCreateApi.as_view(), name="api-run-workflows"),
    path("v1/workflows/<str:id>", runs.WorkflowApi.as_view(), name="api-run-workflow"),
    path(
        "v1/workflows/<str:id>/runs",
        runs.WorkflowRunsApi.as_view(),
        name="api-run-workflow-runs",
    ),
    # Redrive's own
    path("api/failures", failures.FailureListApi.as_view(), name="api-failures"),
    path("api/failures/retry", failures.FailureRetryApi.as_view(), name="api-failures-retry"),
    path(
        "api/failures/<str:kind>/<str:id>/retry",
        failures.FailureItemRetryApi.as_view(),
        name="api-failure-retry",
    ),
    path(
        "api/failures/<str:kind>/<str:id>/ignore",
        triage.FailureIgnoreApi.as_view(),
        name="api-failure-ignore",
    ),
    path(
        "api/failures/<str:kind>/<str:id>/reopen",
        triage.FailureReopenApi.as_view(),
        name="api-failure-reopen",
    ),
    path(
        "api/groups/<str:fingerprint>/ignore",
        triage.GroupIgnoreApi.as_view(),
        name="api-group-ignore",
    ),
    path(
        "api/groups/<str:fingerprint>/reopen",
        triage.GroupReopenApi.as_view(),
        name="api-group-reopen",
    ),
    path("api/bulk-retries/<str:id>", failures.BulkRetryApi.as_view(), name="api-bulk-retry"),
    path(
        "api/bulk-retries/<str:id>/cancel",
        failures.BulkRetryCancelApi.as_view(),
        name="api-bulk-retry-cancel",
    ),
    path("api/auth/token", auth.TokenApi.as_view(), name="api-token"),
    path("health", health.HealthApi.as_view(), name="health"),
    path("health/live", health.LiveApi.as_view(), name="health-live"),
    # OpenAPI
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file, not inline (CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
]
