"""One module per kind, each holding that kind's retry rule and nothing else:

functions.py (seed 000)  automations.py (seed 001)  jobs.py (seed 002)  workflows.py (seed 003)
runs.py (seed 004)

Each module has KIND, PERMISSION, `reason(obj)` (why an item is not retryable, or None),
`retryable(qs)` / `not_retryable(qs)` (the same rule as querysets, for previews and bulk), and
`retry(actor, ids, **options) -> list[Retried]`, which runs inside the caller's transaction and is
set-based, so one retry and a batch of a thousand share one code path.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any, NamedTuple

from django.db.models import Count, OuterRef, Subquery

# "No expectation", for rule options where None is a value (functions.retry(seen_retry=...)).
ANY = object()


class Retried(NamedTuple):
    """One retried item. A tuple: a bulk retry makes 100,000 of them (a frozen dataclass cost
    0.2 s of CPU there)."""

    target_id: Any
    new_id: Any
    status_before: str
    status_after: str
    obj: Any = None  # the item as the retry left it, when the rule hands it over (rows=True)


def write_audit(constants: dict, retried: list[Retried]) -> None:
    """One AuditEvent per retried item: `constants` are the columns every row shares (see
    services._audit_constants)."""
    if not retried:
        return
    from .. import sets
    from ..models import AuditEvent

    sets.insert_rows(
        AuditEvent,
        constants,
        {
            "target_id": [str(r.target_id) for r in retried],
            "new_target_id": [str(r.new_id) for r in retried],
            "status_before": [r.status_before for r in retried],
            "status_after": [r.status_after for r in retried],
        },
    )


def without_retry_in_flight(originals: list) -> list:
    """The locked `originals` (of a kind that clones: functions, jobs) whose latest retry, if
    any, is final. Their rows were read under lock, so `retried_by_id` is the latest retry's; its
    status is read now, after the lock, by a statement that sees every committed retry."""
    pointed = [o.retried_by_id for o in originals if o.retried_by_id is not None]
    if not pointed:
        return originals
    model = type(originals[0])
    busy = set(
        model.objects.filter(pk__in=pointed, status__in=model.IN_FLIGHT).values_list(
            "pk", flat=True
        )
    )
    return [o for o in originals if o.retried_by_id not in busy]


def retry_in_flight(model) -> Subquery:
    """For `UPDATE originals SET retried_by = ...`: each original's retry in flight (at most one,
    a partial unique index says so), just created by the retry."""
    return Subquery(
        model.objects.filter(retry_of=OuterRef("pk"), status__in=model.IN_FLIGHT).values("pk")[:1]
    )


def by_status(qs, retryable: tuple[str, ...]) -> dict[str, int]:
    """Why the rest of `qs` is not retryable, for kinds whose only rule is the status: one
    GROUP BY, {"status is <status>": count}."""
    rows = qs.exclude(status__in=retryable).order_by().values_list("status").annotate(n=Count("pk"))
    return {f"status is {status}": n for status, n in rows}


_MODULES = {
    "function": "functions",
    "automation": "automations",
    "job": "jobs",
    "workflow": "workflows",
    "run": "runs",
}


def rule(kind: str) -> ModuleType:
    return import_module(f"{__name__}.{_MODULES[kind]}")
