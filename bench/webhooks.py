"""Webhooks (issue 21): N events to a local receiver (http.server on 127.0.0.1, keep-alive) with
2 worker processes. Events go to 4 tenants' subscriptions in turn (deliveries are in order per
subscription, so one subscription is one worker's at a time).

- deliveries_per_s: N events committed (in transactions of 500, not timed), then 2 workers
  started; N / the time until the receiver has all N.
- stock_per_s: in the same run, stock django-tasks-db `db_worker` (2 processes) draining N no-op
  tasks, one per event (bench/drain.py's reference).
- delay_p95_ms, the target's figure (not saturated): with 2 long-running workers, first
  `sustained_per_s`, N/5 events committed in transactions of 20 as fast as this process can,
  N/5 / (first commit to the last arrival with no task left), the rate the workers keep up with
  for commits of that size; then N/5 events at half that rate, per event its commit to its
  arrival. Each phase starts with the workers idle (no task queued or running).
- delay_p95_ms_half_batch: the same at half `deliveries_per_s` (what this bench used to report):
  that rate was measured on commits of 500, and when it is above `sustained_per_s` the queue
  grows and the figure measures the backlog, not a delivery's delay. The summary says of each
  phase whether it was saturated (its delay grew from its first fifth to its last).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        uv run python bench/webhooks.py --n 10000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import ROOT, bench_database, setup_django
from drain import stock_drain, wait_all

WORKERS = 2
SUBSCRIPTIONS = 4
EVENT = "execution.failed"
PER_COMMIT = 20
arrived: dict[int, float] = {}


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint would

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        at = time.time()
        # {"type":..,"timestamp":..,"data":{"seq":N,...}}: the sequence number without parsing.
        seq = int(body[body.index(b'"seq":') + 6 : body.index(b",", body.index(b'"seq":'))])
        arrived.setdefault(seq, at)
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def start_receiver() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


def subscribe(url: str) -> list:
    from django.contrib.auth.models import User

    from executions.models import Membership, Tenant
    from executions.tenancy import Actor
    from executions.webhooks import subscriptions

    tenants = []
    for i in range(SUBSCRIPTIONS):
        tenant = Tenant.objects.create(slug=f"t{i}", name=f"T{i}", workflows_project=f"t{i}")
        user = User.objects.create(username=f"admin{i}")
        Membership.objects.create(user=user, tenant=tenant, role="admin")
        subscriptions.create(
            Actor.for_user(user, tenant, source="cli"), {"url": url, "events": [EVENT]}
        )
        tenants.append(tenant)
    return tenants


def emit(tenants: list, first: int, n: int, per_commit: int) -> dict[int, float]:
    """Events first..first+n, `per_commit` to a transaction, each tenant's in turn."""
    from django.db import transaction

    from executions import events

    committed = {}
    for start in range(first, first + n, per_commit):
        seqs = range(start, min(start + per_commit, first + n))
        with transaction.atomic():
            for i, tenant in enumerate(tenants):
                payloads = [
                    {"seq": s, "kind": "job", "id": str(s), "name": "bench", "error": "boom"}
                    for s in seqs
                    if s % len(tenants) == i
                ]
                if payloads:
                    events.emit_many(tenant, EVENT, payloads)
        at = time.time()
        committed.update(dict.fromkeys(seqs, at))
    return committed


def worker(env: dict, batch: bool) -> subprocess.Popen:
    args = ["worker", "--interval", "0.05", *(["--batch"] if batch else [])]
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_arrived(count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(arrived) < count:
        if time.monotonic() > deadline:
            sys.exit(f"only {len(arrived)} of {count} deliveries arrived")
        time.sleep(0.01)


def wait_idle(timeout: float = 600) -> None:
    """Until the workers have no task left: a phase must not start behind the last one's."""
    from django_tasks_db.models import DBTaskResult

    deadline = time.monotonic() + timeout
    while DBTaskResult.objects.filter(status__in=("READY", "RUNNING")).exists():
        if time.monotonic() > deadline:
            sys.exit("the workers did not go idle")
        time.sleep(0.05)


def paced_delays(tenants: list, first: int, n: int, per_s: float) -> list[float]:
    """Events first..first+n, PER_COMMIT to a commit, at `per_s`: commit to arrival, ms."""
    wait_idle()
    arrived.clear()
    pause = PER_COMMIT / per_s
    committed: dict[int, float] = {}
    for at in range(first, first + n, PER_COMMIT):
        began = time.monotonic()
        committed.update(emit(tenants, at, min(PER_COMMIT, first + n - at), PER_COMMIT))
        time.sleep(max(0.0, pause - (time.monotonic() - began)))
    wait_arrived(n, 600)
    return [(arrived[s] - committed[s]) * 1000 for s in sorted(committed)]


def p95_of(delays: list[float]) -> float:
    return sorted(delays)[int(len(delays) * 0.95) - 1]


def verdict(delays: list[float]) -> str:
    """Saturated: the delay grew over the phase (a backlog built up), the last fifth's median
    more than 500 ms above the first fifth's."""
    fifth = max(len(delays) // 5, 1)
    first, last = statistics.median(delays[:fifth]), statistics.median(delays[-fifth:])
    word = "saturated" if last > first + 500 else "not saturated"
    return f"{word}: median {first:.0f} ms in the first fifth, {last:.0f} ms in the last"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    os.environ["REDRIVE_HTTP_ALLOW"] = "127.0.0.1"
    bench_database("redrive_bench_webhooks")
    setup_django()
    from django.db import connections

    url = start_receiver()
    tenants = subscribe(url)
    env = dict(os.environ)

    # Throughput: everything committed first, then 2 workers.
    emit(tenants, 0, args.n, 500)
    connections.close_all()
    started = time.perf_counter()
    workers = [worker(env, batch=True) for _ in range(WORKERS)]
    wait_arrived(args.n, 900)
    elapsed = time.perf_counter() - started
    wait_all(workers, 300)
    rate = args.n / elapsed

    stock = stock_drain(args.n)

    # Delay: 2 running workers. Their start-up is not part of it: one event per subscription.
    arrived.clear()
    workers = [worker(env, batch=False) for _ in range(WORKERS)]
    emit(tenants, 10**9, SUBSCRIPTIONS, SUBSCRIPTIONS)
    wait_arrived(SUBSCRIPTIONS, 300)
    n_delay = max(args.n // 5, 100)
    first = args.n
    # The rate the running workers keep up with, commits of 20 as fast as we can make them.
    wait_idle()
    arrived.clear()
    began = time.monotonic()
    emit(tenants, first, n_delay, PER_COMMIT)
    wait_arrived(n_delay, 600)
    wait_idle()  # the tasks left once all arrived are the workers' time too
    sustained = n_delay / (time.monotonic() - began)
    first += n_delay
    paced = paced_delays(tenants, first, n_delay, sustained / 2)
    first += n_delay
    half_batch = paced_delays(tenants, first, n_delay, rate / 2)
    for w in workers:
        w.terminate()
        w.wait(30)
    p95, p95_half = p95_of(paced), p95_of(half_batch)

    print(f"n: {args.n}")
    print(f"deliveries_per_s: {rate:.0f}")
    print(f"stock_per_s: {stock:.0f}")
    print(f"sustained_per_s: {sustained:.0f}")
    print(f"delay_p95_ms: {p95:.0f}")
    print(f"delay_p95_ms_half_batch: {p95_half:.0f}")
    print(
        f"summary: {WORKERS} workers delivered {args.n} signed events at {rate:.0f}/s, "
        f"{rate / stock:.2f}x stock db_worker's no-op tasks (target >= 1); commit to delivery "
        f"p95 {p95:.0f} ms, median {statistics.median(paced):.0f} ms at {sustained / 2:.0f} "
        f"events/s, half the {sustained:.0f}/s sustained in commits of {PER_COMMIT} (target p95 "
        f"<= 1000 ms; {verdict(paced)}); at half the batch rate, {rate / 2:.0f} events/s, p95 "
        f"{p95_half:.0f} ms, median {statistics.median(half_batch):.0f} ms ({verdict(half_batch)})"
    )


if __name__ == "__main__":
    main()
