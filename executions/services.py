"""The write entry points. The REST API, the console, the admin and the commands all retry through
these functions, so every retry gets the same rule (executions/kinds/<kind>.py), the same race
safety, the same audit row and the same after-commit side effects.

Entry points use `transaction.atomic(durable=True)`: nobody can nest them in a larger transaction by
accident, so "after commit" really means after the retry is durable.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Model, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from . import engine, filters, kinds, sets
from . import idempotency as idempotency_store
from .errors import InvalidInput, NotFound, NotRetryable, PermissionDenied
from .filters import KINDS, FailureFilter
from .idempotency import Claim
from .models import (
    ApiKey,
    AuditEvent,
    BulkRetry,
    Function,
    FunctionExecution,
    Kind,
    WorkflowSession,
)
from .tenancy import Actor, get_for_tenant

log = logging.getLogger("redrive.services")

SESSION_LIFETIME = timedelta(hours=1)
BULK_BATCH = 5000


@dataclass
class RetryOutcome:
    kind: str
    target_id: str
    new_id: str
    obj: Model
    replayed: bool = False


# --- single retries --------------------------------------------------------------------------


def retry_function(
    actor: Actor,
    *,
    project_id: str,
    function_id: str,
    index: int | None = None,
    execution_id: str | None = None,
    idempotency: Claim | None = None,
    current_definition: bool = False,
) -> RetryOutcome:
    """Seed 000: pick by 0-based position in the log (newest first) or by stable id, re-invoke the
    handler synchronously with the original payload, append the new execution."""
    actor.require(kinds.rule(Kind.FUNCTION).PERMISSION)
    function = get_for_tenant(
        Function,
        actor.tenant,
        "Function not found",
        pk=function_id,
        tenant__functions_project_id=project_id,
    )
    log_order = FunctionExecution.objects.filter(function=function).order_by("-executed_at", "-id")
    if execution_id is not None:
        execution = get_for_tenant(log_order, actor.tenant, "Execution not found", pk=execution_id)
    else:
        if index is None or index < 0:
            raise InvalidInput(
                "executionIndex must be a non-negative integer", field="executionIndex"
            )
        found = log_order.only("pk", "retried_by").filter(tenant=actor.tenant)
        execution = found[index : index + 1].first()
        if execution is None:
            raise NotFound("Execution not found")
    return _retry(
        actor,
        Kind.FUNCTION,
        execution.pk,
        idempotency,
        {
            "queued": False,
            "current_definition": current_definition,
            "seen_retry": execution.retried_by_id,
        },
    )


def retry_automation(
    actor: Actor, execution_id: str, *, idempotency: Claim | None = None
) -> RetryOutcome:
    """Seed 001: reset the same failed execution to pending and queue it."""
    return retry_one(actor, Kind.AUTOMATION, execution_id, idempotency=idempotency)


def retry_job(
    actor: Actor,
    job_id: str,
    *,
    target_hostname: str | None = None,
    idempotency: Claim | None = None,
) -> RetryOutcome:
    """Seed 002: clone a finished job (needs the original operation's permission too)."""
    return retry_one(
        actor, Kind.JOB, job_id, idempotency=idempotency, target_hostname=target_hostname
    )


def retry_workflow(
    actor: Actor,
    *,
    project: str,
    execution_id: str,
    nonce: str | None,
    idempotency: Claim | None = None,
) -> RetryOutcome:
    """Seed 003: resume the same execution from its failure points, authorised by a nonce."""
    actor.require(kinds.rule(Kind.WORKFLOW).PERMISSION)
    if project != actor.tenant.workflows_project:
        raise NotFound("Workflow execution not found")
    return retry_one(actor, Kind.WORKFLOW, execution_id, idempotency=idempotency, nonce=nonce)


def retry_run(actor: Actor, run_id: str, *, idempotency: Claim | None = None) -> RetryOutcome:
    """Seed 004: a new run resuming from the failure point; once per run."""
    return retry_one(actor, Kind.RUN, run_id, idempotency=idempotency)


def retry_one(
    actor: Actor,
    kind: str,
    object_id: str,
    *,
    idempotency_key: str = "",
    idempotency: Claim | None = None,
    **options: Any,
) -> RetryOutcome:
    """Retry one item of any kind (the console, the admin and the CLI call this directly).

    `idempotency_key`: the caller's key for this retry (the console sends one per rendered Retry
    button), kept in the idempotency store: the same retry with it again answers the first
    outcome (`replayed`). The API holds its keys itself and hands its hold over (`idempotency`)."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if idempotency_key and idempotency is None:
        # The nonce authorises the retry; it does not make it another one.
        request = {k: v for k, v in options.items() if k != "nonce"}
        return _keyed(
            actor,
            idempotency_key,
            f"retry {kind} {object_id}",
            request,
            lambda claim: retry_one(actor, kind, object_id, idempotency=claim, **options),
        )
    rule = kinds.rule(kind)
    actor.require(rule.PERMISSION)
    if kind == Kind.AUTOMATION and idempotency is None:
        # No pre-read: the retry's own locking statement finds the item (or, when it retries
        # nothing, the error path tells missing from not retryable), and answers with the row.
        pks = _valid_pks(kind, [str(object_id)])
        if not pks:
            raise NotFound(_not_found(kind))
        return _retry(actor, kind, pks[0], None, {**options, "rows": True})
    obj = get_for_tenant(KINDS[kind].model, actor.tenant, _not_found(kind), pk=object_id)
    if kind == Kind.JOB:
        actor.require(rule.operation_permission(obj.operation_type))
    if kind == Kind.FUNCTION:
        options.setdefault("queued", False)
    if kind in (Kind.FUNCTION, Kind.JOB):
        # Retry the item as this request found it: if another retries it meanwhile, that wins.
        options["seen_retry"] = obj.retried_by_id
    if kind == Kind.AUTOMATION:
        options["rows"] = True
    return _retry(actor, kind, obj.pk, idempotency, options)


def _keyed[T](actor: Actor, key: str, scope: str, request: Any, perform: Callable[[Claim], T]) -> T:
    """`perform(claim)` once per Idempotency-Key (executions/idempotency.py), for the domain's
    own keyed calls: run it holding the key, or, the key's request being done, let it replay."""
    fingerprint = idempotency_store.fingerprint(scope, request)
    claim = idempotency_store.begin(actor, key, scope, fingerprint)
    if claim.done:
        return perform(claim)  # answers the outcome it recorded, and changes nothing
    try:
        result = perform(claim)
    except BaseException:
        idempotency_store.release(claim)
        raise
    idempotency_store.complete(claim)
    return result


def _not_found(kind: str) -> str:
    return {
        Kind.FUNCTION: "Execution not found",
        Kind.AUTOMATION: "Automation execution not found",
        Kind.JOB: "Job not found",
        Kind.WORKFLOW: "Workflow execution not found",
        Kind.RUN: "Run not found",
    }[kind]


def _retry(
    actor: Actor, kind: str, pk: Any, claim: Claim | None, options: dict[str, Any]
) -> RetryOutcome:
    if claim is not None and claim.outcome is not None:
        return _replayed(kind, str(pk), claim.outcome)
    rule = kinds.rule(kind)
    nonce = options.pop("nonce", None) if kind == Kind.WORKFLOW else None
    try:
        # With a key, the outcome is written in the retry's transaction (so not the one-statement
        # path, which has none).
        with transaction.atomic(durable=True) if claim is not None else _durable(rule, 1):
            if kind == Kind.WORKFLOW:
                options.update(_consume_nonce(actor, nonce))
            retried = _retry_audited(
                actor,
                kind,
                [pk],
                options,
                idempotency_key=claim.key if claim is not None else "",
                details={k: v for k, v in options.items() if k in ("target_hostname", "run_as")},
            )
            if retried and claim is not None:
                idempotency_store.record_outcome(
                    claim, kind=kind, target_id=pk, new_id=retried[0].new_id
                )
    except IntegrityError:
        # A racing retry of the same item won (the database's unique indexes said so).
        retried = []
    if not retried:
        obj = get_for_tenant(KINDS[kind].model, actor.tenant, _not_found(kind), pk=pk)
        reason = rule.reason(obj)
        if reason is None and options.get("seen_retry", _retry_id(obj)) != _retry_id(obj):
            reason = rule.retried_meanwhile(obj)
        raise NotRetryable(
            reason or "This item cannot be retried right now",
            status=obj.status,
            retried_by=_retried_by(rule, obj),
        )
    new_id = retried[0].new_id
    if kind == Kind.FUNCTION and not options.get("queued", True):
        # Seed 000 answers with the retry's result: run it here, after the commit, outside any
        # transaction (a handler may take up to the function's timeout).
        engine.execute_function(new_id)
    obj = getattr(retried[0], "obj", None)  # the row as the retry left it, when it says
    return RetryOutcome(
        kind=kind,
        target_id=str(pk),
        new_id=str(new_id),
        obj=obj if obj is not None else KINDS[kind].model.objects.get(pk=new_id),
    )


def _retry_id(obj: Model) -> Any:
    """The latest retry of an item of a kind that clones (functions, jobs), else None."""
    return getattr(obj, "retried_by_id", None)


def _retried_by(rule, obj: Model) -> str:
    """What retried `obj`, when that is why it cannot be retried now."""
    if hasattr(rule, "retried_by"):  # runs, retried once
        return rule.retried_by(obj)
    if _retry_id(obj) is not None and obj.status in rule.RETRYABLE:
        return str(_retry_id(obj))
    return ""


def _replayed(kind: str, target_id: str, outcome: dict) -> RetryOutcome:
    """The retry an earlier request with the same Idempotency-Key made."""
    obj = KINDS[kind].model.objects.get(pk=outcome["new_id"])
    return RetryOutcome(
        kind=kind, target_id=target_id, new_id=outcome["new_id"], obj=obj, replayed=True
    )


def _durable(rule, n: int):
    """The transaction of one retry call: `atomic(durable=True)`, unless the rule does the
    whole retry of `n` items in one statement (automations on PostgreSQL), which is atomic and
    durable on its own: then no BEGIN and COMMIT round trips (still refused inside a larger
    transaction, as durable=True would)."""
    one_statement = getattr(rule, "one_statement", None)
    if (
        one_statement is not None
        and one_statement(n)
        and not transaction.get_connection().in_atomic_block
    ):
        return nullcontext()
    return transaction.atomic(durable=True)


def _retry_audited(
    actor: Actor,
    kind: str,
    ids: list,
    options: dict[str, Any],
    *,
    idempotency_key: str = "",
    bulk: BulkRetry | None = None,
    details: dict | None = None,
) -> list[kinds.Retried]:
    """The kind's retry of `ids` and one audit row per retried item, inside the caller's
    transaction. A rule with WRITES_AUDIT writes the audit rows itself (in its own statement)."""
    rule = kinds.rule(kind)
    constants = _audit_constants(
        actor, kind, idempotency_key=idempotency_key, bulk=bulk, details=details
    )
    if getattr(rule, "WRITES_AUDIT", False):
        return rule.retry(actor, ids, audit=constants, **options)
    retried = rule.retry(actor, ids, **options)
    kinds.write_audit(constants, retried)
    return retried


def _audit_constants(
    actor: Actor,
    kind: str,
    *,
    idempotency_key: str = "",
    bulk: BulkRetry | None = None,
    details: dict | None = None,
) -> dict[str, Any]:
    """The AuditEvent columns every item of one retry call shares."""
    return {
        "tenant_id": actor.tenant.pk,
        "user_id": getattr(actor.user, "pk", None),
        "api_key_id": getattr(actor.api_key, "pk", None),
        "actor": actor.label,
        "source": actor.source,
        "action": "retry",
        "kind": kind,
        "request_id": actor.request_id,
        "idempotency_key": idempotency_key,
        "ip": actor.ip,
        "bulk_id": getattr(bulk, "pk", None),
        "details": details or {},
        "created_at": timezone.now(),
    }


# --- seed 003 sessions -------------------------------------------------------------------------


def create_session(actor: Actor, session_type: str = "TOKEN_EXCHANGE") -> WorkflowSession:
    """A single-use nonce, valid one hour, that authorises one workflow retry as `actor`."""
    user = actor.user if actor.api_key is None else None
    return WorkflowSession.objects.create(
        tenant=actor.tenant,
        type=session_type,
        user=user,
        api_key=actor.api_key,
        nonce=secrets.token_urlsafe(24),
        expires_at=timezone.now() + SESSION_LIFETIME,
    )


def _consume_nonce(actor: Actor, nonce: str | None) -> dict[str, Any]:
    if nonce is None and actor.source in ("console", "admin", "cli"):
        nonce = create_session(actor).nonce  # the operator's own session, made on their behalf
    if not isinstance(nonce, str) or not nonce:
        raise InvalidInput("authentication.nonce is required", field="authentication.nonce")
    session = (
        WorkflowSession.objects.select_for_update(of=("self",))
        .filter(
            nonce=nonce, tenant=actor.tenant, used_at__isnull=True, expires_at__gt=timezone.now()
        )
        .first()
    )
    if session is None:
        raise InvalidInput(
            "authentication.nonce is not a valid, unused session nonce",
            field="authentication.nonce",
        )
    WorkflowSession.objects.filter(pk=session.pk).update(used_at=timezone.now())
    run_as = (
        f"user:{session.user.get_username()}"
        if session.user is not None
        else f"key:{session.api_key.prefix}"
        if session.api_key is not None
        else actor.label
    )
    return {"run_as": run_as, "nonce_session": session.pk}


# --- API keys -----------------------------------------------------------------------------------


def create_api_key(
    tenant, *, name: str, permissions: list[str], user=None, expiry_date=None
) -> tuple[ApiKey, str]:
    """A new key (stored hashed) and its secret, which is shown once and never again."""
    return ApiKey.objects.create_key(
        name=name,
        tenant=tenant,
        user=user,
        permissions=sorted(permissions),
        expiry_date=expiry_date,
    )


def revoke_api_key(actor: Actor, key_id: str) -> ApiKey:
    actor.require("apikeys:manage")
    key = get_for_tenant(ApiKey, actor.tenant, "API key not found", pk=key_id)
    ApiKey.objects.filter(pk=key.pk).update(revoked=True)
    key.revoked = True
    return key


# --- what the console shows ---------------------------------------------------------------------


def why_not_retryable(actor: Actor, kind: str, obj: Model) -> str | None:
    rule = kinds.rule(kind)
    if not actor.can(rule.PERMISSION):
        return (
            "Read-only role"
            if not any(actor.can(p) for p in _retry_permissions())
            else (f"Needs permission {rule.PERMISSION}")
        )
    if kind == Kind.JOB and not actor.can(rule.operation_permission(obj.operation_type)):
        return f"Needs permission {rule.operation_permission(obj.operation_type)}"
    return rule.reason(obj)


def _retry_permissions() -> list[str]:
    return [kinds.rule(k).PERMISSION for k in KINDS]


# --- bulk ---------------------------------------------------------------------------------------


def _querysets(actor: Actor, selection: dict) -> dict[str, Any]:
    if "ids" in selection:
        ids = selection["ids"]
        if not isinstance(ids, dict):
            raise InvalidInput("ids must map a kind to a list of ids", field="ids")
        out = {}
        for kind, values in ids.items():
            if kind not in KINDS:
                raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="ids")
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InvalidInput(f"ids.{kind} must be a list of strings", field=f"ids.{kind}")
            out[kind] = KINDS[kind].model.objects.filter(
                tenant=actor.tenant, pk__in=_valid_pks(kind, values)
            )
        return out
    flt = selection.get("filter")
    if isinstance(flt, dict):
        flt = filters.parse(flt)
    if not isinstance(flt, FailureFilter):
        raise InvalidInput("give ids or a filter", field="filter")
    return flt.querysets(actor.tenant)


def _valid_pks(kind: str, values: list[str]) -> list[str]:
    """Drop ids that cannot be primary keys of this kind (they simply match nothing)."""
    field = KINDS[kind].model._meta.pk
    out = []
    for value in values:
        try:
            out.append(field.to_python(value))
        except Exception:  # noqa: S112 - a malformed id matches nothing, like a missing one
            continue
    return out


def preview_retry(actor: Actor, selection: dict) -> dict:
    result: dict[str, Any] = {"total": 0, "will_retry": 0, "not_retryable": 0, "kinds": {}}
    for kind, qs in _querysets(actor, selection).items():
        rule = kinds.rule(kind)
        if not actor.can(rule.PERMISSION):
            n = qs.count()
            entry = {
                "will_retry": 0,
                "not_retryable": {f"needs permission {rule.PERMISSION}": n} if n else {},
            }
        else:
            entry = {
                "will_retry": rule.retryable(qs, actor).count(),
                "not_retryable": rule.not_retryable(qs, actor),
            }
        skipped = sum(entry["not_retryable"].values())
        result["kinds"][kind] = entry
        result["will_retry"] += entry["will_retry"]
        result["not_retryable"] += skipped
        result["total"] += entry["will_retry"] + skipped
    return result


def _serialise(selection: dict) -> dict:
    if "filter" in selection:
        flt = selection["filter"]
        return {"filter": flt.as_dict() if isinstance(flt, FailureFilter) else flt}
    return {"ids": selection.get("ids", {})}


def plan_bulk_retry(actor: Actor, selection: dict) -> BulkRetry:
    """A pending BulkRetry whose plan (total, skipped) is the selection's preview; retry_many runs
    it (start_bulk_retry: in a worker)."""
    preview = preview_retry(actor, selection)
    return BulkRetry.objects.create(
        tenant=actor.tenant,
        created_by=actor.user,
        api_key=actor.api_key,
        actor=actor.label,
        source=actor.source,
        selection=_serialise(selection),
        total=preview["will_retry"],
        skipped=preview["not_retryable"],
        summary={"preview": preview},
    )


def start_bulk_retry(
    actor: Actor,
    selection: dict,
    *,
    idempotency_key: str = "",
    idempotency: Claim | None = None,
) -> BulkRetry:
    """Record a bulk retry (with its preview as the plan) and run it in a worker after commit.
    Keys as for retry_one: one bulk retry per Idempotency-Key."""
    if idempotency_key and idempotency is None:
        return _keyed(
            actor,
            idempotency_key,
            "bulk retry",
            _serialise(selection),
            lambda claim: start_bulk_retry(actor, selection, idempotency=claim),
        )
    if idempotency is not None and idempotency.outcome is not None:
        return get_for_tenant(
            BulkRetry, actor.tenant, "Bulk retry not found", pk=idempotency.outcome["new_id"]
        )
    with transaction.atomic(durable=True):
        bulk = plan_bulk_retry(actor, selection)
        if idempotency is not None:
            idempotency_store.record_outcome(idempotency, kind="bulk", new_id=bulk.pk)
        from .tasks import run_bulk_retry

        engine.enqueue_on_commit(run_bulk_retry, str(bulk.pk))
    return bulk


def actor_for_bulk(bulk: BulkRetry) -> Actor:
    if bulk.api_key is not None:
        return Actor.for_api_key(bulk.api_key, source=bulk.source)
    if bulk.created_by is not None:
        return Actor.for_user(bulk.created_by, bulk.tenant, source=bulk.source)
    raise NotFound("The user who started this bulk retry no longer exists")


def retry_many(
    actor: Actor,
    selection: dict,
    bulk: BulkRetry | None = None,
    progress=None,
    resume: bool = False,
) -> BulkRetry:
    """Retry everything `selection` matches, in set-based batches, recording progress in `bulk`.
    Stops between batches when cancelled (batches already under way finish); a batch is one
    transaction, so nothing is half-done. On PostgreSQL the batches run on up to
    REDRIVE_BULK_CONNECTIONS connections at once (their keys never overlap).

    `resume`: a bulk found "running" was cut off (its worker died and its task was given back):
    go on with what it has not retried yet; the audit rows of its committed batches say what it
    has (an item retried then, and failed again since, is not retried a second time)."""
    if bulk is None:
        bulk = plan_bulk_retry(actor, selection)
    done = failed = 0
    per_kind: dict[str, dict[str, int]] = {}
    already: dict[str, set[str]] = {}
    if not BulkRetry.objects.filter(pk=bulk.pk, status="pending").update(
        status="running", started_at=timezone.now()
    ):
        if not (resume and BulkRetry.objects.filter(pk=bulk.pk, status="running").exists()):
            return BulkRetry.objects.get(pk=bulk.pk)
        for kind, target_id in AuditEvent.objects.filter(bulk=bulk).values_list(
            "kind", "target_id"
        ):
            already.setdefault(kind, set()).add(target_id)
        per_kind = {k: {"retried": len(ids), "failed": 0} for k, ids in already.items()}
        done = sum(map(len, already.values()))
        log.warning("bulk retry %s resumed after %s items", bulk.pk, done)
    cancelled = False

    def cancel_requested() -> bool:
        nonlocal cancelled
        if not cancelled:
            cancelled = BulkRetry.objects.filter(pk=bulk.pk, cancel_requested=True).exists()
        return cancelled

    for kind, qs in _querysets(actor, selection).items():
        rule = kinds.rule(kind)
        if not actor.can(rule.PERMISSION) or cancelled:
            continue
        counts = per_kind.setdefault(kind, {"retried": 0, "failed": 0})
        # The candidates are read once, by one query (each batch re-checks its rows under lock):
        # paging with `pk > last ... ORDER BY pk LIMIT n` costs a scan of everything left per page
        # whenever the planner picks a status index and sorts. On PostgreSQL the rows stay in the
        # server (a cursor, WITH HOLD outside a transaction) and come over a batch at a time.
        # In key order: a batch's new index entries (the key, the history's and the audit's
        # target id) then land on neighbouring index pages instead of thousands of random ones.
        # As text: 100,000 keys made into uuid.UUID objects and back cost ~0.2 s of CPU.
        candidates = (
            rule.retryable(qs, actor)
            .order_by("pk")
            .values_list(Cast("pk", output_field=TextField()), flat=True)
        )
        pks = (
            candidates.iterator(chunk_size=BULK_BATCH)
            if sets.is_postgresql()
            else iter(list(candidates))
        )
        if kind in already:  # resuming: compared as values (SQLite's uuid text has no dashes)
            to_python = KINDS[kind].model._meta.pk.to_python
            done_here = {str(to_python(pk)) for pk in already[kind]}
            pks = (pk for pk in pks if str(to_python(pk)) not in done_here)
        batches = iter(partial(_next_batch, pks), [])

        def retry_batch(batch: list, kind: str = kind) -> tuple[int, int]:
            try:
                with transaction.atomic(durable=True):
                    return len(_retry_audited(actor, kind, batch, {}, bulk=bulk)), 0
            except Exception:  # one bad batch must not stop the others; it is counted and logged
                log.exception("bulk retry %s: a batch of %s %s failed", bulk.pk, len(batch), kind)
                return 0, len(batch)

        for retried, not_retried in sets.each_batch(
            retry_batch, batches, _bulk_connections(), stop=cancel_requested
        ):
            counts["retried"] += retried
            counts["failed"] += not_retried
            done += retried
            failed += not_retried
            BulkRetry.objects.filter(pk=bulk.pk).update(done=done, failed=failed)
            if progress is not None:
                progress(done, failed)
    summary = dict(bulk.summary or {})
    summary["kinds"] = per_kind
    BulkRetry.objects.filter(pk=bulk.pk).update(
        status="cancelled" if cancelled else "finished",
        finished_at=timezone.now(),
        done=done,
        failed=failed,
        summary=summary,
    )
    return BulkRetry.objects.get(pk=bulk.pk)


def _next_batch(pks) -> list:
    return list(islice(pks, BULK_BATCH))


def _bulk_connections() -> int:
    """How many connections a bulk retry's batches run on: one inside a caller's transaction
    (other connections would not see its rows) and on SQLite (one writer at a time)."""
    if not sets.is_postgresql() or transaction.get_connection().in_atomic_block:
        return 1
    return settings.REDRIVE_BULK_CONNECTIONS


def cancel_bulk_retry(actor: Actor, bulk_id: Any) -> BulkRetry:
    bulk = get_for_tenant(BulkRetry, actor.tenant, "Bulk retry not found", pk=bulk_id)
    if bulk.actor != actor.label and not actor.can("apikeys:manage"):
        raise PermissionDenied("bulk:cancel")
    BulkRetry.objects.filter(pk=bulk.pk, status__in=["pending", "running"]).update(
        cancel_requested=True
    )
    # Not started yet: it will never start.
    BulkRetry.objects.filter(pk=bulk.pk, status="pending").update(
        status="cancelled", finished_at=timezone.now()
    )
    return BulkRetry.objects.get(pk=bulk.pk)


def run_bulk_retry(bulk_id: str) -> None:
    """The worker's side of start_bulk_retry. Its task runs once, unless its worker died and the
    task was given back (executions/heartbeats.py; with RQ, the job's retries): then the bulk is
    "running" and resumes."""
    bulk = BulkRetry.objects.select_related("tenant", "created_by", "api_key").get(pk=bulk_id)
    retry_many(actor_for_bulk(bulk), _deserialise(bulk.selection), bulk, resume=True)


def _deserialise(selection: dict) -> dict:
    if "filter" in selection:
        return {"filter": filters.parse(selection["filter"])}
    return selection
