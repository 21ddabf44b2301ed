"""What each demo tenant runs: its functions, automation rules, jobs, workflows and runs, and
how each fails (or succeeds)."""

from __future__ import annotations

from typing import Any

from .cast import Org

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
             data={"command": "systemctl", "args": ["restart", "nginx"]}),
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
