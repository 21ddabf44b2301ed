"""Running automation executions (seed 001): a batch of them per task, claimed in one UPDATE, then
each rule's actions in turn, stopping at the first that fails."""

from __future__ import annotations

import time
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ... import leases, work
from ...models import AutomationExecution, AutomationRule, Kind
from ...queueing import enqueue_on_commit, worker_task
from ..base import UnitFailed, log_entry, run_unit, unit_name, worker_lost


def start_automation(rule: AutomationRule, trigger_data: dict) -> AutomationExecution:
    execution = AutomationExecution.objects.create(
        tenant_id=rule.tenant_id,
        automation_rule=rule,
        trigger_data=trigger_data,
        actions_total=len(rule.actions),
        execution_context={"rule_version": rule.version, "actions": rule.actions},
    )
    enqueue_on_commit(run_automation_executions, [str(execution.pk)])
    return execution


def execute(execution_ids: list[str]) -> None:
    """Run a batch: claim all pending ones in one UPDATE, then run each in turn."""
    owner = leases.new_owner()
    now = timezone.now()
    won = leases.claim(
        AutomationExecution.objects.filter(pk__in=execution_ids, status="pending"),
        to_status="running",
        owner=owner,
        extra={"started_at": now, "updated_at": now},
    )
    if not won:
        return
    rows = AutomationExecution.objects.filter(pk__in=list(won)).values(
        "pk", "tenant_id", "execution_context", "trigger_data", "attempt"
    )
    with leases.Finisher(AutomationExecution, running_status="running") as finisher:
        for row in rows:
            _run(row, won[str(row["pk"])], finisher)


def _action_logged(level: str, index: int, name: str, text: str) -> dict[str, Any]:
    return log_entry(
        level, f"action {index} ({name}) {text}", action_index=index, metadata={"handler": name}
    )


def _run(row: dict, token: int, finisher: leases.Finisher) -> None:
    actions = row["execution_context"].get("actions", [])
    logs: list[dict] = []
    successful = 0
    started = time.monotonic()
    values: dict[str, Any] = {"status": "completed"}
    for index, action in enumerate(actions):
        # Each action is a unit of work: a handler, an HTTP request or JavaScript.
        name = unit_name(action)
        ctx = work.WorkContext(
            payload=row["trigger_data"],
            context={"executionId": str(row["pk"]), "actionIndex": index},
            attempt=row["attempt"],
            key=f"{row['pk']}:{index}",
            reuse=str(row["tenant_id"]),
        )
        try:
            _, entries = run_unit(Kind.AUTOMATION, action, ctx)
        except UnitFailed as exc:
            logs += [dict(e, action_index=index) for e in exc.logs]
            logs.append(_action_logged("error", index, name, f"failed: {exc}"))
            values = {
                "status": "failed",
                "actions_failed": 1,
                "failed_action_index": index,
                **exc.columns,
            }
            break
        logs += [dict(e, action_index=index) for e in entries]
        logs.append(_action_logged("info", index, name, "succeeded"))
        successful += 1
    now = timezone.now()
    finisher.add(
        row["pk"],
        token,
        actions_successful=successful,
        completed_at=now,
        updated_at=now,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
        logs=logs,
        **values,
    )


@worker_task
def run_automation_executions(execution_ids: list[str]) -> None:
    execute(execution_ids)


def reap(now) -> int:
    return leases.fail_lost(
        AutomationExecution,
        Q(lease_expires_at__lt=now, status="running"),
        status="failed",
        completed_at=now,
        updated_at=now,
        **worker_lost(Kind.AUTOMATION),
    )
