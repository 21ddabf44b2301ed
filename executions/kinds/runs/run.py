"""Running a workflow run (seed 004): its definition's nodes in dependency order, a node whose
upstream did not succeed skipped, outputs carried over from the run it retries not executed again;
progress is written as it goes, fenced like the finish."""

from __future__ import annotations

from django.db.models import F, Q
from django.utils import timezone

from ... import leases, work
from ...models import Kind, Run, Tenant
from ...queueing import enqueue_on_commit, worker_task
from ..base import (
    WORK_KEYS,
    UnitFailed,
    chain_depth,
    failure,
    run_unit,
    unit_name,
    worker_lost,
)
from . import definition as definitions


def new_run(
    tenant: Tenant,
    definition: dict,
    *,
    workflow_id: str,
    workflow_version: int = 1,
    prop_values: dict | None = None,
    triggered_by: str = "",
    trigger_source: str = "manual",
    owner: str = "",
    source_run: Run | None = None,
    carried: dict | None = None,
    trigger_node_id: str = "",
) -> Run:
    """An unsaved run of `definition` (a snapshot). `carried` = outputs of nodes that already
    succeeded in `source_run`; they are not executed again."""
    carried = carried or {}
    return Run(
        tenant=tenant,
        workflow_id=workflow_id,
        workflow_version=workflow_version,
        workflow_definition=definition,
        prop_values=prop_values or {},
        source_run=source_run,
        triggered_by=triggered_by,
        trigger_source=trigger_source,
        workflow_owner_user_id=owner,
        trigger_node_id=trigger_node_id or (definition.get("triggerNodeIds") or [""])[0],
        execution_state=dict(carried),
        node_states={n: {"status": "success", "carriedOver": True} for n in carried},
        progress={"done": len(carried), "total": len(definition.get("nodes", {}))},
    )


def enqueue_runs(runs: list[Run]) -> None:
    for run in runs:
        enqueue_on_commit(execute_run, run.pk)


def start_run(tenant: Tenant, definition: dict, **kwargs) -> Run:
    run = new_run(tenant, definition, **kwargs)
    run.save(force_insert=True)
    enqueue_runs([run])
    return run


def _topological(nodes: dict, triggers: list[str]) -> list[str]:
    order, seen = [], set()

    def visit(node_id: str, stack: tuple = ()) -> None:
        if node_id in seen or node_id in stack or node_id not in nodes:
            return
        for dep in nodes[node_id].get("dependsOn", []):
            visit(dep, (*stack, node_id))
        seen.add(node_id)
        order.append(node_id)

    for node_id in list(triggers) + sorted(nodes):
        visit(node_id)
    return order


def execute(run_id: str) -> None:
    owner = leases.new_owner()
    won = leases.claim(
        Run.objects.filter(pk=run_id, status="running", lease_token=0),
        to_status="running",
        owner=owner,
    )
    if run_id not in won:
        return
    token = won[run_id]
    run = Run.objects.get(pk=run_id)
    definition = run.workflow_definition
    nodes: dict = definition.get("nodes", {})
    triggers = definition.get("triggerNodeIds") or ["root"]
    state, node_states = dict(run.execution_state), dict(run.node_states)
    attempt = 1 + chain_depth(Run, run, "source_run_id")
    first_error: dict | None = None
    for node_id in _topological(nodes, triggers):
        node = nodes[node_id]
        if node_states.get(node_id, {}).get("status") == "success":
            continue  # carried over from the run this one retries: not executed again
        deps = node.get("dependsOn", [])
        blocked = [
            d
            for d in deps
            if node_states.get(d, {}).get("status") != "success"
            and not (
                nodes.get(d, {}).get("optional")
                and node_states.get(d, {}).get("status") == "failure"
            )
        ]
        if blocked:
            node_states[node_id] = {
                "status": "skipped",
                "reason": f"upstream {blocked[0]} did not succeed",
            }
            continue
        started = timezone.now()
        if node_id in triggers and not _is_unit(node):
            state[node_id] = run.prop_values
            node_states[node_id] = {
                "status": "success",
                "startedAt": started.isoformat(),
                "finishedAt": timezone.now().isoformat(),
            }
        else:
            # A node is a unit of work: type handler, http or code (JavaScript).
            try:
                unit = _resolved(node, state, run.prop_values, triggers)
                ctx = work.WorkContext(
                    payload=_payload(unit, deps, state),
                    context={"runId": str(run.pk), "nodeId": node_id},
                    attempt=attempt,
                    key=f"{run.source_run_id or run.pk}:{node_id}",
                    reuse=str(run.tenant_id),
                )
                output, entries = run_unit(Kind.RUN, unit, ctx)
                state[node_id] = output
                node_states[node_id] = {
                    "status": "success",
                    "startedAt": started.isoformat(),
                    "finishedAt": timezone.now().isoformat(),
                    "logs": entries,
                }
            except UnitFailed as exc:
                node_states[node_id] = {
                    "status": "failure",
                    "error": exc.columns["error_message"],
                    **({"errorStack": exc.columns["error_stack"]} if "code" in node else {}),
                    "startedAt": started.isoformat(),
                    "finishedAt": timezone.now().isoformat(),
                    "logs": exc.logs,
                }
                if not node.get("optional") and first_error is None:
                    first_error = exc.columns
        done = sum(
            1 for s in node_states.values() if s.get("status") in ("success", "failure", "skipped")
        )
        # Progress for the console; fenced like the finish, so a reaped run stops writing.
        if not Run.objects.filter(pk=run_id, lease_token=token, status="running").update(
            execution_state=state,
            node_states=node_states,
            progress={"done": done, "total": len(nodes)},
        ):
            return
    failed_optional = any(s.get("status") == "failure" for s in node_states.values())
    if first_error:
        values = {"status": "failure", "summary": first_error["error_message"], **first_error}
    elif failed_optional:
        values = {"status": "partial", "summary": "Some optional nodes failed"}
    else:
        values = {"status": "success", "summary": f"{len(nodes)} nodes succeeded"}
    leases.finish(
        Run,
        run_id,
        token,
        running_status="running",
        finished_at=timezone.now(),
        execution_state=state,
        node_states=node_states,
        **values,
    )


def cancel_run(run_id: str) -> bool:
    return bool(
        Run.objects.filter(pk=run_id, status__in=["running", "waiting"]).update(
            status="cancelled",
            finished_at=timezone.now(),
            summary="Cancelled by user",
            error_message="Cancelled by user",
            lease_owner="",
            lease_expires_at=None,
            lease_token=F("lease_token") + 1,
        )
    )


def _resolved(node: dict, state: dict, inputs: dict, triggers: list[str]) -> dict:
    """The node with its `{{node.field}}` references filled in (definition.py); a reference
    that names nothing fails the node, not the worker."""
    try:
        return definitions.resolve(node, state, inputs, triggers)
    except definitions.Unresolved as exc:
        raise UnitFailed(failure(Kind.RUN, unit_name(node), exc), [], timed_out=False) from exc


def _payload(unit: dict, deps: list[str], state: dict):
    # A code node with params reads them (references resolved); otherwise every node gets the
    # outputs of the nodes it depends on, by id.
    if "code" in unit and isinstance(unit.get("params"), dict):
        return unit["params"]
    return {d: state.get(d) for d in deps}


def _is_unit(node: dict) -> bool:
    return bool(node.get("handler")) or any(key in node for key in WORK_KEYS)


@worker_task
def execute_run(run_id: str) -> None:
    execute(run_id)


def reap(now) -> int:
    return leases.fail_lost(
        Run,
        Q(lease_expires_at__lt=now, status="running"),
        status="failure",
        finished_at=now,
        summary=leases.WORKER_LOST,
        **worker_lost(Kind.RUN),
    )
