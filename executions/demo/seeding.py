"""seed() and scale(): the demo data as `seed_demo` and the tests make it."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from django.db.models import Count

from executions import permissions, tokens
from executions.models import ApiKey, Membership, Tenant

from .cast import ORGS, USERS, Org, _password_hash, demo_password
from .copies import _clone, _Plan, _plan
from .exemplars import _FAILED, _MODELS, _entry, _exemplars, scenarios
from .items import (
    Definitions,
    _automation_executions,
    _definitions,
    _function_execution,
    _job,
    _processing_job,
    _retry_function_execution,
    _run,
    _workflow_execution,
)


def _history(all_defs: list[Definitions]) -> None:
    """A week of varied history: `history` copies of every scenario, at random times."""
    for kind in _MODELS:
        entries = [
            _entry(defs, s)
            for defs in all_defs
            for s in scenarios(defs.org)
            if s.kind == kind
            for _ in range(s.history)
        ]
        _clone(_plan(kind, entries, per_row_numbers=True), len(entries))


def _manifest_items(defs: Definitions, owner: str) -> dict:
    """One item of each kind in each state the manifest names, run just now (newest of all)."""
    n = 4242
    # The function's log, newest first: [failed (flaky, attempt 1), succeeded (the retry of the
    # third), failed and already retried]. Created in that order, so they lead the log.
    first = _function_execution(defs, "sync-inventory", n)
    succeeded = _retry_function_execution(first)
    failed = _function_execution(defs, "sync-inventory", n + 1)
    if not (first.status == failed.status == "failed" and succeeded.status == "success"):
        raise RuntimeError("the flaky handler did not fail once and then succeed")
    auto_failed, auto_completed = _automation_executions(
        defs, [("Sync CRM contact", n), ("Welcome new customer", n)]
    )
    return {
        "functions": {
            "project_id": defs.tenant.functions_project_id,
            "function_id": failed.function_id,
            "failed_index": 0,
            "succeeded_index": 1,
        },
        "automations": {"failed": auto_failed, "completed": auto_completed},
        "jobs": {
            "failed": _job(defs, "install", n),
            "completed": _job(defs, "backup", n),
            "processing": _processing_job(defs, n),
            "failed_command": _job(defs, "command", n),
        },
        "workflows": {
            "project": defs.tenant.workflows_project,
            "failed": _workflow_execution(defs, "order-fulfilment", n),
            "completed": _workflow_execution(defs, "nightly-report", n),
        },
        "runs": {
            "failure": _run(defs, "wf_lead_enrichment", n, owner),
            "success": _run(defs, "wf_daily_digest", n, owner),
        },
    }


def _tenant(org: Org) -> tuple[Tenant, bool]:
    return Tenant.objects.get_or_create(
        slug=org.slug, defaults={"name": org.name, "workflows_project": org.workflows_project}
    )


def demo_tenants_exist() -> bool:
    return Tenant.objects.filter(slug__in=list(ORGS)).count() == len(ORGS)


def seed() -> dict:
    """Create (or top up) the demo data and return the manifest
    (docs/seed_demo_manifest.schema.json)."""
    User = get_user_model()
    with transaction.atomic():
        tenants = {slug: _tenant(org) for slug, org in ORGS.items()}
        manifest: dict[str, Any] = {"users": {}, "api_keys": {}, "jwt": {}}
        owners: dict[str, str] = {}
        for username, (slug, role, first, last) in USERS.items():
            tenant = tenants[slug][0]
            user, _ = User.objects.update_or_create(
                username=username,
                defaults={
                    "password": _password_hash(username),
                    "email": f"{username}@{ORGS[slug].domain}",
                    "first_name": first,
                    "last_name": last,
                    "is_active": True,
                },
            )
            Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
            _, key = ApiKey.objects.create_key(
                name=f"demo: {username} ({role})",
                tenant=tenant,
                user=user,
                permissions=sorted(permissions.of_role(role)),
            )
            manifest["users"][username] = {
                "password": demo_password(username),
                "tenant": slug,
                "role": str(role),
            }
            manifest["api_keys"][username] = key
            manifest["jwt"][username] = tokens.issue(user, tenant)
            owners.setdefault(slug, str(user.pk))
        all_defs = {slug: _definitions(tenant, ORGS[slug]) for slug, (tenant, _) in tenants.items()}
        new = [all_defs[slug] for slug, (_, created) in tenants.items() if created]
        for defs in new:
            _exemplars(defs)
        if new:
            _history(new)
        for slug, defs in all_defs.items():
            manifest[slug] = _manifest_items(defs, owners[slug])
        for defs in new:
            _ignored_group(defs)
    return manifest


def _ignored_group(defs: Definitions) -> None:
    """One error group of the history ignored, so the console's Ignored tab has rows in `up`
    (Resolved has the function retried above): the biggest workflow group that none of the
    manifest's items shares, so their failures stay open."""
    from executions import triage
    from executions.models import WorkflowExecution
    from executions.tenancy import Actor

    failed = WorkflowExecution.objects.filter(tenant=defs.tenant, status="FAILED")
    newest = failed.order_by("-updated_at").values_list("fingerprint", flat=True)[:1]
    biggest = (
        failed.exclude(fingerprint__in=list(newest))
        .exclude(fingerprint="")
        .values_list("fingerprint")
        .annotate(n=Count("pk"))
        .order_by("-n", "fingerprint")
        .first()
    )
    if biggest is not None:
        actor = Actor(defs.tenant, frozenset(permissions.every()), source="cli")
        triage.ignore_group(actor, biggest[0], reason="known: the warehouse API's maintenance")


# --- scale(n) -------------------------------------------------------------------------------------


def scale(n: int) -> dict:
    """Add n failed items of each kind, half in each demo tenant, and return the count per kind.
    Creates the demo tenants and definitions first if they are missing. Inside a transaction
    (tests) it all happens in that transaction; otherwise each kind loads in a transaction of
    its own."""
    if n <= 0:
        return {str(kind): 0 for kind in _MODELS}
    loads: dict[str, list[tuple[_Plan, int]]] = {}
    with transaction.atomic():
        all_defs = [_definitions(_tenant(org)[0], org) for org in ORGS.values()]
        for defs in all_defs:
            _exemplars(defs)
    for kind in _MODELS:
        for i, defs in enumerate(all_defs):
            # A scenario's weight is how many template slots (so what share of copies) it gets.
            entries = [
                _entry(defs, s)
                for s in scenarios(defs.org)
                if s.kind == kind
                for _ in range(s.weight)
            ]
            if any(row["status"] != _FAILED[kind] for row, _ in entries):
                raise RuntimeError(f"a {kind} scenario with a scale weight did not fail")
            count = n // len(all_defs) + (1 if i < n % len(all_defs) else 0)
            if count:
                plan = _plan(kind, entries, per_row_numbers=False)
                loads.setdefault(kind, []).append((plan, count))
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # bench/seed.py --n 100000 needs it under a minute: one connection per core, not one.
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            for future in [pool.submit(_load, chunks) for chunks in loads.values()]:
                future.result()
    else:
        with transaction.atomic():
            for chunks in loads.values():
                for plan, count in chunks:
                    _clone(plan, count)
    return {str(kind): n for kind in _MODELS}


def _load(chunks: list[tuple[_Plan, int]]) -> None:
    """One kind's copies, in one transaction on this thread's own connection."""
    try:
        with transaction.atomic():
            for plan, count in chunks:
                _clone(plan, count)
    finally:
        connections.close_all()  # this thread's connections only
