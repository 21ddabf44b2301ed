"""Starting work through the API (issue 19): N function executions (seed 000's asynchronous
`POST .../functions/{id}/execute`, a small JavaScript function), N/5 jobs (`POST /job`, a no-op
handler for any host) and N/10 three-task Cognite workflows (`POST .../workflows/{externalId}/
versions/{version}/run`, three no-op handler tasks in a chain), sent interleaved by a bounded
load client to gunicorn as bench/api.py runs it, with 2 `manage.py worker` processes running
the work as it arrives. In the same run, the reference: the stock django-tasks-db `db_worker`
(2 processes) with the same number of no-op tasks enqueued (one transaction) and drained.

- api_starts_per_s: starts / wall time of sending them (every one must answer 201 or 202);
- completed_per_s:  starts / time from the first start until every one is final (a workflow
                    counts once, when its three tasks are done);
- stock_per_s:      no-op tasks / time from the start of their enqueue until the last is done;
- stock_http_starts_per_s, stock_http_completed_per_s: the floor of a start over HTTP on this
                    machine: the same gunicorn, settings and client POSTing the same number of
                    requests to a plain Django view that enqueues one no-op task each
                    (bench/stock_site.py), the db_workers draining them meanwhile.

Each workflow run spends a single-use session nonce, as Cognite's SDK does: the nonces are made
before the clock starts (the SDK would POST /sessions for each), not counted as starts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres uv run python bench/start.py --n 10000
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time

from api import CORES, Server, free_port, load, percentile
from common import bench_database, setup_django, tenant_and_admin
from work import INTERVAL, WORKERS, start, stop, wait_until

JS_CODE = "return { ok: true, n: payload.n, square: payload.n * payload.n };"
WORKFLOW = "bench-three"
CONCURRENCY = 4


def send(base: str, requests: list[tuple[str, bytes]], headers: dict, time_limit: float):
    """POST every (path, JSON body) once from CONCURRENCY threads: bench/api.py's load, with
    bodies. Returns (wall seconds, latencies in ms, count per status code)."""
    headers = {**headers, "Content-Type": "application/json"}
    return load(base, "POST", requests, headers, CONCURRENCY, time_limit)


def interleave(*lists: list) -> list:
    """One list taking from each in proportion, so every kind is started all along."""
    total = sum(len(x) for x in lists)
    out, positions = [], [0] * len(lists)
    for i in range(total):
        # The list furthest behind its share goes next.
        best = min(
            (k for k in range(len(lists)) if positions[k] < len(lists[k])),
            key=lambda k: positions[k] / len(lists[k]) - i / total,
        )
        out.append(lists[best][positions[best]])
        positions[best] += 1
    return out


def stock_enqueue_and_drain(n: int, timeout: float) -> float:
    """n no-op django.tasks tasks enqueued (one transaction) and drained by the running
    db_workers: the seconds from the start of the enqueue until the last is done."""
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from bench.stock_tasks import noop  # the path the workers import it by

    DBTaskResult.objects.all().delete()
    started = time.perf_counter()
    with transaction.atomic():
        for _ in range(n):
            noop.enqueue()
    unfinished = DBTaskResult.objects.exclude(status="SUCCESSFUL")
    wait_until(lambda: not unfinished.exists(), timeout, "stock drain")
    return time.perf_counter() - started


def stock_http(n: int, workers: int, time_limit: float, timeout: float) -> tuple[float, float]:
    """The floor of a start over HTTP: the same gunicorn, settings and load client POSTing to a
    plain Django view that enqueues one no-op task (bench/stock_site.py), with the running
    db_workers draining. Returns (seconds to send them, seconds until the last is done)."""
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.all().delete()
    server = Server(free_port(), workers, "sync", 1, settings="bench.stock_site")
    try:
        server.wait_ready()
        body = [("/enqueue", json.dumps({"n": i}).encode()) for i in range(n + 20)]
        _, _, warm = send(server.base, body[:20], {}, 120)
        assert set(warm) == {202}, (warm, server.output())
        unfinished = DBTaskResult.objects.exclude(status="SUCCESSFUL")
        wait_until(lambda: not unfinished.exists(), timeout, "stock HTTP warm-up")
        started = time.perf_counter()
        send_s, _, codes = send(server.base, body[20:], {}, time_limit)
        assert codes == {202: n}, (codes, server.output())
        wait_until(lambda: not unfinished.exists(), timeout, "stock HTTP drain")
        return send_s, time.perf_counter() - started
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=10_000, help="functions (jobs n/5, workflows n/10)"
    )
    parser.add_argument("--workers", type=int, default=2 * CORES, help="gunicorn processes")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds to send at most")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to finish at most")
    args = parser.parse_args()
    n_functions, n_jobs, n_workflows = args.n, args.n // 5, args.n // 10
    total = n_functions + n_jobs + n_workflows

    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    bench_database("redrive_bench_start")
    setup_django()
    from django.db import connections

    from executions import kinds, permissions, services
    from executions.kinds.workflows.sessions import create_session
    from executions.models import ApiKey, Function, Job, Role, WorkflowExecution
    from executions.tenancy import Actor

    tenant, actor = tenant_and_admin()
    function = Function.objects.create(tenant=tenant, name="bench start", code=JS_CODE)
    every = sorted(permissions.of_role(Role.ADMIN))
    key_row, key = ApiKey.objects.create_key(
        name="bench", tenant=tenant, user=actor.user, permissions=every
    )
    key_actor = Actor(tenant=tenant, permissions=frozenset(every), source="api", api_key=key_row)
    handler = {"name": "noop", "params": {}}
    services.upsert_workflow_versions(
        actor,
        tenant.workflows_project,
        [
            {
                "workflowExternalId": WORKFLOW,
                "version": "1",
                "workflowDefinition": {
                    "tasks": [
                        {
                            "externalId": name,
                            "type": "handler",
                            "parameters": {"handler": handler},
                            "dependsOn": [{"externalId": after}] if after else [],
                        }
                        for name, after in (("a", None), ("b", "a"), ("c", "b"))
                    ]
                },
            }
        ],
    )
    warm_n = 10
    nonces = [create_session(key_actor).nonce for _ in range(n_workflows + warm_n)]
    connections.close_all()

    fn_path = f"/api/functions/projects/{tenant.functions_project_id}/functions/{function.pk}"
    wf_path = f"/api/v1/projects/{tenant.workflows_project}/workflows/{WORKFLOW}/versions/1/run"

    def function_start(i: int) -> tuple[str, bytes]:
        return f"{fn_path}/execute", json.dumps({"payload": {"n": i}}).encode()

    def job_start(i: int) -> tuple[str, bytes]:
        return "/job", json.dumps({"operation": {"type": "noop", "data": {"i": i}}}).encode()

    def workflow_start(nonce: str) -> tuple[str, bytes]:
        body = {"authentication": {"nonce": nonce}, "input": {"n": 1}}
        return wf_path, json.dumps(body).encode()

    warm = [
        *(function_start(-i) for i in range(warm_n)),
        *(job_start(-i) for i in range(warm_n)),
        *(workflow_start(nonce) for nonce in nonces[:warm_n]),
    ]
    timed = interleave(
        [function_start(i) for i in range(n_functions)],
        [job_start(i) for i in range(n_jobs)],
        [workflow_start(nonce) for nonce in nonces[warm_n:]],
    )

    def in_flight() -> int:
        return (
            kinds.get("function")
            .model.objects.filter(status__in=kinds.get("function").in_flight)
            .count()
            + Job.objects.filter(status__in=kinds.get("job").in_flight).count()
            + WorkflowExecution.objects.filter(status__in=kinds.get("workflow").in_flight).count()
        )

    load_before = os.getloadavg()
    server = Server(free_port(), args.workers, "sync", 1)
    workers = [start(["worker", "--no-reaper", "--interval", INTERVAL]) for _ in range(WORKERS)]
    try:
        server.wait_ready()
        headers = {"X-API-Key": key}
        # Warm gunicorn's processes and the workers (imports, connections, sandbox hosts).
        _, _, warm_codes = send(server.base, warm, headers, 120)
        assert set(warm_codes) <= {201, 202}, (warm_codes, server.output())
        wait_until(lambda: in_flight() == 0, args.timeout, "warm-up")

        started = time.perf_counter()
        send_wall, latencies, codes = send(server.base, timed, headers, args.time_limit)
        wait_until(lambda: in_flight() == 0, args.timeout, "the started work")
        done_wall = time.perf_counter() - started
    finally:
        server_log = server.output()
        server.stop()
        stop(workers)

    sent = sum(codes.values())
    assert set(codes) <= {201, 202}, f"starts answered {codes}\n{server_log}"
    executions = kinds.get("function").model.objects.filter(function=function)
    failed = (
        executions.exclude(status="success").count()
        + Job.objects.exclude(status="completed").count()
        + WorkflowExecution.objects.exclude(status="COMPLETED").count()
    )

    stock = [
        start(["db_worker", "--no-startup-delay", "--interval", INTERVAL, "--no-reload"])
        for _ in range(WORKERS)
    ]
    try:
        stock_enqueue_and_drain(20, args.timeout)  # warm
        stock_s = stock_enqueue_and_drain(sent, args.timeout)
        http_send_s, http_done_s = stock_http(sent, args.workers, args.time_limit, args.timeout)
    finally:
        stop(stock)
    load_after = os.getloadavg()

    api_rate, completed_rate, stock_rate = sent / send_wall, sent / done_wall, sent / stock_s
    print(f"api_starts_per_s: {api_rate:.0f}")
    print(f"completed_per_s: {completed_rate:.0f}")
    print(f"stock_per_s: {stock_rate:.0f}")
    print(f"stock_http_starts_per_s: {sent / http_send_s:.0f}")
    print(f"stock_http_completed_per_s: {sent / http_done_s:.0f}")
    print(f"starts: {sent} of {total} ({n_functions} functions, {n_jobs} jobs, ", end="")
    print(f"{n_workflows} three-task workflows)")
    print(f"start_p50_ms: {percentile(latencies, 50):.1f}")
    print(f"start_p99_ms: {percentile(latencies, 99):.1f}")
    print(f"not_succeeded: {failed}")
    print(f"gunicorn: {args.workers} workers x 1 (sync), {CORES} cores; {WORKERS} workers")
    print("load_average: " + json.dumps([round(x, 2) for x in (*load_before, *load_after)]))
    met_api, met_done = api_rate >= 500, completed_rate >= stock_rate
    cut = "" if sent == total else f" (time limit hit after {sent} of {total})"
    print(
        f"summary: {sent} starts{cut} through the API at {api_rate:.0f}/s (target >= 500), "
        f"completed by {WORKERS} workers at {completed_rate:.0f}/s against stock db_worker's "
        f"{stock_rate:.0f} no-op tasks/s enqueued and drained ({completed_rate / stock_rate:.2f}x, "
        f"target >= 1x); {failed} did not succeed; targets "
        + ("met" if met_api and met_done and not failed else "MISSED")
    )


if __name__ == "__main__":
    main()
