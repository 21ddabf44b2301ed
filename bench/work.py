"""Real work drained by real workers: 2 `manage.py worker` processes run N queued JavaScript
function executions (seed 000: a small function whose code builds and returns an object, in the
V8 sandbox) and N HTTP-request executions (seed 001 automations, one action `{"url": ...}` each,
against an HTTP server this script starts on 127.0.0.1, which REDRIVE_HTTP_ALLOW names). In the
same run, the stock django-tasks-db `db_worker` (2 processes) drains N no-op tasks, one task per
item: the reference. Then the latency of seed 000's synchronous retry of that function over REST
(gunicorn as bench/api.py runs it, an API key, one client) with the workers idle, and the
workers' memory before and after the N JavaScript executions.

Every drain is timed the same way: the workers are already running and idle (started, warmed with
a few items), the N items are enqueued in one transaction, and the clock runs from its commit
until the last item is final. Startup is outside every figure, Redrive's and stock's alike.

- js_per_s:           function executions/s, one task per execution: the product's path for a
                      queued execution (a new invocation, a single retry, a cron tick, an
                      automatic retry each enqueue one task for one execution);
- js_batched_per_s:   the same, TASK_BATCH (250) executions per task: only a bulk retry of many
                      executions enqueues them so. A task per 250 items pays the task's own
                      claim and finish (two commits) once per 250: it is not the per-item figure
                      stock's one-no-op-per-task reference compares with, so both are printed;
- http_per_s:         automation executions/s with one HTTP action each, one task per execution
                      (what a new automation enqueues);
- http_batched_per_s: the same, TASK_BATCH (250) executions per task (what a bulk retry enqueues);
- stock_per_s:        no-op django.tasks tasks/s, one per item;
- sync_p50_ms, sync_p99_ms: POST .../executions/{id}/retry of a failed execution of the function;
- rss_growth_pct:     RSS of the worker processes and their sandbox hosts, after the JavaScript
                      drain against before it (both taken with the workers idle).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres uv run python bench/work.py --n 5000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
from api import Server, free_port, load, percentile
from common import ROOT, bench_database, setup_django, tenant_and_admin

WORKERS = 2
POLL_S = 0.05
# Both kinds of workers poll an empty queue this often: the same for Redrive's and stock's.
INTERVAL = "0.05"
WARM = 20  # items per kind run before anything is timed or measured
SYNC_WARM = 20
JS_CODE = """\
const items = [];
for (let i = 0; i < 10; i++) items.push({ i, square: i * i });
return { ok: true, n: payload.n, total: items.reduce((s, x) => s + x.square, 0), items };
"""


# --- a local HTTP server for the HTTP work -------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        data = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def http_server() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- processes -----------------------------------------------------------------------------------


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def rss(processes: list[subprocess.Popen]) -> tuple[int, int]:
    """(RSS of the worker processes, RSS of their children: the JavaScript sandbox hosts)."""
    own = children = 0
    for p in processes:
        proc = psutil.Process(p.pid)
        own += proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):  # a host replaced meanwhile
                children += child.memory_info().rss
    return own, children


def wait_until(done, timeout: float, what: str) -> float:
    """Poll `done()` until it is true; the seconds it took."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            sys.exit(f"{what}: not done after {timeout:.0f} s")
        time.sleep(POLL_S)
    return time.perf_counter() - started


# --- the drains ----------------------------------------------------------------------------------


def js_drain(function, n: int, batch: int, timeout: float) -> float:
    """n queued executions of the function: one task each (as a new invocation enqueues one) or
    `batch` to a task (as a bulk retry enqueues them); seconds from the commit until none is
    running."""
    from django.db import transaction

    from executions.kinds.functions.run import run_function_execution, run_function_executions
    from executions.models import FunctionExecution
    from executions.queueing import enqueue_on_commit

    with transaction.atomic():
        new = FunctionExecution.objects.bulk_create(
            FunctionExecution(
                tenant_id=function.tenant_id,
                function=function,
                code=function.code,
                environment=function.environment,
                memory_mb=function.memory_mb,
                function_version=function.version,
                timeout_ms=function.timeout_ms,
                payload={"n": i},
            )
            for i in range(n)
        )
        ids = [execution.pk for execution in new]
        if batch == 1:
            for pk in ids:
                enqueue_on_commit(run_function_execution, pk)
        else:
            for start_at in range(0, n, batch):
                enqueue_on_commit(run_function_executions, ids[start_at : start_at + batch])
    running = FunctionExecution.objects.filter(status="running")
    elapsed = wait_until(lambda: not running.exists(), timeout, "JavaScript drain")
    failed = FunctionExecution.objects.filter(pk__in=[e.pk for e in new]).exclude(status="success")
    assert not failed.exists(), (
        f"{failed.count()} executions did not succeed: "
        f"{failed.values('status', 'error_message').first()}"
    )
    return elapsed


def http_drain(rule, n: int, batch: int, timeout: float) -> float:
    """n pending automation executions of `rule` (one HTTP action), `batch` per task; seconds
    from the commit until every one is final."""
    from django.db import transaction

    from executions.kinds.automations.run import run_automation_executions
    from executions.models import AutomationExecution
    from executions.queueing import enqueue_on_commit

    AutomationExecution.objects.all().delete()
    with transaction.atomic():
        new = AutomationExecution.objects.bulk_create(
            AutomationExecution(
                tenant_id=rule.tenant_id,
                automation_rule=rule,
                trigger_data={"n": i},
                actions_total=len(rule.actions),
                execution_context={"rule_version": rule.version, "actions": rule.actions},
            )
            for i in range(n)
        )
        ids = [str(e.pk) for e in new]
        for start_at in range(0, n, batch):
            enqueue_on_commit(run_automation_executions, ids[start_at : start_at + batch])
    open_ = AutomationExecution.objects.filter(status__in=["pending", "running"])
    elapsed = wait_until(lambda: not open_.exists(), timeout, "HTTP drain")
    failed = AutomationExecution.objects.exclude(status="completed")
    assert not failed.exists(), (
        f"{failed.count()} executions did not complete: {failed.values('logs').first()}"
    )
    return elapsed


def stock_drain(n: int, timeout: float) -> float:
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from bench.stock_tasks import noop  # the path the workers import it by

    DBTaskResult.objects.all().delete()
    with transaction.atomic():  # enqueued as any caller would
        for _ in range(n):
            noop.enqueue()
    unfinished = DBTaskResult.objects.exclude(status="SUCCESSFUL")
    return wait_until(lambda: not unfinished.exists(), timeout, "stock drain")


# --- the synchronous retry -----------------------------------------------------------------------


def sync_retries(function, actor, requests: int) -> list[float]:
    """Latencies (ms) of `requests` retries of one failed execution of the function, one after
    another from one client (each retry is final before the next: the original stays failed and
    retryable)."""
    from django.db import connections

    from executions.models import ApiKey, FunctionExecution

    failed = FunctionExecution.objects.create(
        tenant_id=function.tenant_id,
        function=function,
        **function.definition(),
        payload={"n": 1},
        status="failed",
        error_message="connection reset by peer",
    )
    _, key = ApiKey.objects.create_key(
        name="bench", tenant=function.tenant, user=actor.user, permissions=["functions:retry"]
    )
    path = (
        f"/api/functions/projects/{function.tenant.functions_project_id}/functions/"
        f"{function.pk}/executions/{failed.pk}/retry"
    )
    connections.close_all()
    server = Server(free_port(), 2 * (os.cpu_count() or 2), "sync", 1)
    try:
        server.wait_ready()
        headers = {"X-API-Key": key}
        _, _, warm = load(server.base, "POST", [path] * SYNC_WARM, headers, 1, 120)
        assert warm == {200: SYNC_WARM}, f"warm-up retries answered {warm}\n{server.output()}"
        _, latencies, codes = load(server.base, "POST", [path] * requests, headers, 1, 300)
    finally:
        log = server.output()
        server.stop()
    assert codes == {200: requests}, f"retries answered {codes}\n{log}"
    retries = FunctionExecution.objects.filter(retry_of=failed)
    assert retries.count() == SYNC_WARM + requests
    assert not retries.exclude(status="success").exists(), "a retry did not succeed"
    return sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="items per drain")
    parser.add_argument("--sync", type=int, default=300, help="synchronous retries timed")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per drain at most")
    args = parser.parse_args()

    server = http_server()
    url = f"http://127.0.0.1:{server.server_address[1]}/json"
    # The workers (started below with this environment) may connect to that server, and only it.
    os.environ["REDRIVE_HTTP_ALLOW"] = f"127.0.0.1:{server.server_address[1]}"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    bench_database("redrive_bench_work")
    setup_django()
    from django.db import connections

    from executions.kinds.automations.retry import TASK_BATCH
    from executions.kinds.functions.run import TASK_BATCH as FUNCTION_BATCH
    from executions.models import AutomationRule, Function

    tenant, actor = tenant_and_admin()
    function = Function.objects.create(tenant=tenant, name="bench js", code=JS_CODE)
    rule = AutomationRule.objects.create(
        tenant=tenant, name="bench http", actions=[{"url": url, "method": "GET", "timeout": 10}]
    )
    connections.close_all()

    load_before = os.getloadavg()
    workers = [start(["worker", "--no-reaper", "--interval", INTERVAL]) for _ in range(WORKERS)]
    try:
        # Warm: imports, connections, each worker's sandbox host and its first isolates.
        js_drain(function, WARM, 1, args.timeout)
        http_drain(rule, WARM, 1, args.timeout)
        rss_before = rss(workers)
        js_s = js_drain(function, args.n, 1, args.timeout)
        rss_after = rss(workers)
        js_batched_s = js_drain(function, args.n, FUNCTION_BATCH, args.timeout)
        http_s = http_drain(rule, args.n, 1, args.timeout)
        http_batched_s = http_drain(rule, args.n, TASK_BATCH, args.timeout)
    finally:
        stop(workers)
    # The synchronous retry, with idle workers as `manage.py worker` runs them (its defaults: an
    # enqueue wakes them on PostgreSQL), not the drains' equal-terms INTERVAL.
    workers = [start(["worker", "--no-reaper"]) for _ in range(WORKERS)]
    try:
        latencies = sync_retries(function, actor, args.sync)
    finally:
        stop(workers)

    stock = [
        start(["db_worker", "--no-startup-delay", "--interval", INTERVAL, "--no-reload"])
        for _ in range(WORKERS)
    ]
    try:
        stock_drain(WARM, args.timeout)
        stock_s = stock_drain(args.n, args.timeout)
    finally:
        stop(stock)
    load_after = os.getloadavg()
    server.shutdown()

    js, js_batched, http, http_batched, stock_rate = (
        args.n / js_s,
        args.n / js_batched_s,
        args.n / http_s,
        args.n / http_batched_s,
        args.n / stock_s,
    )
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    before, after = sum(rss_before), sum(rss_after)
    growth = (after - before) / before * 100
    mib = 1024 * 1024
    print(f"n: {args.n}")
    print(f"js_per_s: {js:.0f}")
    print(f"http_per_s: {http:.0f}")
    print(f"stock_per_s: {stock_rate:.0f}")
    print(f"sync_p50_ms: {p50:.1f}")
    print(f"sync_p99_ms: {p99:.1f}")
    print(f"rss_growth_pct: {growth:.1f}")
    print(f"js_batched_per_s: {js_batched:.0f}")
    print(f"http_batched_per_s: {http_batched:.0f}")
    print(f"js_ratio_to_stock: {js / stock_rate:.2f}")
    print(f"js_batched_ratio_to_stock: {js_batched / stock_rate:.2f}")
    print(
        f"rss_mib: workers {rss_before[0] / mib:.0f} -> {rss_after[0] / mib:.0f}, "
        f"sandbox hosts {rss_before[1] / mib:.0f} -> {rss_after[1] / mib:.0f}"
    )
    print(f"sync_retries: {len(latencies)}")
    print("load_average: " + json.dumps([round(x, 2) for x in (*load_before, *load_after)]))
    verdicts = {
        "JavaScript >= 1x stock, one task per execution": js >= stock_rate,
        f"JavaScript >= 1x stock, {FUNCTION_BATCH} to a task": js_batched >= stock_rate,
        "sync p50 <= 25 ms": p50 <= 25,
        "sync p99 <= 100 ms": p99 <= 100,
        "RSS growth <= 10%": growth <= 10,
    }
    print(
        f"summary: {WORKERS} workers ran {args.n} JavaScript executions at {js:.0f}/s one task "
        f"each ({js / stock_rate:.2f}x stock db_worker's {stock_rate:.0f} no-op tasks/s) and "
        f"{js_batched:.0f}/s {FUNCTION_BATCH} to a task ({js_batched / stock_rate:.2f}x), "
        f"{args.n} HTTP requests at {http:.0f}/s ({http_batched:.0f}/s {TASK_BATCH} to a task); "
        f"sync retry p50 {p50:.1f} ms, p99 {p99:.1f} ms; worker RSS {growth:+.1f}% over the "
        "JavaScript drain. Met: "
        + (", ".join(k for k, v in verdicts.items() if v) or "none")
        + "; MISSED: "
        + (", ".join(k for k, v in verdicts.items() if not v) or "none")
    )


if __name__ == "__main__":
    main()
