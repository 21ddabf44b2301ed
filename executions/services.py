"""The write entry points. The REST API, the console, the admin and the commands all retry through
these functions, so every retry gets the same rule (executions/kinds/<kind>.py), the same race
safety, the same audit row and the same after-commit side effects.

Entry points use `transaction.atomic(durable=True)`: nobody can nest them in a larger transaction by
accident, so "after commit" really means after the retry is durable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Model, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from . import filters, kinds, retry_input, sets
from . import idempotency as idempotency_store
from .errors import InvalidInput, NotFound, NotRetryable, PermissionDenied
from .filters import FailureFilter
from .idempotency import Claim
from .kinds import functions, workflows
from .kinds.automations import definition
from .kinds.base import KindSpec
from .kinds.jobs import start as jobs_start
from .kinds.workflows.sessions import create_session  # noqa: F401 - the API's seed 003 sessions
from .models import (
    ApiKey,
    Attempt,
    AuditEvent,
    AutomationExecution,
    AutomationRule,
    BulkRetry,
    BulkRetryPlan,
    Function,
    FunctionExecution,
    Job,
    Kind,
)
from .queueing import enqueue_on_commit, worker_task
from .tenancy import Actor, get_for_tenant
from .webhooks import finals

log = logging.getLogger("redrive.services")

# Bulk retry batches: the largest, the first of each kind, and how long one should take (a cancel
# lands when the batches under way end; see _BatchSize).
BULK_BATCH = 5000
FIRST_BATCH = 100
# The smallest batch the last ones of a bulk on several connections shrink to (_batches).
TAIL_BATCH = 500
BATCH_SECONDS = 0.5
SQLITE_PAUSE = 0.1
# The items a bulk retry could not retry that its summary names, with the reason.
MAX_REPORTED_FAILURES = 100
CONFLICT = "Conflicts with a concurrent retry of the same item"
BATCH_ERROR = "Its batch failed with an unexpected error (logged by the worker)"
NO_LONGER_RETRYABLE = "It was no longer retryable when its batch ran"
CANCEL_REQUESTED = "Cancel requested: the bulk retry stops after its current batch"
CANCELLED = "Cancelled: the bulk retry will not retry anything more"
TOO_LATE_FINISHED = "Cancel came too late: the bulk retry had already finished"
TOO_LATE_LAST_BATCH = "Cancel came too late: the bulk retry had already started its last batch"


@dataclass
class RetryOutcome:
    kind: str
    target_id: str
    new_id: str
    obj: Model
    replayed: bool = False


# --- single retries --------------------------------------------------------------------------


def function_for(actor: Actor, project_id: str, function_id: str) -> Function:
    """The actor's tenant's function `function_id` in seed 000's project `project_id`."""
    return get_for_tenant(
        Function,
        actor.tenant,
        "Function not found",
        pk=function_id,
        tenant__functions_project_id=project_id,
    )


def retry_function(
    actor: Actor,
    *,
    project_id: str,
    function_id: str,
    index: int | None = None,
    execution_id: str | None = None,
    idempotency: Claim | None = None,
) -> RetryOutcome:
    """Seed 000: pick by 0-based position in the log (newest first) or by stable id, append a new
    execution with the original payload and the function's current code, queued for a worker,
    and wait for its result."""
    actor.require(functions.KIND.permission)
    if execution_id is not None:
        # The function and the execution in one look (a statement less on a synchronous
        # retry's path); on a miss, the function's own look says which of the two is missing.
        found = FunctionExecution.objects.only("pk", "retried_by").filter(
            function_id=function_id, tenant__functions_project_id=project_id
        )
        try:
            execution = get_for_tenant(found, actor.tenant, pk=execution_id)
        except NotFound:
            function_for(actor, project_id, function_id)
            raise NotFound("Execution not found") from None
    else:
        function = function_for(actor, project_id, function_id)
        log_order = FunctionExecution.objects.filter(function=function).order_by(
            "-executed_at", "-id"
        )
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
        functions.KIND.one_options(execution),
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
    actor.require(workflows.KIND.permission)
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
    outcome (`replayed`). The API holds its keys itself and hands its hold over (`idempotency`).
    A function's retry waits for a worker's result; `wait=False` only queues it.
    `reason` (kept in the audit) and `input` (an edited input: executions/retry_input.py) are
    the operator's options of any kind."""
    spec = _kind(kind, "kind")
    if "reason" in options:
        options["reason"] = retry_input.clean_reason(options["reason"])
    if idempotency_key and idempotency is None:
        # What authorises the retry (a nonce) does not make it another one.
        request = {k: v for k, v in options.items() if k not in spec.secret_options}
        return _keyed(
            actor,
            idempotency_key,
            f"retry {kind} {object_id}",
            request,
            lambda claim: retry_one(actor, kind, object_id, idempotency=claim, **options),
        )
    actor.require(spec.permission)
    if spec.finds_itself and idempotency is None and "input" not in options:
        pks = _valid_pks(spec, [str(object_id)])
        if not pks:
            raise NotFound(spec.not_found)
        return _retry(actor, kind, pks[0], None, {**options, **spec.one_options(None)})
    obj = get_for_tenant(spec.model, actor.tenant, spec.not_found, pk=object_id)
    needs = spec.needs(obj)
    if needs:
        actor.require(needs)
    options = {**spec.one_options(obj), **options}
    if "input" in options:
        options["input"], options["input_change"] = retry_input.prepare(kind, obj, options["input"])
    return _retry(actor, kind, obj.pk, idempotency, options)


def retry_failure(
    actor: Actor,
    kind: str,
    object_id: str,
    *,
    idempotency: Claim | None = None,
    **options: Any,
) -> RetryOutcome:
    """Redrive's own `POST /api/failures/{kind}/{id}/retry` (options: reason, input): it queues
    the retry and answers at once (a function's too). A workflow retry without a nonce runs as
    the caller, on a session made for it, as the console's does."""
    if kind == workflows.KIND.name and options.get("nonce") is None:
        actor.require(workflows.KIND.permission)
        options["nonce"] = create_session(actor).nonce
    return retry_one(actor, kind, object_id, idempotency=idempotency, wait=False, **options)


def _kind(name: Any, field: str) -> KindSpec:
    """The kind called `name`, or the 400 that names `field`."""
    try:
        return kinds.get(name)
    except (KeyError, TypeError):
        raise InvalidInput(f"kind must be one of {', '.join(kinds.names())}", field=field) from None


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


def _retry(
    actor: Actor, kind: str, pk: Any, claim: Claim | None, options: dict[str, Any]
) -> RetryOutcome:
    spec = kinds.get(kind)
    if claim is not None and claim.outcome is not None:
        return _replayed(spec, str(pk), claim.outcome, options)
    try:
        # With a key, the outcome is written in the retry's transaction (so not the one-statement
        # path, which has none); so is an edited input of a kind that retries in place.
        one = claim is None and "input" not in options
        with _durable(spec, 1) if one else transaction.atomic(durable=True):
            spec.authorise(actor, options)
            audit = _audit_constants(
                actor,
                kind,
                idempotency_key=claim.key if claim is not None else "",
                details={
                    **{k: v for k, v in options.items() if k in spec.audit_options},
                    **_operator_details(options),
                },
            )
            retried = _retry_audited(actor, spec, [pk], options, audit)
            if retried and claim is not None:
                idempotency_store.record_outcome(
                    claim, kind=kind, target_id=pk, new_id=retried[0].new_id
                )
    except IntegrityError:
        # A racing retry of the same item won (the database's unique indexes said so).
        retried = []
    if not retried:
        obj = get_for_tenant(spec.model, actor.tenant, spec.not_found, pk=pk)
        reason = spec.rule.reason(obj)
        if reason is None and options.get("seen_retry", _retry_id(obj)) != _retry_id(obj):
            reason = spec.retried_meanwhile(obj)
        raise NotRetryable(
            reason or "This item cannot be retried right now",
            status=obj.status,
            retried_by=_retried_by(spec, obj),
        )
    new_id = retried[0].new_id
    # The row as after_one left it (a function's result), or as the retry left it, when it says.
    obj = spec.after_one(new_id, options) or getattr(retried[0], "obj", None)
    return RetryOutcome(
        kind=kind,
        target_id=str(pk),
        new_id=str(new_id),
        obj=obj if obj is not None else spec.model.objects.get(pk=new_id),
    )


def _operator_details(options: dict[str, Any]) -> dict[str, Any]:
    """The audit's record of the operator's options: their reason, and an edited input's
    change (the input before and the diff)."""
    details: dict[str, Any] = {}
    if options.get("reason"):
        details["reason"] = options["reason"]
    if "input_change" in options:
        details["input"] = options["input_change"]
    return details


def _retry_id(obj: Model) -> Any:
    """The latest retry of an item of a kind that clones (functions, jobs), else None."""
    return getattr(obj, "retried_by_id", None)


def _retried_by(spec: KindSpec, obj: Model) -> str:
    """What retried `obj`, when that is why it cannot be retried now."""
    if spec.retried_by is not None:  # runs, retried once
        return spec.retried_by(obj)
    if _retry_id(obj) is not None and obj.status in spec.retryable_statuses:
        return str(_retry_id(obj))
    return ""


def _replayed(
    spec: KindSpec, target_id: str, outcome: dict, options: dict[str, Any]
) -> RetryOutcome:
    """The retry an earlier request with the same Idempotency-Key made (a function's: once its
    result is in, as that request would have answered)."""
    obj = spec.after_one(outcome["new_id"], options) or spec.model.objects.get(pk=outcome["new_id"])
    return RetryOutcome(
        kind=spec.name, target_id=target_id, new_id=outcome["new_id"], obj=obj, replayed=True
    )


def _durable(spec: KindSpec, n: int):
    """The transaction of one retry call: `atomic(durable=True)`, unless the kind does the
    whole retry of `n` items in one statement (automations on PostgreSQL with RQ), which is
    atomic and durable on its own: then no BEGIN and COMMIT round trips (still refused inside a
    larger transaction, as durable=True would)."""
    if spec.one_statement(n) and not transaction.get_connection().in_atomic_block:
        return nullcontext()
    return transaction.atomic(durable=True)


def _retry_audited(
    actor: Actor, spec: KindSpec, ids: list, options: dict[str, Any], audit: dict[str, Any] | None
) -> list[kinds.Retried]:
    """The kind's retry of `ids` and one audit row per retried item (`audit`: the columns they
    share), inside the caller's transaction. A kind that writes_audit writes the audit rows
    itself (in its own statement). No `audit`: a bulk's items whose history rows name the bulk's
    audit row (options' bulk_audit)."""
    if audit is None:
        return spec.rule.retry(actor, ids, **options)
    if spec.writes_audit:
        return spec.rule.retry(actor, ids, audit=audit, **options)
    retried = spec.rule.retry(actor, ids, **options)
    kinds.write_audit(audit, retried)
    return retried


def _audit_constants(actor: Actor, kind: str, **columns: Any) -> dict[str, Any]:
    """The AuditEvent columns every item of one retry call shares; `columns`: idempotency_key,
    bulk_id and details, when not the defaults."""
    return {
        "tenant_id": actor.tenant.pk,
        "user_id": getattr(actor.user, "pk", None),
        "api_key_id": getattr(actor.api_key, "pk", None),
        "actor": actor.label,
        "source": actor.source,
        "action": "retry",
        "kind": kind,
        "request_id": actor.request_id,
        "idempotency_key": "",
        "ip": actor.ip,
        "bulk_id": None,
        "details": {},
        "created_at": timezone.now(),
        **columns,
    }


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
    spec = kinds.get(kind)
    if not actor.can(spec.permission):
        if not any(actor.can(k.permission) for k in kinds.KINDS):
            return "Read-only role"
        return f"Needs permission {spec.permission}"
    needs = spec.needs(obj)
    if needs and not actor.can(needs):
        return f"Needs permission {needs}"
    return spec.rule.reason(obj)


# --- bulk ---------------------------------------------------------------------------------------


def _querysets(actor: Actor, selection: dict) -> dict[str, Any]:
    if "ids" in selection:
        ids = selection["ids"]
        if not isinstance(ids, dict):
            raise InvalidInput("ids must map a kind to a list of ids", field="ids")
        out = {}
        for kind, values in ids.items():
            spec = _kind(kind, "ids")
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InvalidInput(f"ids.{kind} must be a list of strings", field=f"ids.{kind}")
            pks = _valid_pks(spec, values)
            if len(pks) != len(values):
                # A selection names ids someone copied: a malformed one is a mistake to report,
                # not an item to skip silently.
                index = next(i for i, v in enumerate(values) if not _valid_pks(spec, [v]))
                raise InvalidInput(
                    f"ids.{kind}[{index}] is not a valid {kind} id", field=f"ids.{kind}"
                )
            out[kind] = spec.model.objects.filter(tenant=actor.tenant, pk__in=pks)
        return out
    flt = selection.get("filter")
    if isinstance(flt, dict):
        flt = filters.parse(flt)
    if not isinstance(flt, FailureFilter):
        raise InvalidInput("give ids or a filter", field="filter")
    return flt.querysets(actor.tenant)


def _valid_pks(spec: KindSpec, values: list[str]) -> list[str]:
    """Drop ids that cannot be primary keys of this kind (they simply match nothing)."""
    field = spec.model._meta.pk
    out = []
    for value in values:
        try:
            out.append(field.to_python(value))
        except Exception:  # noqa: S112 - a malformed id matches nothing, like a missing one
            continue
    return out


# The items a preview lists (the counts cover them all).
PREVIEW_ITEMS = 50


def preview_retry(actor: Actor, selection: dict, items: int = PREVIEW_ITEMS) -> dict:
    """What retrying `selection` would do, per kind: how many will be retried, and how many will
    not and why; and the first `items` that will be ({kind, id, name, error}, newest first per
    kind), with how many more (`more`)."""
    result = _preview(actor, selection)
    listed: list[dict] = []
    for kind, qs in _querysets(actor, selection).items():
        spec = kinds.get(kind)
        if len(listed) >= items or not actor.can(spec.permission):
            continue
        retryable = spec.rule.retryable(qs, actor)
        if "__" in spec.name_field:
            retryable = retryable.select_related(spec.name_field.split("__")[0])
        for obj in retryable.order_by(f"-{spec.time_field}", "-pk")[: items - len(listed)]:
            listed.append(
                {
                    "kind": kind,
                    "id": str(obj.pk),
                    "name": spec.shown.name(obj),
                    "error": spec.shown.error(obj),
                }
            )
    result["items"] = listed
    result["more"] = max(0, result["will_retry"] - len(listed))
    return result


def _preview(actor: Actor, selection: dict, keys: dict[str, list[str]] | None = None) -> dict:
    """preview_retry; given `keys`, it also collects there the keys that will be retried (the
    plan of a bulk retry), and the preview counts those: plan and preview agree."""
    result: dict[str, Any] = {"total": 0, "will_retry": 0, "not_retryable": 0, "kinds": {}}
    for kind, qs in _querysets(actor, selection).items():
        spec = kinds.get(kind)
        if not actor.can(spec.permission):
            n = qs.count()
            entry = {
                "will_retry": 0,
                "not_retryable": {f"needs permission {spec.permission}": n} if n else {},
            }
        else:
            retryable = spec.rule.retryable(qs, actor)
            if keys is not None:
                keys[kind] = _keys(retryable)
            entry = {
                "will_retry": len(keys[kind]) if keys is not None else retryable.count(),
                "not_retryable": spec.rule.not_retryable(qs, actor),
            }
        skipped = sum(entry["not_retryable"].values())
        result["kinds"][kind] = entry
        result["will_retry"] += entry["will_retry"]
        result["not_retryable"] += skipped
        result["total"] += entry["will_retry"] + skipped
    return result


def _keys(qs) -> list[str]:
    """The keys of `qs`, in key order, as text. In key order: a batch's new index entries (the
    key, the history's and the audit's target id) then land on neighbouring index pages instead
    of thousands of random ones. As text: not made into uuid.UUID objects and back
    (bench/bulk_retry.py)."""
    return list(qs.order_by("pk").values_list(Cast("pk", output_field=TextField()), flat=True))


def _serialise(selection: dict) -> dict:
    if "filter" in selection:
        flt = selection["filter"]
        return {"filter": flt.as_dict() if isinstance(flt, FailureFilter) else flt}
    return {"ids": selection.get("ids", {})}


def plan_bulk_retry(actor: Actor, selection: dict, options: dict | None = None) -> BulkRetry:
    """A pending BulkRetry and its plan: the keys retryable now (BulkRetryPlan), whose counts are
    the preview it shows (total, skipped). retry_many retries those keys and no others, however
    often it is resumed (start_bulk_retry: in a worker)."""
    keys: dict[str, list[str]] = {}
    preview = _preview(actor, selection, keys)
    with transaction.atomic():
        bulk = BulkRetry.objects.create(
            tenant=actor.tenant,
            created_by=actor.user,
            api_key=actor.api_key,
            actor=actor.label,
            source=actor.source,
            selection=_serialise(selection),
            total=preview["will_retry"],
            skipped=preview["not_retryable"],
            summary={"preview": preview},
            options=options or {},
        )
        _save_plan(bulk, keys)
        _record_bulk(actor, bulk)
    return bulk


def _record_bulk(actor: Actor, bulk: BulkRetry) -> int:
    """The bulk's one audit row (who, when, from where, what it selected and how much of it was
    retryable), written when it is asked for. The history rows of the items it resets name this
    row (Attempt.bulk_audit) instead of an audit row each; kinds that clone keep theirs."""
    return AuditEvent.objects.create(
        **_audit_constants(
            actor,
            "bulk",
            action=AuditEvent.BULK_RETRY,
            bulk_id=bulk.pk,
            details={
                "selection": bulk.selection,
                "total": bulk.total,
                "skipped": bulk.skipped,
                **({"reason": reason} if (reason := (bulk.options or {}).get("reason")) else {}),
            },
        ),
        target_id=str(bulk.pk),
    ).pk


def _bulk_audit(actor: Actor, bulk: BulkRetry) -> int:
    """The id of the bulk's audit row (recorded now for a bulk planned without one)."""
    found = AuditEvent.objects.filter(bulk=bulk, action=AuditEvent.BULK_RETRY)
    return found.values_list("pk", flat=True).first() or _record_bulk(actor, bulk)


def _save_plan(bulk: BulkRetry, keys: dict[str, list[str]]) -> None:
    # A row for every kind the actor may retry, also an empty one: a bulk without any row was
    # planned before plans were recorded (retry_many plans it when it starts).
    BulkRetryPlan.objects.bulk_create(
        BulkRetryPlan(bulk=bulk, kind=kind, keys=values) for kind, values in keys.items()
    )


def _plan_now(actor: Actor, bulk: BulkRetry, selection: dict) -> dict[str, list[str]]:
    """The plan of a bulk that has none (planned by an earlier version, or made by hand): the
    selection as it is now, then fixed like any other plan."""
    keys = {
        kind: _keys(kinds.get(kind).rule.retryable(qs, actor))
        for kind, qs in _querysets(actor, selection).items()
        if actor.can(kinds.get(kind).permission)
    }
    _save_plan(bulk, keys)
    return keys


def start_bulk_retry(
    actor: Actor,
    selection: dict,
    *,
    idempotency_key: str = "",
    idempotency: Claim | None = None,
    options: dict | None = None,
) -> BulkRetry:
    """Record a bulk retry (with its preview as the plan) and run it in a worker after commit.
    Keys as for retry_one: one bulk retry per Idempotency-Key. `options` (checked by
    staged.clean_options): a reason, and staging, which executions/staged.py runs."""
    from . import staged

    if idempotency_key and idempotency is None:
        return _keyed(
            actor,
            idempotency_key,
            "bulk retry",
            {**_serialise(selection), **({"options": options} if options else {})},
            lambda claim: start_bulk_retry(actor, selection, idempotency=claim, options=options),
        )
    if idempotency is not None and idempotency.outcome is not None:
        return get_for_tenant(
            BulkRetry, actor.tenant, "Bulk retry not found", pk=idempotency.outcome["new_id"]
        )
    with transaction.atomic(durable=True):
        bulk = plan_bulk_retry(actor, selection, options)
        if idempotency is not None:
            idempotency_store.record_outcome(idempotency, kind="bulk", new_id=bulk.pk)
        if staged.is_staged(bulk.options):
            staged.start(bulk)
        else:
            enqueue_on_commit(bulk_retry_task, str(bulk.pk))
    return bulk


def actor_for_bulk(bulk: BulkRetry) -> Actor:
    if bulk.api_key is not None:
        return Actor.for_api_key(bulk.api_key, source=bulk.source)
    if bulk.created_by is not None:
        return Actor.for_user(bulk.created_by, bulk.tenant, source=bulk.source)
    raise NotFound("The user who started this bulk retry no longer exists")


class _Batch(NamedTuple):
    kind: str
    keys: list[str]
    last: bool  # the bulk's last batch: once it starts, a cancel has nothing left to stop


class _BatchSize:
    """How many keys the next batch of one kind takes. A cancel lands when the batches under way
    end, so a batch should take about BATCH_SECONDS: the first one of a kind is the kind's
    first_batch if it names one (a kind known to be fast), else FIRST_BATCH (its pace is unknown
    until then), each next one as many as BATCH_SECONDS allow at the pace of the last, up to
    BULK_BATCH (fewer, larger statements are what makes a bulk fast)."""

    def __init__(self, first: int = FIRST_BATCH) -> None:
        self.size = min(first, BULK_BATCH)

    def took(self, n: int, seconds: float) -> None:
        per_item = max(seconds, 1e-3) / max(n, 1)
        self.size = max(1, min(BULK_BATCH, int(BATCH_SECONDS / per_item)))


def _batches(
    todo: dict[str, list[str]], sizes: dict[str, _BatchSize], connections: int = 1
) -> Iterator[_Batch]:
    """The bulk's batches in turn. On several connections a batch takes at most its share of
    what is left (never below TAIL_BATCH), so the last batches shrink and the connections finish
    together: a bulk lasts as long as its slowest connection (bench/bulk_retry.py)."""
    kinds_left = [kind for kind, keys in todo.items() if keys]
    left = sum(len(todo[kind]) for kind in kinds_left)
    for kind in kinds_left:
        keys, start = todo[kind], 0
        while start < len(keys):
            size = sizes[kind].size
            if connections > 1:
                size = min(size, max(TAIL_BATCH, -(-left // connections)))
            end = start + size
            yield _Batch(kind, keys[start:end], end >= len(keys) and kind == kinds_left[-1])
            left -= len(keys[start:end])
            start = end


def retry_many(
    actor: Actor,
    selection: dict,
    bulk: BulkRetry | None = None,
    progress=None,
    resume: bool = False,
) -> BulkRetry:
    """Retry what `bulk` planned (without a bulk, `selection` is planned first), in set-based
    batches, recording progress in `bulk`. A batch is one transaction, so nothing is half-done;
    an item its batch could not retry (retried meanwhile by someone else, say) is counted as
    failed, with the reason in the summary, and the rest of its batch is retried. A cancel stops
    the bulk before its next batch (the batches under way finish). On PostgreSQL the batches run
    on up to REDRIVE_BULK_CONNECTIONS connections at once (their keys never overlap).

    `resume`: a bulk found "running" was cut off (its worker died and its task was given back):
    go on with the planned keys it has not retried yet; the evidence of its committed batches
    (history rows naming its audit row, audit rows of the items it cloned) says which it has (an
    item retried then, and failed again since, is not retried a second time; nor are the clones
    it made, which were never planned)."""
    if bulk is None:
        bulk = plan_bulk_retry(actor, selection)
    done = failed = 0
    per_kind: dict[str, dict[str, int]] = {}
    already: dict[str, set[str]] = {}
    resumed = not BulkRetry.objects.filter(pk=bulk.pk, status="pending").update(
        status="running", started_at=timezone.now()
    )
    # Resuming: the batch its worker had started last may not have committed.
    if resumed and not (
        resume
        and BulkRetry.objects.filter(pk=bulk.pk, status="running").update(last_batch_started=False)
    ):
        return BulkRetry.objects.get(pk=bulk.pk)
    bulk_audit = _bulk_audit(actor, bulk)
    if resumed:
        for kind, target_id in _retried_by_bulk(bulk, bulk_audit):
            already.setdefault(kind, set()).add(target_id)
        per_kind = {k: {"retried": len(ids), "failed": 0} for k, ids in already.items()}
        done = sum(map(len, already.values()))
        log.warning("bulk retry %s resumed after %s items", bulk.pk, done)
    plan = dict(BulkRetryPlan.objects.filter(bulk=bulk).values_list("kind", "keys"))
    if not plan:
        plan = _plan_now(actor, bulk, selection)
    todo: dict[str, list[str]] = {}
    failures: list[dict] = []
    for kind, keys in plan.items():
        counts = per_kind.setdefault(kind, {"retried": 0, "failed": 0})
        if kind in already:  # compared as values (SQLite's uuid text has no dashes)
            to_python = kinds.get(kind).model._meta.pk.to_python
            done_here = {str(to_python(pk)) for pk in already[kind]}
            keys = [pk for pk in keys if str(to_python(pk)) not in done_here]
        permission = kinds.get(kind).permission
        if not actor.can(permission):  # taken away since the bulk was planned
            counts["failed"] += len(keys)
            failed += len(keys)
            reason = f"Needs permission {permission}"
            _report(failures, kind, [(pk, reason) for pk in keys])
            continue
        todo[kind] = keys
    sizes = {kind: _BatchSize(kinds.get(kind).first_batch or FIRST_BATCH) for kind in todo}
    cancelled = False

    def stop(batch: _Batch) -> bool:
        """Asked right before each batch starts, on the connection that runs it. The last batch
        starts with a conditional UPDATE that a cancel's own conditional UPDATE excludes: either
        the cancel came first and nothing more starts, or the cancel is told it came too late.
        (Outside any batch's transaction: a cancel never waits for a batch.)"""
        nonlocal cancelled
        if not cancelled:
            mine = BulkRetry.objects.filter(pk=bulk.pk, cancel_requested=False)
            cancelled = not (mine.update(last_batch_started=True) if batch.last else mine.exists())
        return cancelled

    def retry_batch(batch: _Batch) -> tuple[str, int, list[tuple[str, str]]]:
        started = time.monotonic()
        retried, not_retried = _retry_batch(actor, bulk, batch.kind, batch.keys, bulk_audit)
        sizes[batch.kind].took(len(batch.keys), time.monotonic() - started)
        if not sets.is_postgresql():
            # SQLite has one writer, and a writer that waits polls every 100 ms (after its first
            # few tries): with no pause between batches, a cancel (or any write in the console)
            # waited for many of them. The pause lets it in after the batch under way.
            time.sleep(SQLITE_PAUSE)
        return batch.kind, retried, _with_reasons(actor, batch.kind, not_retried)

    connections = _bulk_connections()
    for kind, retried, not_retried in sets.each_batch(
        retry_batch, _batches(todo, sizes, connections), connections, stop=stop
    ):
        per_kind[kind]["retried"] += retried
        per_kind[kind]["failed"] += len(not_retried)
        done += retried
        failed += len(not_retried)
        _report(failures, kind, not_retried)
        BulkRetry.objects.filter(pk=bulk.pk).update(done=done, failed=failed)
        if progress is not None:
            progress(done, failed)
    summary = dict(bulk.summary or {})
    summary["kinds"] = per_kind
    if failures:
        summary["failures"] = failures
    with transaction.atomic():
        BulkRetry.objects.filter(pk=bulk.pk).update(
            status="cancelled" if cancelled else "finished",
            finished_at=timezone.now(),
            done=done,
            failed=failed,
            summary=summary,
        )
        # Its work is done; a task given back once more finds the bulk finished, not a plan.
        BulkRetryPlan.objects.filter(bulk=bulk).delete()
        finals.bulk_finished(bulk.pk)
    return BulkRetry.objects.get(pk=bulk.pk)


def _retried_by_bulk(bulk: BulkRetry, bulk_audit: int) -> list[tuple[str, str]]:
    """(kind, id) of the items the committed batches of `bulk` retried."""
    history = Attempt.objects.filter(tenant=bulk.tenant_id, bulk_audit=bulk_audit)
    audit = AuditEvent.objects.filter(bulk=bulk, action="retry")
    return [
        *history.values_list("kind", "object_id"),
        *audit.values_list("kind", "target_id"),
    ]


def _retry_batch(
    actor: Actor, bulk: BulkRetry, kind: str, keys: list[str], bulk_audit: int
) -> tuple[int, list]:
    """Retry one batch in one transaction: (how many were retried, [(key, reason or None)] of the
    keys that were not; None: not retryable any more, the reason is looked up after).
    `bulk_audit`: the bulk's audit row (retry_for_bulk)."""
    try:
        with transaction.atomic(durable=True):
            retried = retry_for_bulk(actor, bulk, kind, keys, bulk_audit)
    except IntegrityError:
        # A concurrent retry of one of these items committed while this batch waited for its
        # row lock: the batch re-checked that row, but not the row that records the retry (a
        # clone), so its insert hit whichever constraint allows one retry. Each half again, in
        # a fresh transaction that sees that retry and leaves the item out: one conflict costs
        # one batch more, and no item is lost with its batch. Alone and still conflicting,
        # an item fails with the reason.
        if len(keys) == 1:
            log.warning("bulk retry %s: %s %s conflicts", bulk.pk, kind, keys[0], exc_info=True)
            return 0, [(keys[0], CONFLICT)]
        log.info("bulk retry %s: a batch of %s %s conflicted; in halves", bulk.pk, len(keys), kind)
        half = len(keys) // 2
        first, first_failed = _retry_batch(actor, bulk, kind, keys[:half], bulk_audit)
        second, second_failed = _retry_batch(actor, bulk, kind, keys[half:], bulk_audit)
        return first + second, first_failed + second_failed
    except Exception:  # one bad batch must not stop the others; it is counted and logged
        log.exception("bulk retry %s: a batch of %s %s failed", bulk.pk, len(keys), kind)
        return 0, [(key, BATCH_ERROR) for key in keys]
    if len(retried) == len(keys):
        return len(retried), []
    to_python = kinds.get(kind).model._meta.pk.to_python
    got = {str(to_python(r.target_id)) for r in retried}
    return len(retried), [(key, None) for key in keys if str(to_python(key)) not in got]


def retry_for_bulk(
    actor: Actor, bulk: BulkRetry, kind: str, keys: list[str], bulk_audit: int | None = None
) -> list:
    """The retry of one batch of `bulk`, in the caller's transaction (_retry_batch's; a staged
    bulk's step: executions/staged.py). A kind that retries in place names the bulk's audit row
    (`bulk_audit`, which carries the bulk's reason) in its items' history rows instead of an audit
    row each (bench/bulk_retry.py); a kind that clones writes its audit rows, with the reason."""
    spec = kinds.get(kind)
    if spec.resets_to is not None:
        bulk_audit = bulk_audit or _bulk_audit(actor, bulk)
        return _retry_audited(actor, spec, keys, {"bulk_audit": bulk_audit}, None)
    reason = (bulk.options or {}).get("reason")
    audit = _audit_constants(
        actor, kind, bulk_id=bulk.pk, **({"details": {"reason": reason}} if reason else {})
    )
    return _retry_audited(actor, spec, keys, {}, audit)


def _report(failures: list[dict], kind: str, not_retried: list[tuple[str, str]]) -> None:
    """Add items that were not retried to the summary's list, up to MAX_REPORTED_FAILURES."""
    to_python = kinds.get(kind).model._meta.pk.to_python
    for key, reason in not_retried[: max(0, MAX_REPORTED_FAILURES - len(failures))]:
        failures.append({"kind": kind, "id": str(to_python(key)), "reason": reason})


def _with_reasons(actor: Actor, kind: str, not_retried: list) -> list[tuple[str, str]]:
    """Fill in why items were not retryable any more when their batch ran, from their rows as
    they are now (for the first MAX_REPORTED_FAILURES: the summary shows no more)."""
    unknown = [key for key, reason in not_retried if reason is None][:MAX_REPORTED_FAILURES]
    if not unknown:
        return not_retried
    model = kinds.get(kind).model
    to_python = model._meta.pk.to_python
    rows = {str(o.pk): o for o in model.objects.filter(tenant=actor.tenant, pk__in=unknown)}
    reasons = {}
    for key in unknown:
        obj = rows.get(str(to_python(key)))
        if obj is None:
            reasons[key] = "Not found"
        else:
            reasons[key] = why_not_retryable(actor, kind, obj) or NO_LONGER_RETRYABLE
    return [(key, reason or reasons.get(key, NO_LONGER_RETRYABLE)) for key, reason in not_retried]


def _bulk_connections() -> int:
    """How many connections a bulk retry's batches run on: one inside a caller's transaction
    (other connections would not see its rows) and on SQLite (one writer at a time)."""
    if not sets.is_postgresql() or transaction.get_connection().in_atomic_block:
        return 1
    return settings.REDRIVE_BULK_CONNECTIONS


class BulkCancel(NamedTuple):
    bulk: BulkRetry
    outcome: str  # "requested", "cancelled" or "too_late"
    message: str


def cancel_bulk_retry(actor: Actor, bulk_id: Any) -> BulkCancel:
    """Stop a bulk retry before its next batch. One conditional UPDATE decides, against the one
    that starts the bulk's last batch (retry_many): a cancel that comes after that, or after the
    bulk ended, is answered "too late" and changes nothing. It waits for no batch: the batches'
    transactions hold no lock on the bulk's row."""
    bulk = get_for_tenant(BulkRetry, actor.tenant, "Bulk retry not found", pk=bulk_id)
    if bulk.actor != actor.label and not actor.can("apikeys:manage"):
        raise PermissionDenied("bulk:cancel")
    requested = BulkRetry.objects.filter(
        pk=bulk.pk, status__in=["pending", "running"], last_batch_started=False
    ).update(cancel_requested=True)
    # Not started yet: it will never start.
    BulkRetry.objects.filter(pk=bulk.pk, status="pending").update(
        status="cancelled", finished_at=timezone.now()
    )
    bulk = BulkRetry.objects.get(pk=bulk.pk)
    if bulk.status == "cancelled":
        return BulkCancel(bulk, "cancelled", CANCELLED)
    if requested:
        return BulkCancel(bulk, "requested", CANCEL_REQUESTED)
    late = TOO_LATE_LAST_BATCH if bulk.status == "running" else TOO_LATE_FINISHED
    return BulkCancel(bulk, "too_late", late)


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


@worker_task
def bulk_retry_task(bulk_id: str) -> None:
    run_bulk_retry(bulk_id)


# --- starting work and defining it (issue 19) ---------------------------------------------------
#
# Each create or start writes its audit row (action: start, create, update, delete) in its own
# transaction, and with an Idempotency-Key (the API's `claim`) records what it made there too, so
# a request that died after its commit is answered with that, not done twice.


def _audit_write(actor: Actor, kind: str, action: str, target_id: Any, claim: Claim | None):
    AuditEvent.objects.create(
        **_audit_constants(
            actor, kind, action=action, idempotency_key=claim.key if claim is not None else ""
        ),
        target_id=str(target_id),
        new_target_id=str(target_id),
    )


def audit_start(actor: Actor, kind: str, target_id: Any) -> None:
    """A start whose own service writes no audit row (a function executed, a run started),
    made from the admin: the same `start` row start_job writes."""
    _audit_write(actor, kind, "start", target_id, None)


def start_job(
    actor: Actor, operation: dict, target_hostname: str, *, idempotency: Claim | None = None
) -> Model:
    """Seed 002 `POST /job`: a job for `target_hostname` (or `_any`), queued after commit.
    `operation` and the host are cleaned by kinds.jobs.start (the API does it before)."""
    operation = jobs_start.clean_operation(operation)
    target = jobs_start.clean_target(target_hostname)
    jobs_start.authorise(actor, operation)
    if idempotency is not None and idempotency.outcome is not None:
        return Job.objects.get(pk=idempotency.outcome["new_id"], tenant=actor.tenant)
    with transaction.atomic(durable=True):
        job = jobs_start.start(actor, operation, target)
        _audit_write(actor, Kind.JOB, "start", job.pk, idempotency)
        if idempotency is not None:
            idempotency_store.record_outcome(idempotency, kind=Kind.JOB, new_id=job.pk)
    return job


AUTOMATION_WRITE = "automation:write"
AUTOMATION_EXECUTE = "automation:execute"
RULE_NOT_FOUND = "Automation rule not found"


def create_automation_rule(
    actor: Actor, body: dict, *, idempotency: Claim | None = None, durable: bool = True
):
    """`durable=False`: inside the caller's transaction (manage.py apply's one for a file)."""
    actor.require(AUTOMATION_WRITE)
    clean = definition.clean_rule(body)
    if idempotency is not None and idempotency.outcome is not None:
        return AutomationRule.objects.get(pk=idempotency.outcome["new_id"], tenant=actor.tenant)
    with transaction.atomic(durable=durable):
        rule = definition.create(actor.tenant, clean)
        _audit_write(actor, Kind.AUTOMATION, "create rule", rule.pk, idempotency)
        if idempotency is not None:
            idempotency_store.record_outcome(idempotency, kind="rule", new_id=rule.pk)
    return rule


def _live_rule_locked(actor: Actor, rule_id: str):
    return get_for_tenant(
        definition.live_rules(actor.tenant).select_for_update(),
        actor.tenant,
        RULE_NOT_FOUND,
        pk=rule_id,
    )


def update_automation_rule(actor: Actor, rule_id: str, body: dict, *, durable: bool = True):
    actor.require(AUTOMATION_WRITE)
    clean = definition.clean_rule(body)
    with transaction.atomic(durable=durable):
        rule = _live_rule_locked(actor, rule_id)
        definition.update(rule, clean)
        _audit_write(actor, Kind.AUTOMATION, "update rule", rule.pk, None)
    return rule


def delete_automation_rule(actor: Actor, rule_id: str) -> None:
    actor.require(AUTOMATION_WRITE)
    with transaction.atomic(durable=True):
        rule = _live_rule_locked(actor, rule_id)
        definition.delete(rule)
        _audit_write(actor, Kind.AUTOMATION, "delete rule", rule.pk, None)


def fire_automation_event(
    actor: Actor, event_type: Any, data: Any, *, idempotency: Claim | None = None
) -> list:
    """Seed 001 `POST /api/v1/automation/events`: one execution per matching enabled rule."""
    actor.require(AUTOMATION_EXECUTE)
    event_type = definition.clean_event_type(event_type, "type")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object", field="data")
    if idempotency is not None and idempotency.outcome is not None:
        ids = [i for i in idempotency.outcome.get("new_id", "").split(",") if i]
        found = AutomationExecution.objects.filter(pk__in=ids, tenant=actor.tenant)
        return sorted(found, key=lambda e: ids.index(str(e.pk)))
    with transaction.atomic(durable=True):
        executions = definition.fire(actor.tenant, event_type, data)
        for execution in executions:
            _audit_write(actor, Kind.AUTOMATION, "start", execution.pk, idempotency)
        if idempotency is not None:
            idempotency_store.record_outcome(
                idempotency, kind=Kind.AUTOMATION, new_id=",".join(str(e.pk) for e in executions)
            )
    return executions


# --- seed 003: defining and starting workflows (Cognite's upserts, run and cancel) ---------------


def _workflows_project(actor: Actor, project: str) -> None:
    actor.require(workflows.KIND.permission)
    if project != actor.tenant.workflows_project:
        raise NotFound("Project not found")


def upsert_workflows(actor: Actor, project: str, items: list[dict]) -> list[Any]:
    """Cognite's POST /workflows: create or replace each workflow (externalId, description,
    dataSetId, maxConcurrentExecutions)."""
    from .models import WorkflowHeader

    _workflows_project(actor, project)
    now = timezone.now()
    out = []
    with transaction.atomic():
        for item in items:
            values = {
                "description": item.get("description"),
                "data_set_id": item.get("dataSetId"),
                "max_concurrent_executions": item.get("maxConcurrentExecutions"),
                "updated_at": now,
            }
            header, _ = WorkflowHeader.objects.update_or_create(
                tenant=actor.tenant,
                external_id=item["externalId"],
                defaults=values,
                create_defaults={**values, "created_at": now},
            )
            out.append(header)
    return out


def upsert_workflow_versions(actor: Actor, project: str, items: list[dict]) -> list[Any]:
    """Cognite's POST /workflows/versions: create or replace each version's definition (its
    tasks checked by kinds/workflows/cognite.py); the workflow is made if it is new."""
    from .kinds.workflows import cognite as definition
    from .models import Workflow, WorkflowHeader

    _workflows_project(actor, project)
    cleaned = [
        definition.clean_tasks(
            actor.tenant, item["workflowDefinition"]["tasks"], f"items[{i}].workflowDefinition"
        )
        for i, item in enumerate(items)
    ]
    now = timezone.now()
    out = []
    with transaction.atomic():
        for item, tasks in zip(items, cleaned, strict=True):
            WorkflowHeader.objects.get_or_create(
                tenant=actor.tenant,
                external_id=item["workflowExternalId"],
                defaults={"created_at": now, "updated_at": now},
            )
            version, _ = Workflow.objects.update_or_create(
                tenant=actor.tenant,
                external_id=item["workflowExternalId"],
                version=item["version"],
                defaults=(
                    values := {
                        "tasks": tasks,
                        "description": item["workflowDefinition"].get("description"),
                        "updated_at": now,
                    }
                ),
                create_defaults={**values, "created_at": now},
            )
            out.append(version)
    return out


def run_workflow(
    actor: Actor,
    project: str,
    external_id: str,
    version: str,
    *,
    nonce: str,
    input_data: dict | None = None,
    metadata: dict | None = None,
) -> Any:
    """Cognite's POST /workflows/{externalId}/versions/{version}/run: a new execution, queued,
    whose tasks run as the identity of the session whose nonce (single-use) it spends."""
    from .kinds.workflows import run as workflow_run
    from .models import Workflow

    _workflows_project(actor, project)
    with transaction.atomic():
        workflow = get_for_tenant(
            Workflow.objects.all(),
            actor.tenant,
            "Workflow version not found",
            external_id=external_id,
            version=version,
        )
        options: dict[str, Any] = {"nonce": nonce}
        workflows.KIND.authorise(actor, options)
        execution = workflow_run.start_workflow(
            workflow, input_data, metadata, run_as=options["run_as"]
        )
    execution.workflow = workflow
    return execution


def cancel_workflow(actor: Actor, project: str, execution_id: str, reason: str | None) -> Any:
    """Cognite's POST /workflows/executions/{id}/cancel: a RUNNING execution becomes TERMINATED
    (its started tasks CANCELED); anything else is a 409."""
    from .kinds.workflows import run as workflow_run
    from .models import WorkflowExecution

    _workflows_project(actor, project)
    qs = WorkflowExecution.objects.select_related("workflow")
    execution = get_for_tenant(qs, actor.tenant, "Workflow execution not found", pk=execution_id)
    if not workflow_run.terminate_workflow(str(execution.pk), reason or "Canceled by user"):
        execution.refresh_from_db()
        raise NotRetryable(
            f"Workflow execution is {execution.status}; only a RUNNING execution can be canceled",
            status=execution.status,
        )
    execution.refresh_from_db()
    return execution
