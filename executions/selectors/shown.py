"""The read side's view of what each kind shows (the kinds' own parts: executions/kinds/shown.py
and each kind's shown.py): the columns an inbox row reads, when an item started and finished."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Model

from executions import kinds

# The columns every kind's row reads besides its own (the heavy JSON and stack columns stay in
# the database).
_COMMON_ROW_FIELDS = ("tenant_id", "status", "error_message", "fingerprint", "triage")
# Columns a chain's items leave in the database: the timeline shows none of them.
HEAVY = {"payload", "result", "params", "workflow_definition", "execution_state", "node_states"}


def row_fields(kind: str) -> tuple[str, ...]:
    """The columns an inbox row of `kind` reads (with its retry's, for kinds that clone)."""
    shown = kinds.get(kind).shown
    fields = _COMMON_ROW_FIELDS + shown.row_fields
    if shown.clone_parent:
        meta = kinds.get(kind)
        pk = meta.model._meta.pk.name
        fields += (f"retried_by__{pk}", "retried_by__status", f"retried_by__{meta.time_field}")
        fields += shown.retried_by_fields
    return fields


def started(kind: str, obj: Model) -> datetime | None:
    return getattr(obj, kinds.get(kind).shown.started_field, None)


def made(kind: str, obj: Model) -> datetime | None:
    shown = kinds.get(kind).shown
    return getattr(obj, shown.made_field or shown.started_field, None)


def finished(kind: str, obj: Model) -> datetime | None:
    return getattr(obj, kinds.get(kind).shown.finished_field, None)
