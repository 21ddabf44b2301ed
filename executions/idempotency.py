"""Idempotency-Key, as the IETF httpapi draft and Stripe define it: one store (IdempotencyRecord)
for the API's keyed requests and the domain's keyed retries (the console's buttons).

A key belongs to one caller in one tenant and names one request (its fingerprint: the method,
the path and a hash of the body, or for the domain the call and its options):

- begin(): the first request with a key records it in flight (its own commit, so every other
  request sees it at once) and goes on. The same key again: a different request is a 422; while
  the first is in flight a 409; once it is done, its stored response is replayed.
- record_outcome(): the domain writes what the request did into the record in the retry's own
  transaction; if the key is no longer this request's (taken over), the retry rolls back.
- complete() stores the response; release() forgets a request that failed before it did
  anything, so that its key can be used again (errors are not replayed).

A request whose process died while in flight holds its key until `locked_until`; the next request
with the key then takes it over, and replays what the dead one did if it had committed a retry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .errors import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidInput
from .models import IdempotencyRecord
from .tenancy import Actor

MAX_KEY = 255
# Longer than any keyed request runs (a synchronous function retry waits for its timeout, and
# gunicorn stops a request after 30 s by default): only a dead request holds its key this long.
IN_FLIGHT_SECONDS = 300


@dataclass(frozen=True)
class Claim:
    """A request's hold on its key (from begin())."""

    record_id: int
    key: str
    holder: str
    # What an earlier request with this key did before its process died (it committed a retry
    # but never answered): replay it instead of retrying again.
    outcome: dict | None = None
    # (status, body) of the finished request with this key, for the API to replay; `done` is
    # also true for a finished domain request, which stores no response.
    response: tuple[int, Any] | None = None
    done: bool = False


def fingerprint(scope: str, data: Any) -> str:
    """sha256 of the request: `scope` (method and path, or the domain call) and its body as
    canonical JSON (so the same object, however spaced or compressed, is the same request)."""
    body = json.dumps(data or {}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{scope}\n{body}".encode()).hexdigest()


def check_key(key: str) -> None:
    if not 0 < len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY} printable characters", field="Idempotency-Key"
        )


def begin(actor: Actor, key: str, scope: str, request_fingerprint: str) -> Claim:
    """Hold `key` for this request, or say why not (IdempotencyKeyReused, IdempotencyKeyInFlight),
    or hand back the finished request's result (Claim.done)."""
    check_key(key)
    holder = uuid.uuid4().hex
    mine = {"tenant": actor.tenant, "actor": actor.label, "key": key}
    for _ in range(3):  # a record can vanish between our INSERT and our read (released)
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    **mine,
                    scope=scope[:300],
                    fingerprint=request_fingerprint,
                    holder=holder,
                    locked_until=now + timedelta(seconds=IN_FLIGHT_SECONDS),
                    created_at=now,
                )
            return Claim(record.pk, key, holder)
        except IntegrityError:
            record = IdempotencyRecord.objects.filter(**mine).first()
        if record is None:
            continue
        if record.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused(key)
        if record.state == IdempotencyRecord.State.DONE:
            response = (record.status_code, record.body) if record.status_code else None
            return Claim(record.pk, key, "", record.outcome, response, done=True)
        # In flight: ours only if its request is gone (one conditional UPDATE decides).
        if IdempotencyRecord.objects.filter(
            pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT, locked_until__lt=now
        ).update(holder=holder, locked_until=now + timedelta(seconds=IN_FLIGHT_SECONDS)):
            outcome = IdempotencyRecord.objects.values_list("outcome", flat=True).get(pk=record.pk)
            return Claim(record.pk, key, holder, outcome)
        raise IdempotencyKeyInFlight(key)
    raise IdempotencyKeyInFlight(key)


def record_outcome(claim: Claim, **outcome: Any) -> None:
    """Inside the retry's transaction: what this request did (kind, target_id, new_id...). Raises
    (rolling the retry back) if the key is no longer this request's."""
    if not IdempotencyRecord.objects.filter(
        pk=claim.record_id, holder=claim.holder, outcome__isnull=True
    ).update(outcome={k: str(v) for k, v in outcome.items()}):
        raise IdempotencyKeyInFlight(claim.key)


def complete(claim: Claim, status_code: int | None = None, body: Any = None) -> None:
    """The request is done: later requests with the key get `status_code` and `body` again."""
    IdempotencyRecord.objects.filter(pk=claim.record_id, holder=claim.holder).update(
        state=IdempotencyRecord.State.DONE, status_code=status_code, body=body, locked_until=None
    )


def release(claim: Claim) -> None:
    """The request failed. If it changed nothing, forget it (the key may be used again); if it
    committed a retry and failed after, let the next request with the key take over at once and
    replay that retry."""
    mine = IdempotencyRecord.objects.filter(pk=claim.record_id, holder=claim.holder)
    if not mine.filter(outcome__isnull=True).delete()[0]:
        mine.update(locked_until=timezone.now())
