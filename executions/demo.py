"""Demo data: two tenants (acme, globex), a fixed cast of users, and work of all five kinds that
fails in varied, realistic ways (several error types, real stacks and logs).

Every row is what the engine really records. Each scenario below (a function, rule, job, workflow
or run that fails in its own way, or succeeds) runs once per process through the engine - right
here, never through the queue - in a savepoint that is rolled back; what it recorded is kept as
an exemplar, and copies of exemplars get new ids and their own times.

seed()    Tenants, users, definitions and a week of history (copies of every scenario at random
          times) are created once. Every call issues fresh API keys and JWTs and runs a fresh set of
          the manifest's items through the engine just now, so every id in the manifest it returns
          is in its stated state even when earlier ones were retried meanwhile. The first call in a
          process runs the exemplars (~1 s); later ones take a few tenths of a second, so tests can
          seed per test.
scale(n)  n failed items of each kind, half per tenant, set-based: copies of the failing exemplars
          made by the database (INSERT ... SELECT FROM generate_series, one statement per kind and
          tenant; bulk_create batches on SQLite), timestamps spread over the last 7 days. A good
          share use the `flaky` handler, so retrying them succeeds.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import identify_hasher, make_password
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, connections, models, transaction
from django.utils import timezone

from . import (
    demo_handlers,  # noqa: F401 - registers the demo's handlers where the demo runs
    permissions,
    tokens,
)
from .kinds.automations import run as automations_run
from .kinds.functions import run as functions_run
from .kinds.jobs import run as jobs_run
from .kinds.runs import run as runs_run
from .kinds.workflows import run as workflows_run
from .models import (
    ApiKey,
    AutomationExecution,
    AutomationRule,
    Function,
    FunctionExecution,
    Job,
    JobEvent,
    Kind,
    Membership,
    Role,
    Run,
    Tenant,
    Workflow,
    WorkflowExecution,
    WorkflowTaskExecution,
    object_id,
    run_id,
)

# --- the cast -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    slug: str
    name: str
    workflows_project: str
    domain: str
    db_host: str
    backup_host: str
    api_url: str
    amount: int
    hosts: tuple[str, str, str]  # web, second web, database


ORGS: dict[str, Org] = {
    "acme": Org(
        slug="acme",
        name="Acme Corporation",
        workflows_project="acme-prod",
        domain="acme.example",
        db_host="10.0.4.17",
        backup_host="10.0.9.4",
        api_url="https://api.rates.example.com/v2/latest",
        amount=7250,
        hosts=("web-01", "web-02", "db-01"),
    ),
    "globex": Org(
        slug="globex",
        name="Globex Corporation",
        workflows_project="globex-prod",
        domain="globex.example",
        db_host="10.8.2.31",
        backup_host="10.8.7.12",
        api_url="https://erp.globex.example/api/v1/sync",
        amount=12900,
        hosts=("app-01", "app-02", "db-02"),
    ),
}

# username -> (tenant, role, first name, last name)
USERS: dict[str, tuple[str, str, str, str]] = {
    "alice": ("acme", Role.ADMIN, "Alice", "Archer"),
    "dave": ("acme", Role.OPERATOR, "Dave", "Dalton"),
    "bob": ("acme", Role.VIEWER, "Bob", "Baker"),
    "carol": ("globex", Role.ADMIN, "Carol", "Chen"),
}


def demo_password(username: str) -> str:
    return f"{username}-demo-2026"


# PBKDF2 at Django's default cost takes ~0.35 s per password here, and tests seed per test: these
# are make_password(demo_password(name), salt=f"redrive-demo-{name}"), computed once. Django
# verifies them at the cost they carry and upgrades them on first login if its default changes.
_PASSWORD_HASHES = {
    "alice": "pbkdf2_sha256$1500000$redrive-demo-alice$Eo+61IfMunkCtelG213TgMhZN7n9wzK23k5w3/AvBcs=",  # noqa: E501
    "dave": "pbkdf2_sha256$1500000$redrive-demo-dave$Up5vhTljO+uBDQwl9/PacMMwpK5P8fm6wr8BW9zudwc=",
    "bob": "pbkdf2_sha256$1500000$redrive-demo-bob$gSmle0hU1GC17/2nDjRd3s/y5+bxbm5oQh/Niye8RoQ=",
    "carol": "pbkdf2_sha256$1500000$redrive-demo-carol$zJFhyQDrwJRRej342rHFqmeftNXwyruVppaAbDD/Jc8=",  # noqa: E501
}


def _password_hash(username: str) -> str:
    encoded = _PASSWORD_HASHES[username]
    try:
        identify_hasher(encoded)  # still one of the configured PASSWORD_HASHERS?
    except ValueError:
        return make_password(demo_password(username))
    return encoded


# --- what each tenant runs ------------------------------------------------------------------------
# `history`: how many of it the base seed runs, spread over the last week; `scale`: its weight among
# the failures scale() copies (0: not copied). Strings may contain "{n}", filled per item.


def _function_specs(o: Org) -> list[dict]:
    return [
        # The manifest's function: its newest executions are added by every seed() call.
        dict(name="sync-inventory", handler="flaky", params={}, history=2, scale=0,
             payload={"sku": "SKU-{n}", "warehouse": "ams-1"}),
        dict(name="refresh-search-index", handler="flaky", params={}, history=3, scale=3,
             payload={"index": "products", "since": "2026-01-{n2}"}),
        dict(name="charge-card", handler="fail", params={"error": "validation", "amount": o.amount},
             history=2, scale=1, payload={"invoiceId": "inv_{n}", "currency": "EUR"}),
        dict(name="push-to-warehouse", handler="fail",
             params={"error": "upstream", "host": o.db_host, "port": 5432},
             history=2, scale=1, payload={"orderId": "ord_{n}", "lines": 3}),
        dict(name="fetch-exchange-rates", handler="fail",
             params={"error": "http_502", "url": o.api_url},
             history=2, scale=1, payload={"base": "EUR", "symbols": ["USD", "GBP", "JPY"]}),
        dict(name="enrich-customer", handler="fail",
             params={"error": "missing_field", "field": "customer_id"},
             history=2, scale=1, payload={"email": "user{n}@" + o.domain}),
        dict(name="generate-invoice-pdf", handler="fail",
             params={"error": "timeout", "seconds": 30},
             history=2, scale=1, payload={"invoiceId": "inv_{n}", "template": "standard"}),
        # Times out for real (20 ms budget, 200 ms of work): status `timeout`, not copied by scale.
        dict(name="render-thumbnail", handler="sleep", params={"seconds": 0.2}, timeout_ms=20,
             history=1, scale=0, payload={"image": "img_{n}.png", "width": 320}),
        dict(name="resize-image", handler="echo", params={}, history=2, scale=0,
             payload={"image": "img_{n}.jpg", "width": 1024}),
        dict(name="send-receipt", handler="send_email", params={"to": f"billing@{o.domain}"},
             history=2, scale=0, payload={"orderId": "ord_{n}"}),
    ]  # fmt: skip


def _action(name: str, handler: str, **params: Any) -> dict:
    return {"name": name, "handler": handler, "params": params}


def _automation_specs(o: Org) -> list[dict]:
    return [
        dict(name="Sync CRM contact", trigger={"type": "event", "event": "contact.updated"},
             actions=[_action("load contact", "echo"), _action("push to CRM", "flaky"),
                      _action("notify owner", "send_email", to=f"crm@{o.domain}")],
             history=2, scale=3, data={"contactId": "c_{n}", "email": "contact{n}@" + o.domain}),
        dict(name="Welcome new customer", trigger={"type": "event", "event": "customer.created"},
             actions=[_action("load customer", "echo"),
                      _action("send welcome email", "send_email", to=f"welcome@{o.domain}")],
             history=3, scale=0, data={"customerId": "cus_{n}"}),
        dict(name="Charge subscription renewal", trigger={"type": "schedule", "cron": "0 3 * * *"},
             actions=[_action("load subscription", "echo"),
                      _action("charge card", "fail", error="validation", amount=o.amount),
                      _action("send receipt", "send_email", to=f"billing@{o.domain}")],
             history=2, scale=1, data={"subscriptionId": "sub_{n}", "plan": "pro-annual"}),
        dict(name="Relay order webhook", trigger={"type": "webhook", "path": "/hooks/orders"},
             actions=[_action("post to ERP", "fail", error="http_502", url=o.api_url)],
             history=2, scale=1, data={"orderId": "ord_{n}", "total": 129.5}),
        dict(name="Enrich new lead", trigger={"type": "event", "event": "lead.created"},
             actions=[_action("load lead", "echo"),
                      _action("look up company", "fail", error="missing_field",
                              field="company_domain")],
             history=2, scale=1, data={"leadId": "lead_{n}", "name": "Lead {n}"}),
        dict(name="Archive stale tickets", trigger={"type": "schedule", "cron": "0 * * * *"},
             actions=[_action("select tickets", "noop"),
                      _action("move to archive", "fail", error="upstream", host=o.db_host,
                              port=5432)],
             history=2, scale=1, data={"olderThanDays": 30}),
        dict(name="Export ledger", trigger={"type": "schedule", "cron": "30 1 * * *"},
             actions=[_action("export", "fail", error="timeout", seconds=45)],
             history=1, scale=1, data={"ledger": "general", "period": "2026-{n2}"}),
    ]  # fmt: skip


def _job_specs(o: Org) -> list[dict]:
    web, web2, db = o.hosts
    return [
        dict(key="install", type="package.install", host=web, history=2, scale=3,
             data={"handler": "flaky", "package": "nginx", "version": "1.27.3"}),
        dict(key="backup", type="backup.run", host=db, history=3, scale=0,
             data={"database": "orders", "destination": f"s3://{o.slug}-backups/orders"}),
        dict(key="command", type="command.exec", host=web2, history=1, scale=1,
             data={"handler": "flaky", "command": "systemctl restart nginx"}),
        dict(key="cert", type="cert.renew", host=web, history=2, scale=1,
             data={"handler": "fail", "error": "http_502", "domain": f"shop.{o.domain}",
                   "url": "https://acme-v02.api.letsencrypt.org/directory"}),
        dict(key="restart", type="service.restart", host=db, history=2, scale=1,
             data={"handler": "fail", "error": "timeout", "seconds": 60, "service": "postgresql"}),
        dict(key="backup-ledger", type="backup.run", host=db, history=2, scale=1,
             data={"handler": "fail", "error": "upstream", "host": o.backup_host, "port": 9000,
                   "database": "ledger"}),
        dict(key="install-openssl", type="package.install", host=web2, history=1, scale=1,
             data={"handler": "fail", "error": "missing_field", "field": "checksum",
                   "package": "openssl"}),
        dict(key="restart-redis", type="service.restart", host=web2, history=2, scale=0,
             data={"service": "redis"}),
    ]  # fmt: skip


def _task(external_id: str, handler: str, depends_on: tuple[str, ...] = (), **extra: Any) -> dict:
    return {
        "externalId": external_id,
        "handler": handler,
        "params": extra.pop("params", {}),
        "dependsOn": list(depends_on),
        "isOptional": extra.pop("optional", False),
        "retries": extra.pop("retries", 0),
        "timeout": extra.pop("timeout", None),
    }


def _workflow_specs(o: Org) -> list[dict]:
    return [
        dict(external_id="order-fulfilment", version="1", history=2, scale=1,
             input={"orderId": "ord_{n}"},
             tasks=[_task("validate-order", "echo"),
                    _task("reserve-stock", "flaky", ("validate-order",)),
                    _task("ship-order", "send_email", ("reserve-stock",),
                          params={"to": f"shipping@{o.domain}"}),
                    _task("notify-analytics", "fail", ("validate-order",), optional=True,
                          params={"error": "http_502", "url": o.api_url})]),
        dict(external_id="stock-sync", version="2", history=2, scale=3,
             input={"warehouse": "wh-{n}"},
             tasks=[_task("fetch-stock", "echo"), _task("push-stock", "flaky", ("fetch-stock",))]),
        dict(external_id="nightly-report", version="3", history=3, scale=0,
             input={"date": "2026-01-{n2}"},
             tasks=[_task("extract", "noop"), _task("transform", "echo", ("extract",)),
                    _task("publish", "send_email", ("transform",),
                          params={"to": f"reports@{o.domain}"}),
                    _task("warm-cache", "fail", ("extract",), optional=True,
                          params={"error": "upstream", "host": o.db_host, "port": 6379})]),
        dict(external_id="invoice-sync", version="2", history=2, scale=1,
             input={"batch": "b_{n}"},
             tasks=[_task("fetch-invoices", "echo"),
                    _task("post-to-ledger", "fail", ("fetch-invoices",), retries=1,
                          params={"error": "http_502", "url": o.api_url}),
                    _task("notify-finance", "send_email", ("post-to-ledger",))]),
        dict(external_id="customer-import", version="1", history=2, scale=1,
             input={"file": "customers-{n}.csv"},
             tasks=[_task("load-csv", "noop"),
                    _task("map-fields", "fail", ("load-csv",),
                          params={"error": "missing_field", "field": "email"}),
                    _task("upsert-customers", "noop", ("map-fields",))]),
        dict(external_id="payment-capture", version="4", history=1, scale=1,
             input={"paymentId": "pay_{n}"},
             tasks=[_task("authorize", "echo"),
                    _task("capture", "fail", ("authorize",),
                          params={"error": "validation", "amount": o.amount}),
                    _task("receipt", "send_email", ("capture",))]),
        # Times out for real (20 ms budget, 200 ms of work): TIMED_OUT, not copied by scale.
        dict(external_id="report-render", version="1", history=1, scale=0,
             input={"report": "r_{n}"},
             tasks=[_task("prepare", "noop"),
                    _task("render", "sleep", ("prepare",), timeout=0.02,
                          params={"seconds": 0.2})]),
    ]  # fmt: skip


def _node(handler: str, depends_on: tuple[str, ...] = ("root",), **extra: Any) -> dict:
    node = {"type": "action", "handler": handler, "params": extra.pop("params", {})}
    node["dependsOn"] = list(depends_on)
    if extra.pop("optional", False):
        node["optional"] = True
    return node


def _run_definition(nodes: dict[str, dict], inputs: list[str]) -> dict:
    return {
        "nodes": {"root": {"type": "trigger", "dependsOn": []}, **nodes},
        "triggerNodeIds": ["root"],
        "inputSchema": [
            {"key": key, "type": "string", "required": True, "description": key} for key in inputs
        ],
        "variableDefs": [],
        "blockExpansions": {},
    }


def _run_specs(o: Org) -> list[dict]:
    return [
        dict(workflow_id="wf_lead_enrichment", history=2, scale=3, props={"leadId": "lead_{n}"},
             definition=_run_definition({
                 "fetch-lead": _node("echo"),
                 "enrich-lead": _node("flaky", ("fetch-lead",)),
                 "notify-sales": _node("send_email", ("enrich-lead",),
                                       params={"to": f"sales@{o.domain}"}),
             }, ["leadId"])),
        dict(workflow_id="wf_daily_digest", history=3, scale=0, props={"day": "2026-01-{n2}"},
             definition=_run_definition({
                 "collect-metrics": _node("noop"),
                 "send-digest": _node("send_email", ("collect-metrics",)),
             }, ["day"])),
        dict(workflow_id="wf_price_sync", history=2, scale=1, props={"catalog": "cat_{n}"},
             definition=_run_definition({
                 "fetch-prices": _node("fail", params={"error": "http_502", "url": o.api_url}),
                 "update-catalog": _node("noop", ("fetch-prices",)),
             }, ["catalog"])),
        dict(workflow_id="wf_account_onboarding", history=2, scale=1,
             props={"accountId": "acct_{n}"},
             definition=_run_definition({
                 "create-account": _node("echo"),
                 "provision-db": _node("fail", ("create-account",),
                                       params={"error": "upstream", "host": o.db_host,
                                               "port": 5432}),
                 "send-welcome": _node("send_email", ("provision-db",)),
             }, ["accountId"])),
        dict(workflow_id="wf_crm_backfill", history=1, scale=1, props={"segment": "seg_{n}"},
             definition=_run_definition({
                 "load-contacts": _node("echo"),
                 "map-contact": _node("fail", ("load-contacts",),
                                      params={"error": "missing_field", "field": "email"}),
                 "upsert": _node("noop", ("map-contact",)),
             }, ["segment"])),
        # An optional node fails: the run ends `partial`.
        dict(workflow_id="wf_weekly_metrics", history=1, scale=0, props={"week": "2026-W{n2}"},
             definition=_run_definition({
                 "compute": _node("noop"),
                 "post-to-chat": _node("fail", ("compute",), optional=True,
                                       params={"error": "timeout", "seconds": 10}),
             }, ["week"])),
    ]  # fmt: skip


def _fill(value: Any, n: int) -> Any:
    """Fill "{n}" (a 4-digit number) and "{n2}" (01-28) in every string of a JSON-able value."""
    if isinstance(value, str):
        return value.replace("{n}", str(n)).replace("{n2}", f"{n % 28 + 1:02d}")
    if isinstance(value, dict):
        return {k: _fill(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, n) for v in value]
    return value


# --- running one item through the engine, without the queue ---------------------------------------


@dataclass
class Definitions:
    tenant: Tenant
    org: Org
    functions: dict[str, tuple[Function, dict]] = field(default_factory=dict)
    rules: dict[str, tuple[AutomationRule, dict]] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    workflows: dict[str, tuple[Workflow, dict]] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)


def _get_or_create_all(model: type[models.Model], tenant: Tenant, wanted: dict[Any, dict]) -> dict:
    """{key: row} for the demo definitions `wanted` ({key: field values}), creating the missing
    ones in one INSERT. The key is the name (external id) the specs use."""
    key = "external_id" if model is Workflow else "name"
    found = {}
    for o in model.objects.filter(tenant=tenant, **{f"{key}__in": list(wanted)}):
        k = getattr(o, key)
        if model is not Workflow or o.version == wanted[k]["version"]:
            found[k] = o
    missing = [model(tenant=tenant, **values) for k, values in wanted.items() if k not in found]
    found.update((getattr(o, key), o) for o in model.objects.bulk_create(missing))
    return found


def _definitions(tenant: Tenant, org: Org) -> Definitions:
    """This tenant's demo functions, automation rules and workflows (created when missing; kept as
    they are when they exist), and the job and run specs."""
    defs = Definitions(tenant=tenant, org=org)
    specs = {s["name"]: s for s in _function_specs(org)}
    functions = _get_or_create_all(
        Function,
        tenant,
        {
            name: {
                "name": name,
                "handler": s["handler"],
                "params": s["params"],
                "timeout_ms": s.get("timeout_ms", 30_000),
            }
            for name, s in specs.items()
        },
    )
    defs.functions = {name: (functions[name], s) for name, s in specs.items()}
    specs = {s["name"]: s for s in _automation_specs(org)}
    rules = _get_or_create_all(
        AutomationRule,
        tenant,
        {
            name: {"name": name, "trigger": s["trigger"], "actions": s["actions"]}
            for name, s in specs.items()
        },
    )
    defs.rules = {name: (rules[name], s) for name, s in specs.items()}
    specs = {s["external_id"]: s for s in _workflow_specs(org)}
    workflows = _get_or_create_all(
        Workflow,
        tenant,
        {
            name: {"external_id": name, "version": s["version"], "tasks": s["tasks"]}
            for name, s in specs.items()
        },
    )
    defs.workflows = {name: (workflows[name], s) for name, s in specs.items()}
    defs.jobs = {spec["key"]: spec for spec in _job_specs(org)}
    defs.runs = {spec["workflow_id"]: spec for spec in _run_specs(org)}
    return defs


def _function_execution(defs: Definitions, name: str, n: int) -> FunctionExecution:
    fn, spec = defs.functions[name]
    return functions_run.invoke_function(fn, _fill(spec["payload"], n), queued=False)


def _retry_function_execution(original: FunctionExecution) -> FunctionExecution:
    """What a retry of a function execution records (see kinds/functions.py), run right here."""
    execution = FunctionExecution.objects.create(
        tenant_id=original.tenant_id,
        function_id=original.function_id,
        handler=original.handler,
        params=original.params,
        function_version=original.function_version,
        timeout_ms=original.timeout_ms,
        payload=original.payload,
        invoked_by="manual",
        retry_count=original.retry_count + 1,
        retry_of=original,
        **functions_run.unclaimed_lease(original.timeout_ms),
    )
    FunctionExecution.objects.filter(pk=original.pk).update(retried_by=execution)
    functions_run.execute(execution.pk)
    execution.refresh_from_db()
    return execution


def _automation_executions(defs: Definitions, items: list[tuple[str, int]]) -> list[str]:
    """Create executions of (rule name, n) and run them as one batch, like a worker would."""
    executions = AutomationExecution.objects.bulk_create(
        AutomationExecution(
            tenant=defs.tenant,
            automation_rule=rule,
            trigger_data=_fill(spec["data"], n),
            actions_total=len(rule.actions),
            execution_context={"rule_version": rule.version, "actions": rule.actions},
        )
        for rule, spec, n in ((*defs.rules[name], n) for name, n in items)
    )
    ids = [str(e.pk) for e in executions]
    automations_run.execute(ids)
    return ids


def _new_job(defs: Definitions, key: str, n: int) -> Job:
    spec = defs.jobs[key]
    job = Job.objects.create(
        tenant=defs.tenant,
        operation={"type": spec["type"], "data": _fill(spec["data"], n)},
        operation_type=spec["type"],
        target_hostname=spec["host"],
    )
    JobEvent.objects.create(
        job=job, revision=1, type="created", data={"target_hostname": spec["host"]}
    )
    return job


def _job(defs: Definitions, key: str, n: int) -> str:
    job = _new_job(defs, key, n)
    jobs_run.execute(str(job.pk), job.target_hostname)
    return str(job.pk)


def _processing_job(defs: Definitions, n: int) -> str:
    """A job a host agent holds right now: the lease runs for a day, so the reaper leaves it alone
    while the demo is in use and a retry refuses it as still in flight."""
    job = _new_job(defs, "backup", n)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.PROCESSING,
        taken_by=job.target_hostname,
        revision=2,
        lease_owner=f"{job.target_hostname}:agent",
        lease_token=1,
        lease_expires_at=now + timedelta(hours=24),
        updated_at=now,
    )
    JobEvent.objects.create(
        job=job, revision=2, type="processing", data={"hostname": job.target_hostname}
    )
    return str(job.pk)


def _workflow_execution(defs: Definitions, external_id: str, n: int) -> str:
    workflow, spec = defs.workflows[external_id]
    execution = workflows_run.new_execution(workflow, _fill(spec["input"], n), {"source": "demo"})
    workflows_run.execute(str(execution.pk))
    return str(execution.pk)


def _run(defs: Definitions, workflow_id: str, n: int, user: str = "") -> str:
    spec = defs.runs[workflow_id]
    run = runs_run.new_run(
        defs.tenant,
        spec["definition"],
        workflow_id=workflow_id,
        prop_values=_fill(spec["props"], n),
        triggered_by=user,
        owner=user,
    )
    run.save(force_insert=True)
    runs_run.execute(run.pk)
    return run.pk


# --- exemplars: one real run of every scenario, kept as templates ---------------------------------


@dataclass(frozen=True)
class Scenario:
    kind: str
    key: str  # function name, rule name, job spec key, workflow external id, run workflow id
    history: int  # copies in the base seed's week of history
    weight: int  # share among scale()'s copies; 0: never copied by scale (not a failure)


def scenarios(o: Org) -> list[Scenario]:
    return [
        *(Scenario(Kind.FUNCTION, s["name"], s["history"], s["scale"]) for s in _function_specs(o)),
        *(Scenario(Kind.AUTOMATION, s["name"], s["history"], s["scale"])
          for s in _automation_specs(o)),
        *(Scenario(Kind.JOB, s["key"], s["history"], s["scale"]) for s in _job_specs(o)),
        *(Scenario(Kind.WORKFLOW, s["external_id"], s["history"], s["scale"])
          for s in _workflow_specs(o)),
        *(Scenario(Kind.RUN, s["workflow_id"], s["history"], s["scale"]) for s in _run_specs(o)),
    ]  # fmt: skip


_MODELS = {
    Kind.FUNCTION: FunctionExecution,
    Kind.AUTOMATION: AutomationExecution,
    Kind.JOB: Job,
    Kind.WORKFLOW: WorkflowExecution,
    Kind.RUN: Run,
}
_CHILDREN = {Kind.JOB: (JobEvent, "job_id"), Kind.WORKFLOW: (WorkflowTaskExecution, "execution_id")}
# The time the other timestamps of an item are measured from.
_ANCHOR = {
    Kind.FUNCTION: "executed_at",
    Kind.AUTOMATION: "started_at",
    Kind.JOB: "created_at",
    Kind.WORKFLOW: "created_time",
    Kind.RUN: "started_at",
}
# The status every copy made by scale() has: what the engine records for a failure.
_FAILED = {
    Kind.FUNCTION: "failed",
    Kind.AUTOMATION: "failed",
    Kind.JOB: "failed",
    Kind.WORKFLOW: "FAILED",
    Kind.RUN: "failure",
}

_ISO = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:[+-]\d\d:\d\d|Z)?"')
# Exemplars fill "{n}" with this number; copies replace it with their own (JSON columns only).
_SENTINEL = "987654"

# (tenant slug, kind, scenario key) -> (row template, child row templates). Engine output does not
# depend on the database state, so one run per scenario and process is enough: later seeds (tests
# seed per test) only copy. Foreign keys are re-pointed at the current rows on every use.
_EXEMPLARS: dict[tuple[str, str, str], tuple[dict, list[dict]]] = {}


def _copied_fields(model: type[models.Model]) -> list[models.Field]:
    # Auto-increment keys are left to the database.
    return [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]


def _template(model: type[models.Model], row: dict, anchor: datetime) -> dict:
    """A row as a template: datetimes as milliseconds from the item's anchor time; JSON as text in
    which timestamps read "__TS__" and the exemplar's number reads "__N__"."""
    out: dict[str, Any] = {}
    for f in _copied_fields(model):
        value = row[f.attname]
        if isinstance(f, models.JSONField) and value is not None:
            text = _ISO.sub('"__TS__"', json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))
            value = text.replace(_SENTINEL, "__N__")
        elif isinstance(f, models.DateTimeField) and value is not None:
            value = (value - anchor).total_seconds() * 1000
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[f.column] = value
    return out


def _exemplars(defs: Definitions) -> None:
    """Run every scenario of this tenant once through the engine, keep what it recorded as
    templates, and roll the rows back."""
    todo = [s for s in scenarios(defs.org) if (defs.org.slug, s.kind, s.key) not in _EXEMPLARS]
    if not todo:
        return
    n = int(_SENTINEL)
    made: list[tuple[Scenario, Any]] = []
    with transaction.atomic():
        autos = [s for s in todo if s.kind == Kind.AUTOMATION]
        ids = _automation_executions(defs, [(s.key, n) for s in autos]) if autos else []
        made += zip(autos, ids, strict=True)
        for s in todo:
            if s.kind == Kind.FUNCTION:
                made.append((s, _function_execution(defs, s.key, n).pk))
            elif s.kind == Kind.JOB:
                made.append((s, _job(defs, s.key, n)))
            elif s.kind == Kind.WORKFLOW:
                made.append((s, _workflow_execution(defs, s.key, n)))
            elif s.kind == Kind.RUN:
                made.append((s, _run(defs, s.key, n)))
        for kind, model in _MODELS.items():
            pks = {str(pk): s for s, pk in made if s.kind == kind}
            attnames = [f.attname for f in _copied_fields(model)]
            rows = model.objects.filter(pk__in=list(pks)).values("pk", *attnames)
            children: dict[str, list[dict]] = {pk: [] for pk in pks}
            if kind in _CHILDREN:
                child, fk = _CHILDREN[kind]
                child_attnames = [f.attname for f in _copied_fields(child)]
                qs = child.objects.filter(**{f"{fk}__in": list(pks)}).order_by("pk")
                for c in qs.values(*child_attnames):
                    children[str(c[fk])].append(c)
            for row in rows:
                s, anchor = pks[str(row["pk"])], row[_ANCHOR[kind]]
                _EXEMPLARS[(defs.org.slug, kind, s.key)] = (
                    _template(model, row, anchor),
                    [_template(_CHILDREN[kind][0], c, anchor) for c in children[str(row["pk"])]],
                )
        transaction.set_rollback(True)


def _entry(defs: Definitions, s: Scenario) -> tuple[dict, list[dict]]:
    """The exemplar of `s`, pointed at this tenant's current rows."""
    row, children = _EXEMPLARS[(defs.org.slug, s.kind, s.key)]
    row = {**row, "tenant_id": str(defs.tenant.pk)}
    if s.kind == Kind.FUNCTION:
        row["function_id"] = defs.functions[s.key][0].pk
    elif s.kind == Kind.AUTOMATION:
        row["automation_rule_id"] = str(defs.rules[s.key][0].pk)
    elif s.kind == Kind.WORKFLOW:
        row["workflow_id"] = str(defs.workflows[s.key][0].pk)
    return row, children


# --- copying exemplars, set-based -----------------------------------------------------------------


@dataclass
class _Table:
    model: type[models.Model]
    ids: dict[str, str]  # column -> how copies get it (see _ID_SQL)
    templates: list[dict] = field(default_factory=list)  # each with "k": its parent's template


@dataclass
class _Plan:
    kind: str
    parent: _Table
    child: _Table | None


_PARENT_IDS = {
    Kind.FUNCTION: {"id": "object_id"},
    Kind.AUTOMATION: {"execution_id": "uuid"},
    Kind.JOB: {"job_id": "uuid"},
    Kind.WORKFLOW: {"id": "uuid", "engine_execution_id": "random_uuid"},
    Kind.RUN: {"id": "run_id"},
}
_CHILD_IDS = {
    Kind.JOB: {"job_id": "uuid"},
    # A task's own id follows its execution's time too: its primary key is one of the two
    # indexes the load keeps filling on that table (2.7 tasks per execution), both unique.
    Kind.WORKFLOW: {"id": "task_uuid", "execution_id": "uuid"},
}


def _plan(kind: str, entries: list[tuple[dict, list[dict]]], *, per_row_numbers: bool) -> _Plan:
    """Templates numbered k = 0..K-1 (copy i uses template i mod K). Without `per_row_numbers`
    the "{n}" of a payload is fixed per template, not per copy: the JSON then stays a constant
    instead of being edited and parsed for every row (a tenth of a big scale's time)."""
    plan = _Plan(kind, _Table(_MODELS[kind], _PARENT_IDS[kind]), None)
    if kind in _CHILDREN:
        plan.child = _Table(_CHILDREN[kind][0], _CHILD_IDS[kind])

    def numbered(template: dict, k: int) -> dict:
        if per_row_numbers:
            return {**template, "k": k}
        number = str(1000 + k * 7919 % 9000)
        return {
            **{
                c: v.replace("__N__", number) if isinstance(v, str) else v
                for c, v in template.items()
            },
            "k": k,
        }

    for k, (row, children) in enumerate(entries):
        plan.parent.templates.append(numbered(row, k))
        if plan.child is not None:
            plan.child.templates += [numbered(c, k) for c in children]
    return plan


# On PostgreSQL every copy is a row of `s`: i, its template k, h = md5(batch || i), its time ts,
# ts as ISO text, a number for its payload, and v7: a time-ordered (UUIDv7 layout) id. Copies are
# numbered in time order and their ids follow time, so every index grows at a few points instead
# of everywhere at random (far fewer pages touched and written). The same expression gives a child
# its parent's id.
_ID_SQL = {
    "uuid": "s.v7::uuid",
    "task_uuid": "(substr(s.v7, 1, 17) || substr(md5(s.h || v.task_external_id), 1, 15))::uuid",
    "random_uuid": "gen_random_uuid()",
    "object_id": (
        "lpad(to_hex(floor(extract(epoch from s.ts))::bigint), 8, '0') || substr(s.h, 1, 16)"
    ),
    "run_id": "'run_' || s.v7",
}


def _select_list(table: _Table) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """(columns, SELECT expressions over `s` and template `v`, jsonb_to_recordset column defs,
    the JSON columns the templates must carry as JSON rather than as text, the columns edited
    per copy)."""
    q = connection.ops.quote_name
    columns, exprs, defs, as_json, edited = [], [], ["k integer"], [], []
    for f in _copied_fields(table.model):
        columns.append(q(f.column))
        if f.column in table.ids:
            exprs.append(_ID_SQL[table.ids[f.column]])
            continue
        col = f"v.{q(f.column)}"
        if isinstance(f, models.JSONField):
            texts = [t[f.column] or "" for t in table.templates]
            stamped = any("__TS__" in t for t in texts)
            numbered = any("__N__" in t for t in texts)
            # Only JSON that differs per copy is edited as text and parsed per row.
            defs.append(f"{q(f.column)} {'text' if stamped or numbered else 'jsonb'}")
            if stamped:
                col = f"replace({col}, '__TS__', s.iso)"
            if numbered:
                col = f"replace({col}, '__N__', s.num)"
            exprs.append(f"({col})::jsonb" if stamped or numbered else col)
            if stamped or numbered:
                edited.append(q(f.column))
            else:
                as_json.append(f.column)
        elif isinstance(f, models.DateTimeField):
            defs.append(f"{q(f.column)} double precision")
            exprs.append(f"s.ts + {col} * interval '1 millisecond'")
        else:
            defs.append(f"{q(f.column)} {f.db_type(connection)}")
            exprs.append(col)
    return columns, exprs, defs, as_json, edited


def _clone_postgresql(plan: _Plan, n: int) -> None:
    """One statement per kind: copy i of n uses template mod(i, K); the parent rows and their
    children are inserted by data-modifying CTEs."""
    params: list[Any] = [f"{secrets.token_hex(8)}:{plan.kind}:", n]
    parts, made = [], []
    for name, table in (("p", plan.parent), ("c", plan.child)):
        if table is None:
            continue
        columns, exprs, defs, as_json, edited = _select_list(table)
        templates = [
            {**t, **{c: json.loads(t[c]) for c in as_json if t[c] is not None}}
            for t in table.templates
        ]
        recordset = f"jsonb_to_recordset(%s::jsonb) AS v({', '.join(defs)})"
        templates_json = json.dumps(templates, cls=DjangoJSONEncoder)
        source = _compressed_templates(f"redrive_seed_{name}", defs, edited, templates_json)
        if source is None:  # no temporary tables here: the templates as they are
            source = recordset
            params.append(templates_json)
        else:
            made.append(source)
            source += " AS v"
        # Identifiers come from model metadata and numbers from this module; values are params.
        parts.append(
            f"{name} AS (INSERT INTO {connection.ops.quote_name(table.model._meta.db_table)} "  # noqa: S608
            f"({', '.join(columns)}) SELECT {', '.join(exprs)} FROM s JOIN {source} USING (k))"
        )
    week = int(WEEK.total_seconds())
    sql = f"""
        WITH s AS MATERIALIZED (
            SELECT i, mod(i, {len(plan.parent.templates)}) AS k, h, ts,
                   to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS iso,
                   (1000 + mod(i * 7919, 9000))::text AS num,
                   lpad(to_hex((extract(epoch from ts) * 1000)::bigint), 12, '0')
                       || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15) AS v7
            FROM (
                -- i - random() in (i - 1, i]: times rise with i, from 7 days to 5 min ago.
                SELECT i, md5(%s || i::text) AS h,
                       now() - interval '{week - 300} seconds'
                           + (i - random()) / {int(n)} * interval '{week - 600} seconds' AS ts
                FROM generate_series(1, %s) AS g(i)
            ) AS x
        ), {", ".join(parts)}
        SELECT count(*) FROM s
    """  # noqa: S608 (see above)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for table in made:
            cursor.execute(f"DROP TABLE {table}")


# PostgreSQL compresses a row's values only when the row passes ~2 kB, and most copies are 1-2 kB:
# their stacks, execution contexts and definitions went to disk (and to the WAL) uncompressed.
# A value that is compressed already is stored as it is, though. So the templates go to a
# temporary table first, whose rows also carry two 1,500-byte filler values stored EXTERNAL: they
# keep the row over the threshold until every other value worth compressing is compressed, and
# being the biggest, they are what moves out of line after that. Each template value is thus
# compressed once, and every copy takes those bytes as they are. The values edited per copy
# (stamped JSON) are stored MAIN there, so they are not compressed only to be decompressed for
# every copy. At --scale 100,000 (the scale alone, alternating pairs): 13% less WAL and disk
# (1277 -> 1114 MB, 1244 -> 1088 MB) and 7.72-7.88 s against 8.35-9.05 s in 4 of 4 pairs.
_FILLERS = 2
_FILLER = "x" * 1500


def _compressed_templates(
    table: str, defs: list[str], edited: list[str], templates_json: str
) -> str | None:
    """A temporary table `table` of the templates with their values compressed (see above), or
    None when one cannot be made here."""
    fillers = [f"redrive_fill_{i}" for i in range(_FILLERS)]
    storage = [f"ALTER COLUMN {f} SET STORAGE EXTERNAL" for f in fillers]
    storage += [f"ALTER COLUMN {c} SET STORAGE MAIN" for c in edited]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Names from this module and the models' metadata; the templates are a parameter.
            cursor.execute(
                f"CREATE TEMPORARY TABLE {table} "
                f"({', '.join(defs + [f + ' text' for f in fillers])})"
            )
            cursor.execute(f"ALTER TABLE {table} {', '.join(storage)}")
            cursor.execute(
                f"INSERT INTO {table} SELECT v.*, {', '.join('%s' for _ in fillers)} "  # noqa: S608
                f"FROM jsonb_to_recordset(%s::jsonb) AS v({', '.join(defs)})",
                [_FILLER] * _FILLERS + [templates_json],
            )
    except DatabaseError:
        return None
    return table


_ID_PY = {
    "uuid": lambda ctx: ctx["id"],
    "task_uuid": lambda ctx: uuid.uuid4(),
    "random_uuid": lambda ctx: uuid.uuid4(),
    "object_id": lambda ctx: object_id(),
    "run_id": lambda ctx: run_id(),
}


def _instance(table: _Table, template: dict, ctx: dict) -> models.Model:
    values = {}
    for f in _copied_fields(table.model):
        value = template[f.column]
        if f.column in table.ids:
            value = _ID_PY[table.ids[f.column]](ctx)
        elif isinstance(f, models.JSONField) and value is not None:
            value = json.loads(value.replace("__TS__", ctx["iso"]).replace("__N__", ctx["num"]))
        elif isinstance(f, models.DateTimeField) and value is not None:
            value = ctx["ts"] + timedelta(milliseconds=value)
        values[f.attname] = value
    return table.model(**values)


def _clone_python(plan: _Plan, n: int, batch_size: int = 1000) -> None:
    """The portable (SQLite) path: the same rows, built here and bulk-inserted in batches."""
    now, rng = timezone.now(), random.Random()
    children: dict[int, list[dict]] = {}
    for t in plan.child.templates if plan.child else []:
        children.setdefault(t["k"], []).append(t)
    templates = plan.parent.templates
    for start in range(1, n + 1, batch_size):
        parents, kids = [], []
        for i in range(start, min(start + batch_size, n + 1)):
            ts = now - timedelta(seconds=300 + rng.random() * (WEEK.total_seconds() - 600))
            ctx = {"id": uuid.uuid4(), "ts": ts, "iso": ts.isoformat(), "num": str(1000 + i % 9000)}
            k = i % len(templates)
            parents.append(_instance(plan.parent, templates[k], ctx))
            ctx["id"] = parents[-1].pk
            kids += [_instance(plan.child, t, ctx) for t in children.get(k, [])]
        plan.parent.model.objects.bulk_create(parents)
        if plan.child is not None and kids:
            plan.child.model.objects.bulk_create(kids)


def _clone(plan: _Plan, n: int) -> None:
    if connection.vendor == "postgresql":
        _clone_postgresql(plan, n)
    else:
        _clone_python(plan, n)


# --- the base seed --------------------------------------------------------------------------------

WEEK = timedelta(days=7)


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


def seed(*, scale: int = 0) -> dict:
    """Create (or top up) the demo data and return the manifest
    (docs/seed_demo_manifest.schema.json). `scale` > 0 also runs scale(scale)."""
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
    if scale:
        _scale(scale)
    return manifest


# --- scale(n) -------------------------------------------------------------------------------------


def scale(n: int) -> dict:
    """Add n failed items of each kind (split across the demo tenants); see _scale."""
    return _scale(n)


def _scale(n: int) -> dict:
    """Add n failed items of each kind, half in each demo tenant, and return the count per kind.
    Creates the demo tenants and definitions first if they are missing.

    Inside a transaction (tests, seed(scale=...)) it all happens in that transaction. Called
    outside one on PostgreSQL (the seed_demo command) with a big n, each kind loads in its own
    transaction (see _load_kind) on its own connection, the five at once: the machine has two
    cores and one statement uses one."""
    if n <= 0:
        return {str(kind): 0 for kind in _MODELS}
    with transaction.atomic():
        all_defs = [_definitions(_tenant(org)[0], org) for org in ORGS.values()]
        for defs in all_defs:
            _exemplars(defs)
    chunks: dict[str, list[tuple[_Plan, int]]] = {}
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
                chunks.setdefault(kind, []).append((plan, count))
    big = connection.vendor == "postgresql" and n >= 5000
    if big and not connection.in_atomic_block:
        # One connection per core working through the kinds, the costliest first (so the last
        # to start is a small one and the cores finish close together). More connections than
        # cores measured ~10% slower: their WAL writes contend, and the biggest kind still ends
        # alone (five at once: 10.99 and 11.32 s; two, costliest first: 9.95 and 9.98 s).
        queue = sorted(chunks.values(), key=lambda c: sum(map(_load_bytes, c)), reverse=True)
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            for future in [pool.submit(_load_kind, kind_chunks) for kind_chunks in queue]:
                future.result()
    else:
        with transaction.atomic():
            # Back to normal afterwards: the caller's transaction goes on with checks on.
            applied = _bulk_load_settings() if big else []
            for kind_chunks in chunks.values():
                for plan, count in kind_chunks:
                    _clone(plan, count)
            _reset_settings(applied)
    return {str(kind): n for kind in _MODELS}


def _rows(chunk: tuple[_Plan, int]) -> float:
    """How many rows a chunk inserts, children included."""
    plan, count = chunk
    children = len(plan.child.templates) if plan.child else 0
    return count * (1 + children / len(plan.parent.templates))


def _load_bytes(chunk: tuple[_Plan, int]) -> float:
    """What a chunk writes, roughly: its templates' size (children included) times its copies.
    A kind's load time follows it (within ~15% across the five kinds)."""
    plan, count = chunk
    templates = plan.parent.templates + (plan.child.templates if plan.child else [])
    size = sum(len(json.dumps(t, cls=DjangoJSONEncoder)) for t in templates)
    return count * size / len(plan.parent.templates)


def _load_kind(chunks: list[tuple[_Plan, int]]) -> None:
    """All chunks of one kind on this thread's own connection, in one transaction: the tables'
    secondary indexes are set aside first when the load outgrows them, and built again at the end
    (see _set_indexes_aside)."""
    plan = chunks[0][0]
    parents = sum(count for _, count in chunks)
    adding = [(plan.parent, parents)]
    if plan.child is not None:
        adding.append((plan.child, int(sum(map(_rows, chunks))) - parents))
    try:
        with transaction.atomic():
            _bulk_load_settings()
            rebuild = _set_indexes_aside(adding)
            for plan, count in chunks:
                _clone(plan, count)
            with connection.cursor() as cursor:
                for statement in rebuild:
                    cursor.execute(statement)
    finally:
        connections.close_all()  # this thread's connections only


# A secondary index built once over a table's rows costs a fraction of what keeping it up to date
# row by row does (measured at 100,000 function executions: the trigram index 1.4 s built against
# 2.8 s maintained, the inbox's B-tree 0.2 s against 0.8 s). So, as pg_restore does, a big load
# into a table that holds fewer rows than the load adds drops the table's plain indexes first and
# creates them again, by their own definitions, at the end of the same transaction: no one ever
# sees the table without them (readers wait for the load's end instead). Indexes that back a
# constraint (primary keys, unique constraints: foreign keys rely on them) stay, and so does any
# index carrying something a CREATE INDEX would not restore (a comment, a statistics target, a
# CLUSTER mark) or that the server would not give back exactly as it is (see
# _restoring_statement). So does a partial index none of the copies enters (the leases of running
# work): keeping it costs a test per row, building it a scan of the table. A table another
# transaction holds is loaded with its indexes in place.
_DROPPABLE_INDEXES = """
    SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
           pg_get_expr(i.indpred, i.indrelid)
    FROM pg_index AS i
    WHERE i.indrelid = %s::regclass
      AND NOT i.indisunique AND NOT i.indisexclusion AND NOT i.indisclustered
      AND NOT i.indisreplident AND i.indisvalid AND i.indisready AND i.indislive
      AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)
      AND NOT EXISTS (
          SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0
      )
      AND obj_description(i.indexrelid, 'pg_class') IS NULL
    ORDER BY 1
"""


def _set_indexes_aside(adding: list[tuple[_Table, int]]) -> list[str]:
    """Drop the plain indexes the load would fill of each table (with the rows the load adds)
    that holds fewer rows than it gets; returns the CREATE INDEX statements that restore them."""
    q = connection.ops.quote_name
    rebuild: list[str] = []
    with connection.cursor() as cursor:
        for table, rows in adding:
            name = q(table.model._meta.db_table)
            cursor.execute(f"SELECT count(*) FROM (SELECT FROM {name} LIMIT %s) AS t", [rows])  # noqa: S608 (a model's table)
            if cursor.fetchone()[0] >= rows:
                continue
            try:
                with transaction.atomic():
                    cursor.execute("SET LOCAL lock_timeout TO '2s'")
                    cursor.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
                    cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
            except DatabaseError:
                continue  # busy: load it with its indexes
            cursor.execute(_DROPPABLE_INDEXES, [table.model._meta.db_table])
            indexes = cursor.fetchall()
            cursor.execute(f"CREATE TEMP TABLE redrive_index_probe (LIKE {name})")
            for index, definition, predicate in indexes:
                statement = _restoring_statement(cursor, definition)
                if statement and (predicate is None or _any_template_enters(table, predicate)):
                    cursor.execute(f"DROP INDEX {index}")
                    rebuild.append(statement)
            cursor.execute("DROP TABLE redrive_index_probe")
    return rebuild


_INDEX_HEAD = re.compile(r"^CREATE INDEX (\S+) ON (\S+) USING ")
# pg_get_indexdef() spells `status IN ('a', 'b')` as `(status)::text = ANY ((ARRAY['a', 'b'])::
# text[])`, which PostgreSQL reads back as a different (equivalent) expression; written as the IN
# list it was made from, it comes back the same.
_IN_LIST = re.compile(
    r"\(\((\w+)\)::text = ANY \(\(ARRAY\[((?:'[^']*'::character varying(?:, )?)+)\]\)::text\[\]\)\)"
)


def _restoring_statement(cursor: Any, definition: str) -> str | None:
    """A CREATE INDEX statement that makes an index the server describes exactly as `definition`
    (tried on an empty copy of its table, redrive_index_probe), or None."""
    head = _INDEX_HEAD.match(definition)
    if head is None:
        return None
    for candidate in dict.fromkeys((definition, _IN_LIST.sub(r"(\1 IN (\2))", definition))):
        probe = _INDEX_HEAD.sub(
            "CREATE INDEX redrive_index_probe_i ON redrive_index_probe USING ", candidate
        )
        try:
            with transaction.atomic():
                cursor.execute(probe)
                cursor.execute("SELECT pg_get_indexdef('redrive_index_probe_i'::regclass)")
                made = cursor.fetchone()[0]
                cursor.execute("DROP INDEX redrive_index_probe_i")
        except DatabaseError:
            continue
        if made.split(" USING ", 1)[1] == definition.split(" USING ", 1)[1]:
            return candidate
    return None


def _any_template_enters(table: _Table, predicate: str) -> bool:
    """Whether a copy of some template of `table` may enter a partial index with this WHERE.
    Copies keep their template's values but for ids and times, which the templates leave out
    here (NULL): a predicate on them cannot be decided, so the answer is yes."""
    kept = [
        f.column
        for f in _copied_fields(table.model)
        if f.column not in table.ids and not isinstance(f, models.DateTimeField)
    ]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            name = connection.ops.quote_name(table.model._meta.db_table)
            # The predicate is the server's own text of an index's WHERE on this table.
            cursor.execute(
                f"SELECT count(*) FILTER (WHERE {predicate}), "  # noqa: S608
                f"count(*) FILTER (WHERE ({predicate}) IS NULL) "
                f"FROM jsonb_populate_recordset(NULL::{name}, %s::jsonb) AS {name}",
                [json.dumps([{c: t[c] for c in kept} for t in table.templates])],
            )
            entering, undecided = cursor.fetchone()
    except DatabaseError:
        return True
    return bool(entering or undecided)


# Session settings for a big load, each tried in turn (a role may not be allowed one, a server may
# lack lz4): skip the per-row foreign-key trigger checks, as pg_restore --disable-triggers does -
# at 100,000 per kind they are ~1.75 million checks, costing more than the inserts, and they cannot
# fail: every foreign key of a copy is a tenant or definition just read in this transaction or the
# parent its own statement inserts (tests check the references after a big load); compress the
# large JSON of a run with lz4 rather than pglz (~15% of a run row's cost); keep the numbered
# rows of a chunk (the `s` CTE, ~8 MB for 50,000) and the rows a statement inserted (the
# failure-count trigger's transition table, ~70-100 MB for 50,000) in memory rather than in temp
# files; give the index builds room to sort in memory; do not wait for the WAL flush at commit
# (losing the last demo rows in a crash is fine); and build each index in the loading backend
# alone: the loads already use every core, so parallel build workers only competed with them
# (with the task ids above, 8 alternating pairs at --scale 100000: faster in 7, by ~0.4 s).
_BULK_SETTINGS = (
    ("session_replication_role", "replica"),
    ("default_toast_compression", "lz4"),
    ("work_mem", "'256MB'"),
    ("maintenance_work_mem", "'256MB'"),
    ("synchronous_commit", "off"),
    ("max_parallel_maintenance_workers", "0"),
)


def _bulk_load_settings() -> list[str]:
    """Apply _BULK_SETTINGS for the current transaction; returns the names that took."""
    applied = []
    with connection.cursor() as cursor:
        for name, value in _BULK_SETTINGS:
            try:
                with transaction.atomic():
                    cursor.execute(f"SET LOCAL {name} TO {value}")
            except DatabaseError:
                continue
            applied.append(name)
    return applied


def _reset_settings(names: list[str]) -> None:
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"SET LOCAL {name} TO DEFAULT")
