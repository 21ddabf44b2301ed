"""Redrive's data, by area: tenancy and credentials, what every kind shares, one module per kind
(functions, automations, jobs, workflows, runs), the evidence trail, and bulk retries.

Field names follow the seed each kind comes from (snake_case here, the seed's own spelling in the
API serializers). State changes do not live here: they are conditional UPDATEs in
`executions/kinds/` (running the work and retrying it).

Every model is re-exported here, so `from executions.models import X` is the one import path.
"""

from .automations import AutomationExecution, AutomationRule
from .base import Failure, Kind, Leased, WorkerHeartbeat, ignored_until_index, object_id, run_id
from .bulk import BulkRetry, BulkRetryPlan
from .evidence import (
    Attempt,
    AuditEvent,
    FailureCount,
    FailureCountDelta,
    IdempotencyRecord,
    OutboxEvent,
)
from .functions import Function, FunctionExecution, FunctionVersion
from .jobs import Job, JobEvent
from .queues import QueuePause
from .runs import Run, SavedWorkflow
from .tenancy import (
    ApiKey,
    ApiKeyManager,
    Membership,
    Role,
    Tenant,
    WorkflowSession,
)
from .triage import FailureGroup
from .webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription
from .workflows import Workflow, WorkflowExecution, WorkflowHeader, WorkflowTaskExecution

__all__ = [
    "ApiKey",
    "ApiKeyManager",
    "Attempt",
    "AuditEvent",
    "AutomationExecution",
    "AutomationRule",
    "BulkRetry",
    "BulkRetryPlan",
    "Failure",
    "ignored_until_index",
    "FailureCount",
    "FailureCountDelta",
    "FailureGroup",
    "Function",
    "FunctionExecution",
    "FunctionVersion",
    "IdempotencyRecord",
    "Job",
    "JobEvent",
    "Kind",
    "Leased",
    "Membership",
    "OutboxEvent",
    "QueuePause",
    "Role",
    "Run",
    "SavedWorkflow",
    "Tenant",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkerHeartbeat",
    "Workflow",
    "WorkflowExecution",
    "WorkflowHeader",
    "WorkflowSession",
    "WorkflowTaskExecution",
    "object_id",
    "run_id",
]
