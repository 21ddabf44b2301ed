"""Retrying a run (seed 004): a new run that resumes from the failure point.

Retryable: `failure`, `cancelled` or `partial`, and only once: a second retry of the same run is a
conflict naming the run that already retried it (the unique `source_run` makes a racing second retry
fail in the database too). The new run has `sourceRunId` = the old run, the same definition snapshot
and inputs; outputs of nodes that succeeded are carried over into `executionState` and are not
executed again; failed and never-run nodes run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from ...models import Run
from ..base import ANY, Retried, Rule
from .run import enqueue_runs, new_run

if TYPE_CHECKING:
    from ...tenancy import Actor

RETRYABLE = Run.RETRYABLE


def reason(obj: Run) -> str | None:
    # The reverse accessor: no query when the caller selected it (the console's inbox does).
    retried_by = getattr(getattr(obj, "retried_by", None), "pk", None)
    if retried_by:
        return f"Run {obj.pk} was already retried by run {retried_by}"
    if obj.status not in RETRYABLE:
        return f"Run is {obj.status}; only failure, cancelled or partial runs can be retried"
    return None


def retried_by(obj: Run) -> str:
    return Run.objects.filter(source_run=obj.pk).values_list("pk", flat=True).first() or ""


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE, retried_by__isnull=True)


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    counts = {
        "already retried": qs.filter(retried_by__isnull=False).count(),
        "not failed": qs.exclude(status__in=RETRYABLE).filter(retried_by__isnull=True).count(),
    }
    return {k: v for k, v in counts.items() if v}


def retry(actor: Actor, ids: list[str], *, input=ANY, **options) -> list[Retried]:  # noqa: A002
    """`input`: the inputs (prop values) the new run gets instead of the original's."""
    originals = list(
        retryable(Run.objects.select_for_update(of=("self",)), actor).filter(
            pk__in=ids, tenant=actor.tenant
        )
    )
    new = Run.objects.bulk_create(
        new_run(
            actor.tenant,
            o.workflow_definition,
            workflow_id=o.workflow_id,
            workflow_version=o.workflow_version,
            prop_values=o.prop_values if input is ANY else input,
            triggered_by=actor.label,
            trigger_source="retry",
            owner=o.workflow_owner_user_id,
            source_run=o,
            trigger_node_id=o.trigger_node_id,
            carried={
                node: o.execution_state.get(node)
                for node, state in o.node_states.items()
                if state.get("status") == "success"
            },
        )
        for o in originals
    )
    enqueue_runs(new)
    return [
        Retried(target_id=o.pk, new_id=n.pk, status_before=o.status, status_after="running")
        for o, n in zip(originals, new, strict=True)
    ]


RULE = Rule(reason, retryable, not_retryable, retry)
