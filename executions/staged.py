"""Staged bulk retry (issue 20 §3): a canary first, a pace, and an automatic stop.

A bulk with staging options (`canary`: {size, minSuccessRate}, `ratePerSecond`,
`stopWhenFailedAgainRate`) is run here rather than by services.retry_many: its plan is the same
(BulkRetryPlan, fixed when it started), but it is worked through by a chain of short steps, each
a django.tasks task that enqueues the next one with `run_after` (nobody sleeps in a worker while
a canary's items run). Stages: `canary` (retry the first `size` items), `waiting` (until they are
final: on at least minSuccessRate of them succeeding, go on, else stop), `rest` (the others, at
`ratePerSecond`, and then until what was retried is final), `stopped` (the canary fell short,
the failed-again share passed stopWhenFailedAgainRate, or a cancel), `finished`.

Each step is one transaction holding the bulk's row lock: it reads the outcomes of what it
retried before, decides, retries its chunk (audit rows and all), records its position in the
plan and enqueues the next step, or none of that. A worker that dies mid-step leaves nothing
half-done: its task is given back (executions/heartbeats.py) and the step runs again. A step
carries the sequence number it was enqueued with, so a step given back after its commit (its
successor already enqueued) finds the number moved on and does nothing: one chain per bulk.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import kinds, retry_input, services
from .errors import InvalidInput
from .models import BulkRetry, BulkRetryPlan
from .queueing import enqueue_on_commit, worker_task

log = logging.getLogger("redrive.staged")

STAGES = ("canary", "waiting", "rest", "stopped", "finished")
# How long a step waits before looking again at items still running.
POLL_SECONDS = 1.0
# Without a rate, a step retries this many items (then the next step follows at once).
UNPACED_CHUNK = 500
# A canary whose items are not all final by then stops the bulk (a job for a host no worker
# serves never ends); after the last chunk, outcomes are awaited this long for the summary.
CANARY_TIMEOUT = timedelta(minutes=15)
SETTLE_TIMEOUT = timedelta(minutes=10)
MAX_LISTED = 100  # failed-again items the summary names
# A paced step this late or less keeps the pace's timeline (RQ's scheduler, whole seconds and a
# look each second, runs a deferred task up to ~2 s late); later (a busy worker) it starts anew
# rather than catch up in a burst.
PACE_GRACE = timedelta(seconds=2)
MAX_RATE = 10_000
MAX_CANARY = 100_000


# --- options -------------------------------------------------------------------------------------


def _number(value: Any, field: str, low: float, high: float, *, integer: bool = False) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise InvalidInput(f"{field} must be {what} between {low:g} and {high:g}", field=field)
    return value


def clean_options(body: Any) -> dict[str, Any]:
    """The bulk options of an API body or the console's form, checked: a 400 naming the field
    (`canary.size`, `ratePerSecond`, ...) for a bad one. Absent options are left out."""
    out: dict[str, Any] = {}
    if not isinstance(body, dict):
        return out
    reason = retry_input.clean_reason(body.get("reason"))
    if reason:
        out["reason"] = reason
    canary = body.get("canary")
    if canary is not None:
        if not isinstance(canary, dict):
            raise InvalidInput("canary must be an object: {size, minSuccessRate}", field="canary")
        unknown = sorted(set(canary) - {"size", "minSuccessRate"})
        if unknown:
            raise InvalidInput(f"canary.{unknown[0]} is not a canary option", field="canary")
        if "size" not in canary:
            raise InvalidInput("canary.size is required", field="canary.size")
        out["canary"] = {
            "size": int(_number(canary["size"], "canary.size", 1, MAX_CANARY, integer=True)),
            "minSuccessRate": float(
                _number(canary.get("minSuccessRate", 1.0), "canary.minSuccessRate", 0, 1)
            ),
        }
    if body.get("ratePerSecond") is not None:
        rate = _number(body["ratePerSecond"], "ratePerSecond", 0.01, MAX_RATE)
        out["ratePerSecond"] = float(rate)
    if body.get("stopWhenFailedAgainRate") is not None:
        stop = _number(body["stopWhenFailedAgainRate"], "stopWhenFailedAgainRate", 0, 1)
        out["stopWhenFailedAgainRate"] = float(stop)
    return out


def is_staged(options: dict | None) -> bool:
    return any(k in (options or {}) for k in ("canary", "ratePerSecond", "stopWhenFailedAgainRate"))


# --- running -------------------------------------------------------------------------------------


def start(bulk: BulkRetry) -> None:
    """In the transaction that records `bulk` (services.start_bulk_retry): its first step."""
    stage = "canary" if "canary" in bulk.options else "rest"
    state = {"seq": 0, "position": 0, "pending": [], "succeeded": 0, "failedAgain": 0}
    state["failedAgainItems"] = []
    BulkRetry.objects.filter(pk=bulk.pk).update(stage=stage, staged=state)
    bulk.stage, bulk.staged = stage, state
    enqueue_on_commit(staged_step, str(bulk.pk), 0)


def progress(bulk: BulkRetry) -> dict[str, Any]:
    """What the API and the console show of a staged bulk (empty for an unstaged one)."""
    if not bulk.stage:
        return {}
    state = bulk.staged or {}
    return {
        "stage": bulk.stage,
        "succeeded": state.get("succeeded", 0),
        "failedAgain": state.get("failedAgain", 0),
        "pending": len(state.get("pending", [])),
        "failedAgainItems": state.get("failedAgainItems", []),
        "stoppedBecause": state.get("stoppedBecause", ""),
        "options": {k: v for k, v in (bulk.options or {}).items() if k != "reason"},
    }


@worker_task
def staged_step(bulk_id: str, seq: int) -> None:
    step(bulk_id, seq)


def step(bulk_id: str, seq: int) -> None:
    with transaction.atomic(durable=True):
        bulk = (
            BulkRetry.objects.select_for_update(of=("self",))
            .select_related("tenant", "created_by", "api_key")
            .filter(pk=bulk_id)
            .first()
        )
        if bulk is None or bulk.status not in ("pending", "running"):
            return
        state = dict(bulk.staged or {})
        if state.get("seq") != seq:
            return  # a step given back after it committed: its successor runs the bulk
        _Step(bulk, state).run()


class _Step:
    def __init__(self, bulk: BulkRetry, state: dict) -> None:
        self.bulk, self.state = bulk, state
        self.options = bulk.options or {}
        self.now = timezone.now()
        self.delay: float | None = 0.0  # None: no next step
        self.paced = False  # the delay is the rate's (not a wait for outcomes)
        self.updates: dict[str, Any] = {}

    def run(self) -> None:
        bulk = self.bulk
        if bulk.status == "pending":
            self.updates.update(status="running", started_at=self.now)
        self.actor = services.actor_for_bulk(bulk)
        self.plan = [
            (kind, key)
            for kind, keys in BulkRetryPlan.objects.filter(bulk=bulk)
            .order_by("id")
            .values_list("kind", "keys")
            for key in keys
        ]
        self._outcomes()
        if bulk.cancel_requested:
            self._end("cancelled", "Cancelled by an operator")
        elif self._failing_too_often():
            pass
        elif bulk.stage == "canary":
            self._canary()
        elif bulk.stage == "waiting":
            self._waiting()
        else:
            self._rest()
        self._save()

    # -- stages --

    def _canary(self) -> None:
        end = min(self.options["canary"]["size"], len(self.plan))
        if self.state["position"] < end:
            self._retry_chunk(end)
        if self.state["position"] >= end:
            self.bulk.stage = "waiting"
            self.state["waitingSince"] = self.now.isoformat()
            self.delay = POLL_SECONDS if self.state["pending"] else 0.0
            self.paced = False

    def _waiting(self) -> None:
        state, canary = self.state, self.options["canary"]
        if state["pending"]:
            since = datetime.fromisoformat(state["waitingSince"])
            if self.now - since > CANARY_TIMEOUT:
                self._end("finished", "The canary's retries did not finish in time", "stopped")
            else:
                self.delay = POLL_SECONDS
            return
        final = state["succeeded"] + state["failedAgain"]
        rate = state["succeeded"] / final if final else 1.0
        state["canaryResult"] = {"succeeded": state["succeeded"], "final": final}
        if rate < canary["minSuccessRate"]:
            self._end(
                "finished",
                f"Canary: {state['succeeded']} of {final} succeeded ({rate:.0%}), below the "
                f"{canary['minSuccessRate']:.0%} asked for",
                "stopped",
            )
            return
        self.bulk.stage = "rest"

    def _rest(self) -> None:
        state = self.state
        if state["position"] < len(self.plan):
            self._retry_chunk(len(self.plan))
            if state["position"] >= len(self.plan):
                state["lastRetryAt"] = self.now.isoformat()
            return
        since = datetime.fromisoformat(state.get("lastRetryAt") or self.now.isoformat())
        if state["pending"] and self.now - since <= SETTLE_TIMEOUT:
            self.delay = POLL_SECONDS  # all retried: the summary waits for their outcomes
            return
        self._end("finished", "", "finished")

    def _failing_too_often(self) -> bool:
        threshold = self.options.get("stopWhenFailedAgainRate")
        state = self.state
        retried = state["succeeded"] + state["failedAgain"] + len(state["pending"])
        if threshold is None or not retried or state["failedAgain"] / retried <= threshold:
            return False
        if state["position"] >= len(self.plan) and self.bulk.stage == "rest":
            return False  # nothing left to stop
        share = state["failedAgain"] / retried
        self._end(
            "finished",
            f"Stopped: {state['failedAgain']} of {retried} retried items failed again "
            f"({share:.0%}), more than the {threshold:.0%} allowed",
            "stopped",
        )
        return True

    # -- work --

    def _chunk_size(self) -> int:
        rate = self.options.get("ratePerSecond")
        if rate is None:
            return UNPACED_CHUNK
        return max(1, int(rate))

    def _retry_chunk(self, end: int) -> None:
        """Retry the plan's next items up to `end`, one chunk: paced, the next step comes when
        the rate allows it."""
        state, bulk = self.state, self.bulk
        start = state["position"]
        chunk = self.plan[start : min(end, start + self._chunk_size())]
        by_kind: dict[str, list[str]] = {}
        for kind, key in chunk:
            by_kind.setdefault(kind, []).append(key)
        retried_n = failed_n = 0
        failures = list((bulk.summary or {}).get("failures", []))
        for kind, keys in by_kind.items():
            retried, not_retried = self._retry_kind(kind, keys)
            retried_n += len(retried)
            failed_n += len(not_retried)
            state["pending"] += [[kind, str(r.target_id), str(r.new_id)] for r in retried]
            for key, reason in not_retried[
                : max(0, services.MAX_REPORTED_FAILURES - len(failures))
            ]:
                failures.append({"kind": kind, "id": key, "reason": reason})
        state["position"] = start + len(chunk)
        summary = dict(bulk.summary or {})
        if failures:
            summary["failures"] = failures
        self.updates.update(
            done=bulk.done + retried_n, failed=bulk.failed + failed_n, summary=summary
        )
        bulk.done, bulk.failed, bulk.summary = (
            bulk.done + retried_n,
            bulk.failed + failed_n,
            summary,
        )
        rate = self.options.get("ratePerSecond")
        self.delay = len(chunk) / rate if rate else 0.0
        self.paced = bool(rate)

    def _retry_kind(self, kind: str, keys: list[str]) -> tuple[list, list[tuple[str, str]]]:
        spec = kinds.get(kind)
        if not self.actor.can(spec.permission):  # taken away since the bulk was planned
            return [], [(key, f"Needs permission {spec.permission}") for key in keys]
        try:
            with transaction.atomic():  # a savepoint: a conflict undoes this batch only
                retried = services.retry_for_bulk(self.actor, self.bulk, kind, keys)
        except IntegrityError:
            # A concurrent retry of one of them committed first: one at a time, then.
            retried = []
            for key in keys:
                try:
                    with transaction.atomic():
                        retried += services.retry_for_bulk(self.actor, self.bulk, kind, [key])
                except IntegrityError:
                    continue
        to_python = spec.model._meta.pk.to_python
        got = {str(to_python(r.target_id)) for r in retried}
        missed = [key for key in keys if str(to_python(key)) not in got]
        reasons = []
        if missed:
            rows = {str(o.pk): o for o in spec.model.objects.filter(pk__in=missed)}
            for key in missed:
                obj = rows.get(str(to_python(key)))
                why = services.why_not_retryable(self.actor, kind, obj) if obj else "Not found"
                reasons.append((key, why or services.NO_LONGER_RETRYABLE))
        return retried, reasons

    def _outcomes(self) -> None:
        """Move the retried items whose new attempt is final out of `pending`: succeeded, or
        failed again (the first MAX_LISTED named, for the summary's links)."""
        state = self.state
        pending = state.get("pending", [])
        if not pending:
            return
        by_kind: dict[str, list[str]] = {}
        for kind, _, new_id in pending:
            by_kind.setdefault(kind, []).append(new_id)
        statuses: dict[tuple[str, str], str] = {}
        for kind, ids in by_kind.items():
            spec = kinds.get(kind)
            to_python = spec.model._meta.pk.to_python
            for pk, status in spec.model.objects.filter(pk__in=ids).values_list("pk", "status"):
                statuses[(kind, str(to_python(pk)))] = status
        still = []
        for item in pending:
            kind, key, new_id = item
            spec = kinds.get(kind)
            status = statuses.get((kind, str(spec.model._meta.pk.to_python(new_id))))
            if status is None or status in spec.in_flight:
                still.append(item)
            elif status in spec.failed_statuses:
                state["failedAgain"] += 1
                if len(state["failedAgainItems"]) < MAX_LISTED:
                    state["failedAgainItems"].append(
                        {"kind": kind, "id": key, "newId": new_id, "status": status}
                    )
            else:
                state["succeeded"] += 1
        state["pending"] = still

    def _end(self, status: str, because: str, stage: str = "stopped") -> None:
        self.bulk.stage = stage
        self.state["stoppedBecause"] = because
        summary = dict(self.bulk.summary or {})
        summary["staged"] = {
            k: self.state.get(k) for k in ("succeeded", "failedAgain", "failedAgainItems")
        }
        summary["staged"]["pending"] = len(self.state["pending"])
        summary["staged"]["stoppedBecause"] = because
        self.bulk.summary = summary
        self.updates.update(status=status, finished_at=self.now, summary=summary)
        self.delay = None
        BulkRetryPlan.objects.filter(bulk=self.bulk).delete()

    def _next_at(self) -> datetime | None:
        """When the next step may run (None: at once). A paced step's successor is due a pace
        after this step's own due time, not after now: a backend that wakes a deferred task a
        little late (RQ's scheduler looks each second) then keeps the asked rate on average."""
        due = self.state.pop("dueAt", None)
        if not self.delay:
            return None
        pace = timedelta(seconds=self.delay)
        at = self.now + pace
        if self.paced:
            if due and self.now - datetime.fromisoformat(due) < pace + PACE_GRACE:
                at = datetime.fromisoformat(due) + pace  # about on time: keep the timeline
            self.state["dueAt"] = at.isoformat()
        return at

    def _save(self) -> None:
        seq = self.state["seq"] + 1 if self.delay is not None else self.state["seq"]
        self.state["seq"] = seq
        at = self._next_at()
        BulkRetry.objects.filter(pk=self.bulk.pk).update(
            stage=self.bulk.stage, staged=self.state, **self.updates
        )
        if self.delay is None:
            return
        task = staged_step
        if at is not None and task.get_backend().supports_defer:
            task = task.using(run_after=at)
        enqueue_on_commit(task, str(self.bulk.pk), seq)
