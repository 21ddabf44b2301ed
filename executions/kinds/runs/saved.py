"""Saved workflows (seed 004's `/v1/workflows`): saving one, changing it, starting a run of it.
The API calls these (the admin and a definitions file may too); `definition` is already valid
(definition.clean, which the API's serializer calls).

Each is one durable transaction. A keyed request (Idempotency-Key) records what it made in that
same transaction, so the same request retried after its process died (holding the key, having
committed) answers what was made instead of making another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from ... import idempotency as idempotency_store
from ...errors import InvalidInput
from ...models import Run, SavedWorkflow
from ...tenancy import get_for_tenant
from ...work import secrets
from . import definition as definitions
from .run import start_run

if TYPE_CHECKING:
    from ...idempotency import Claim
    from ...tenancy import Actor

PERMISSION = "runs:write"
NOT_FOUND = "Workflow not found"


def get_workflow(actor: Actor, workflow_id: str) -> SavedWorkflow:
    actor.require("runs:read")
    return get_for_tenant(SavedWorkflow, actor.tenant, NOT_FOUND, pk=workflow_id)


def create_workflow(
    actor: Actor,
    *,
    name: str,
    definition: dict,
    description: str = "",
    idempotency: Claim | None = None,
    durable: bool = True,
) -> SavedWorkflow:
    """`durable=False`: inside the caller's transaction (manage.py apply's one for a file)."""
    actor.require(PERMISSION)
    if idempotency is not None and idempotency.outcome is not None:
        return SavedWorkflow.objects.get(pk=idempotency.outcome["new_id"], tenant=actor.tenant)
    with transaction.atomic(durable=durable):
        workflow = SavedWorkflow.objects.create(
            tenant=actor.tenant,
            name=name,
            description=description,
            definition=definition,
            owner_user_id=actor.label,
        )
        if idempotency is not None:
            idempotency_store.record_outcome(idempotency, kind="workflow", new_id=workflow.pk)
    return workflow


def update_workflow(
    actor: Actor,
    workflow_id: str,
    *,
    name: str,
    definition: dict,
    description: str = "",
    durable: bool = True,
) -> SavedWorkflow:
    """Replace the workflow's name, description and definition; a changed definition is a new
    version. Runs already started keep the definition they snapshotted (a retry of one resumes
    that snapshot), new runs take this one."""
    actor.require(PERMISSION)
    with transaction.atomic(durable=durable):
        # Locked: two concurrent saves make two versions, not one version twice.
        workflow = get_for_tenant(
            SavedWorkflow.objects.select_for_update(), actor.tenant, NOT_FOUND, pk=workflow_id
        )
        definition = secrets.keep_masked(definition, workflow.definition)
        if definition != workflow.definition:
            workflow.version += 1
        workflow.name, workflow.description = name, description
        workflow.definition = definition
        workflow.updated_at = timezone.now()
        workflow.save(update_fields=["name", "description", "definition", "version", "updated_at"])
    return workflow


def start_workflow_run(
    actor: Actor,
    workflow_id: str,
    *,
    inputs: dict,
    trigger_node_id: str = "",
    idempotency: Claim | None = None,
) -> Run:
    """A run of the workflow's current definition (snapshotted, with its version), queued for a
    worker once committed. The inputs are checked against its inputSchema first."""
    actor.require(PERMISSION)
    if idempotency is not None and idempotency.outcome is not None:
        return Run.objects.get(pk=idempotency.outcome["new_id"], tenant=actor.tenant)
    workflow = get_for_tenant(SavedWorkflow, actor.tenant, NOT_FOUND, pk=workflow_id)
    definition = workflow.definition
    inputs = definitions.check_inputs(definition, inputs)
    triggers = definition.get("triggerNodeIds") or []
    if trigger_node_id and trigger_node_id not in triggers:
        raise InvalidInput(
            f"triggerNodeId must be one of the workflow's triggerNodeIds ({', '.join(triggers)})",
            field="triggerNodeId",
        )
    with transaction.atomic(durable=True):
        run = start_run(
            actor.tenant,
            definition,
            workflow_id=workflow.pk,
            workflow_version=workflow.version,
            prop_values=inputs,
            triggered_by=actor.label,
            trigger_source=actor.source,
            owner=workflow.owner_user_id,
            trigger_node_id=trigger_node_id,
        )
        if idempotency is not None:
            idempotency_store.record_outcome(idempotency, kind="run", new_id=run.pk)
    return run
