"""What still needs an operator: every state change of triage, in one place.

A failure (a kind's row in a failed status) is **open** until
- a retry of it, or a later retry in its chain, succeeds; or the record itself succeeds (kinds that
  retry in place): **resolved**, in the transaction that records the success (`settled()`, called
  where each kind's attempt becomes final: leases.finish / Finisher, jobs' job_transition,
  workflows' settle);
- an operator **ignores** it, or its whole error group (fingerprint), until the fingerprint fails
  again or until a date (`ignore()`, `ignore_group()`); `reopen()` / `reopen_group()` undo that.
A fingerprint that fails again while resolved or ignored (a lapsed ignore) is **reopened** as a
regression: the new failures are `regressed` (open, marked), the lapsed ignores open again, and
`failure.regressed` is emitted; a fingerprint seen for the first time emits `failure.new_group`.
Everything an operator or the automatic resolve does is audited.

The failure's state is its `triage` column (partial indexes serve the open inbox); the group's is
FailureGroup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from . import events, kinds, sets, validation
from .errors import InvalidInput, NotFound
from .models import AuditEvent, FailureGroup, Tenant
from .tenancy import Actor, get_for_tenant

OPEN = ("open", "regressed")
RESOLVED = "resolved"
IGNORED = "ignored"
STATES = ("open", "resolved", "ignored", "all")
MAX_REASON = 1000
CHUNK = 10_000
WORKER = "redrive"  # the actor of what nobody did by hand (the automatic resolve, regressions)


def _kind_of(model: type[Model]) -> kinds.KindSpec | None:
    return next((k for k in kinds.KINDS if k.model is model), None)


# --- when an attempt becomes final ----------------------------------------------------------


def settled(model: type[Model], pks: Iterable[Any]) -> None:
    """Call inside the transaction in which attempts of `model` became final: successes resolve
    their chains, failures are counted against their group. Anything but a kind's model: no-op."""
    kind = _kind_of(model)
    pks = list(pks)
    if kind is None:
        return
    # In chunks: a query takes at most 65,535 parameters (a bulk's thousands of successes).
    for i in range(0, len(pks), CHUNK):
        _settled(kind, pks[i : i + CHUNK])


def _settled(kind: kinds.KindSpec, pks: list) -> None:
    model = kind.model
    fields = ["pk", "tenant_id", "status", "fingerprint", "triage"]
    parent = kind.shown.clone_parent
    if parent is not None:
        fields.append(model._meta.get_field(parent).attname)
    elif any(f.name == "attempt" for f in model._meta.fields):
        fields.append("attempt")
    rows = list(model.objects.filter(pk__in=pks).values(*fields))
    successes = [r for r in rows if r["status"] in kind.success_statuses]
    failures = [r for r in rows if r["status"] in kind.failed_statuses]
    if successes:
        _resolve_after_success(kind, successes)
    if failures:
        _failed(kind, failures)


def _chain_ancestors(kind: kinds.KindSpec, rows: list[dict]) -> dict[Any, Any]:
    """Every item each success was retried from, up its chain: {ancestor pk: success pk}."""
    model = kind.model
    attname = model._meta.get_field(kind.shown.clone_parent).attname
    found: dict[Any, Any] = {}
    frontier = {r[attname]: r["pk"] for r in rows if r[attname] is not None}
    for _ in range(1000):  # a chain is a handful of retries; the cap only guards a cycle
        frontier = {pk: by for pk, by in frontier.items() if pk not in found}
        if not frontier:
            break
        found.update(frontier)
        parents = model.objects.filter(pk__in=list(frontier)).values_list("pk", attname)
        frontier = {up: frontier[pk] for pk, up in parents if up is not None}
    return found


def _resolve_after_success(kind: kinds.KindSpec, rows: list[dict]) -> None:
    if kind.shown.clone_parent is not None:
        by = _chain_ancestors(kind, rows)
        only_failed = True
    else:  # retried in place: the record itself, if it failed before this attempt
        by = {r["pk"]: r["pk"] for r in rows if r.get("attempt", 1) > 1}
        only_failed = False
    changed = _mark_resolved(kind, list(by), only_failed)
    if not changed:
        return
    now = timezone.now()
    sets.insert_rows(  # set-based: a bulk retry's successes resolve thousands at once
        AuditEvent,
        {
            "actor": WORKER,
            "source": AuditEvent.Source.WORKER,
            "action": "resolve",
            "kind": kind.name,
            "created_at": now,
            "request_id": "",
            "idempotency_key": "",
            "details": {},
        },
        {
            "tenant_id": [t for _, t, _, _ in changed],
            "target_id": [str(pk) for pk, _, _, _ in changed],
            "new_target_id": [str(by[pk]) for pk, _, _, _ in changed],
            # What happened to the failure: "failed → resolved" (a record retried in place has
            # its success status by now: its failed attempt is what was resolved).
            "status_before": [
                status if status in kind.failed_statuses else "failed"
                for _, _, _, status in changed
            ],
            "status_after": [RESOLVED] * len(changed),
        },
    )
    _groups_resolved({(t, fp) for _, t, fp, _ in changed if fp})


def _mark_resolved(kind: kinds.KindSpec, pks: list, only_failed: bool) -> list[tuple]:
    """Resolve those of `pks` not resolved yet (only failed ones, for kinds that clone):
    [(pk, tenant_id, fingerprint, status)] of the rows it changed."""
    model = kind.model
    if not pks:
        return []
    if not sets.is_postgresql():
        qs = model.objects.filter(pk__in=pks).exclude(triage=RESOLVED)
        if only_failed:
            qs = qs.filter(status__in=kind.failed_statuses)
        changed = list(qs.values_list("pk", "tenant_id", "fingerprint", "status"))
        model.objects.filter(pk__in=[c[0] for c in changed]).update(
            triage=RESOLVED, triage_until=None
        )
        return changed
    # One statement on PostgreSQL, its ids as one array (bench/resolve.py: 100,000 of them).
    quote = connection.ops.quote_name
    meta = model._meta
    pk = quote(meta.pk.column)
    where = " AND status = ANY(%s)" if only_failed else ""
    array = f"{meta.pk.db_type(connection)}[]"
    params: list[Any] = [RESOLVED, [str(p) for p in pks], RESOLVED]
    if only_failed:
        params.append(list(kind.failed_statuses))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET triage = %s, triage_until = NULL "  # noqa: S608
            f"WHERE {pk} = ANY(%s::{array}) AND triage <> %s{where} "
            f"RETURNING {pk}, tenant_id, fingerprint, status",
            params,
        )
        return cursor.fetchall()


def _groups_resolved(keys: set[tuple[Any, str]]) -> None:
    """Open groups among `keys` with no open failure left, in any kind (a group spans kinds),
    are resolved."""
    now = timezone.now()
    for tenant_id, fp in keys:
        still_open = any(
            other.model.objects.filter(
                tenant_id=tenant_id,
                fingerprint=fp,
                triage__in=OPEN,
                status__in=other.failed_statuses,
            ).exists()
            for other in kinds.KINDS
        )
        if not still_open:
            FailureGroup.objects.filter(tenant_id=tenant_id, fingerprint=fp, state="open").update(
                state=FailureGroup.State.RESOLVED, updated_at=now
            )


def _group(tenant_id: Any, fp: str, kind: str) -> tuple[FailureGroup, bool]:
    """The fingerprint's group, created on its first failure (two racing creators: one wins)."""
    try:
        with transaction.atomic():
            return FailureGroup.objects.get_or_create(
                tenant_id=tenant_id, fingerprint=fp, defaults={"kind": kind}
            )
    except IntegrityError:
        return FailureGroup.objects.get(tenant_id=tenant_id, fingerprint=fp), False


def _failed(kind: kinds.KindSpec, rows: list[dict]) -> None:
    model = kind.model
    now = timezone.now()
    by_group: dict[tuple[Any, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_group[(r["tenant_id"], r["fingerprint"])].append(r)
    for (tenant_id, fp), failed in by_group.items():
        pks = [r["pk"] for r in failed]
        if not fp:
            model.objects.filter(pk__in=pks).exclude(triage="open").update(triage="open")
            continue
        group, created = _group(tenant_id, fp, kind.name)
        if created:
            _emit(kind, "failure.new_group", failed[0]["pk"])
        # Ignored until a date still to come: the new failures join the ignored ones.
        if group.state == IGNORED and group.until is not None and group.until > now:
            model.objects.filter(pk__in=pks).update(triage=IGNORED, triage_until=group.until)
            continue
        regressed = group.state != "open" and bool(
            FailureGroup.objects.filter(pk=group.pk, state=group.state).update(
                state="open", until=None, regressed_at=now, updated_at=now
            )
        )
        # It happened again: failures ignored "until it happens again" (or until a date now
        # past) are open again, in every kind (a group spans kinds: this failure's kind may not
        # be the one its ignored failures are in); a record that failed again (retried in
        # place) is open again.
        for other in kinds.KINDS:
            lapsed = other.model.objects.filter(
                tenant_id=tenant_id,
                fingerprint=fp,
                status__in=other.failed_statuses,
                triage=IGNORED,
            ).filter(Q(triage_until__isnull=True) | Q(triage_until__lte=now))
            if other is kind:
                lapsed = lapsed.exclude(pk__in=pks)
            lapsed.update(triage="open", triage_until=None)
        if regressed or any(r["triage"] != "open" for r in failed):
            model.objects.filter(pk__in=pks).update(
                triage="regressed" if regressed else "open", triage_until=None
            )
        if regressed:
            AuditEvent.objects.create(
                tenant_id=tenant_id,
                actor=WORKER,
                source=AuditEvent.Source.WORKER,
                action="regressed",
                kind=kind.name,
                target_id=str(pks[0]),
                status_before=group.state,
                status_after="open",
                details={"fingerprint": fp},
                created_at=now,
            )
            _emit(kind, "failure.regressed", pks[0])


# --- when an ignore's date passes ------------------------------------------------------------


LAPSE_BATCH = 5000  # per kind and round: a round stays short, the next one goes on


def lapse_ignores(now: datetime | None = None, batch: int = LAPSE_BATCH) -> int:
    """Ignores "until a date" end on time (the worker's reaper round calls this): failures and
    groups ignored until a date now past are open again, without waiting for the fingerprint to
    fail again. Not a regression (nothing failed again: no `regressed` mark, no event), but
    audited like one, by "redrive": action "reopen" / "reopen_group", with the date that passed.
    Each kind's look is an index scan of its ignored-until-a-date failures (*_ignored_until).
    Returns how many failures it opened."""
    now = now or timezone.now()
    opened = sum(_lapse_failures(kind, now, batch) for kind in kinds.KINDS)
    with transaction.atomic():
        groups = list(
            FailureGroup.objects.select_for_update(skip_locked=True)
            .filter(state=IGNORED, until__lte=now)
            .order_by("until")[:batch]
        )
        FailureGroup.objects.filter(pk__in=[g.pk for g in groups]).update(
            state="open", until=None, updated_at=now
        )
        if groups:
            AuditEvent.objects.bulk_create(
                AuditEvent(
                    tenant_id=g.tenant_id,
                    actor=WORKER,
                    source=AuditEvent.Source.WORKER,
                    action="reopen_group",
                    kind=g.kind,
                    target_id=g.fingerprint,
                    new_target_id=g.fingerprint,
                    status_before=IGNORED,
                    status_after="open",
                    details={"state": "open", "lapsed": _until(g.until), "reason": g.reason},
                    created_at=now,
                )
                for g in groups
            )
    return opened


def _lapse_failures(kind: kinds.KindSpec, now: datetime, batch: int) -> int:
    model = kind.model
    with transaction.atomic():
        # SKIP LOCKED: two workers' rounds share the work instead of waiting on each other.
        rows = list(
            model.objects.select_for_update(skip_locked=True)
            .filter(triage=IGNORED, triage_until__lte=now)
            .values_list("pk", "tenant_id", "status", "triage_until")[:batch]
        )
        if not rows:
            return 0
        # An ignored record that has since succeeded (retried in place) needs nobody: resolved.
        after = ["open" if r[2] in kind.failed_statuses else RESOLVED for r in rows]
        for state in ("open", RESOLVED):
            these = [r[0] for r, a in zip(rows, after, strict=True) if a == state]
            model.objects.filter(pk__in=these).update(triage=state, triage_until=None)
        sets.insert_rows(
            AuditEvent,
            {
                "actor": WORKER,
                "source": AuditEvent.Source.WORKER,
                "action": "reopen",
                "kind": kind.name,
                "created_at": now,
                "request_id": "",
                "idempotency_key": "",
                "status_before": IGNORED,
            },
            {
                "tenant_id": [r[1] for r in rows],
                "target_id": [str(r[0]) for r in rows],
                "new_target_id": [str(r[0]) for r in rows],
                "status_after": after,
                "details": [
                    {"state": a, "lapsed": _until(r[3])} for r, a in zip(rows, after, strict=True)
                ],
            },
        )
        return after.count("open")


def _emit(kind: kinds.KindSpec, name: str, pk: Any) -> None:
    qs = kind.model.objects.filter(pk=pk)
    if kind.shown.row_related:
        qs = qs.select_related(*kind.shown.row_related)
    obj = qs.get()
    events.emit_many(
        Tenant(pk=obj.tenant_id),
        name,
        [
            {
                "kind": kind.name,
                "name": kind.shown.name(obj),
                "fingerprint": obj.fingerprint,
                "executionId": str(obj.pk),
                "message": obj.error_message or "",
                "tenantId": str(obj.tenant_id),
            }
        ],
    )


# --- what an operator does ------------------------------------------------------------------


def parse_ignore(data: Any) -> tuple[str, datetime | None]:
    """An ignore's body: {"reason": optional text, "until": "again" (default) | ISO date-time
    in the future}. (reason, until: None for "until it happens again")."""
    if data is None:
        data = {}
    if not hasattr(data, "get"):
        raise InvalidInput("body must be an object", field="body")
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise InvalidInput("reason must be a string", field="reason")
    reason = validation.text(reason.strip(), "reason", MAX_REASON)
    until = data.get("until") or "again"
    if not isinstance(until, str):
        raise InvalidInput('until must be "again" or an ISO 8601 date-time', field="until")
    if until == "again":
        return reason, None
    when = validation.iso_datetime(until, "until")
    if when <= timezone.now():
        raise InvalidInput("until must be in the future", field="until")
    return reason, when


def _failure(actor: Actor, kind_name: Any, object_id: Any) -> tuple[kinds.KindSpec, Model]:
    if kind_name not in kinds.BY_NAME:
        raise InvalidInput(f"kind must be one of {', '.join(kinds.names())}", field="kind")
    kind = kinds.get(kind_name)
    actor.require(kind.read_permission)
    obj = get_for_tenant(
        kind.model.objects.select_for_update(), actor.tenant, kind.not_found, pk=object_id
    )
    actor.require(kind.permission)
    return kind, obj


def _audit(actor: Actor, kind: str, action: str, target: Any, before: str, details: dict):
    AuditEvent.objects.create(
        tenant=actor.tenant,
        user_id=getattr(actor.user, "pk", None),
        api_key=actor.api_key,
        actor=actor.label,
        source=actor.source,
        action=action,
        kind=kind,
        target_id=str(target),
        new_target_id=str(target),
        status_before=before,
        status_after=details.get("state", ""),
        request_id=actor.request_id,
        ip=actor.ip,
        details=details,
    )


def _until(until: datetime | None) -> str:
    return until.isoformat() if until else "again"


@transaction.atomic
def ignore(
    actor: Actor, kind_name: Any, object_id: Any, *, reason: str = "", until: datetime | None = None
) -> Model:
    """Ignore one failure (open or resolved) until its fingerprint fails again, or `until`."""
    kind, obj = _failure(actor, kind_name, object_id)
    if obj.status not in kind.failed_statuses and obj.triage != RESOLVED:
        raise InvalidInput(f"{kind.label} {obj.pk} is not a failure (it is {obj.status})", "id")
    before = obj.triage
    obj.triage, obj.triage_until = IGNORED, until
    kind.model.objects.filter(pk=obj.pk).update(triage=IGNORED, triage_until=until)
    _audit(
        actor,
        kind.name,
        "ignore",
        obj.pk,
        before,
        {"state": IGNORED, "reason": reason, "until": _until(until)},
    )
    return obj


@transaction.atomic
def reopen(actor: Actor, kind_name: Any, object_id: Any) -> Model:
    """Open one ignored or resolved failure again."""
    kind, obj = _failure(actor, kind_name, object_id)
    if obj.status not in kind.failed_statuses:
        raise InvalidInput(f"{kind.label} {obj.pk} is not a failure (it is {obj.status})", "id")
    before = obj.triage
    obj.triage, obj.triage_until = "open", None
    kind.model.objects.filter(pk=obj.pk).update(triage="open", triage_until=None)
    _audit(actor, kind.name, "reopen", obj.pk, before, {"state": "open"})
    return obj


def _group_kinds(actor: Actor, fingerprint: Any) -> tuple[list[kinds.KindSpec], FailureGroup]:
    """The group of `fingerprint` in the actor's tenant, locked (made for failures recorded before
    groups were), and the kinds it has failures in: an error group spans kinds and names."""
    if not isinstance(fingerprint, str) or not validation_fingerprint(fingerprint):
        raise InvalidInput("fingerprint must be 16 lowercase hex characters", field="fingerprint")
    spans = [
        k
        for k in kinds.KINDS
        if k.model.objects.filter(tenant=actor.tenant, fingerprint=fingerprint).exists()
    ]
    group = (
        FailureGroup.objects.select_for_update()
        .filter(tenant=actor.tenant, fingerprint=fingerprint)
        .first()
    )
    if group is None:
        if not spans:
            raise NotFound("Error group not found")
        group, _ = _group(actor.tenant.pk, fingerprint, spans[0].name)
        group = FailureGroup.objects.select_for_update().get(pk=group.pk)
    if group.kind not in kinds.BY_NAME:
        raise NotFound("Error group not found")
    for kind in spans or [kinds.get(group.kind)]:
        actor.require(kind.read_permission)
        actor.require(kind.permission)
    return spans, group


def validation_fingerprint(value: str) -> bool:
    return len(value) == 16 and all(c in "0123456789abcdef" for c in value)


@transaction.atomic
def ignore_group(
    actor: Actor, fingerprint: Any, *, reason: str = "", until: datetime | None = None
) -> int:
    """Ignore a whole error group: its open failures now, and its new ones until the fingerprint
    fails again (then it regresses) or until `until`. Returns how many failures it ignored."""
    spans, group = _group_kinds(actor, fingerprint)
    n = sum(
        kind.model.objects.filter(
            tenant=actor.tenant,
            fingerprint=fingerprint,
            triage__in=OPEN,
            status__in=kind.failed_statuses,
        ).update(triage=IGNORED, triage_until=until)
        for kind in spans
    )
    before = group.state
    FailureGroup.objects.filter(pk=group.pk).update(
        state=IGNORED, until=until, reason=reason, updated_at=timezone.now()
    )
    _audit(
        actor,
        group.kind,
        "ignore_group",
        fingerprint,
        before,
        {"state": IGNORED, "reason": reason, "until": _until(until), "failures": n},
    )
    return n


@transaction.atomic
def reopen_group(actor: Actor, fingerprint: Any) -> int:
    """Open an ignored or resolved group again, with its ignored failures. Returns how many."""
    spans, group = _group_kinds(actor, fingerprint)
    n = sum(
        kind.model.objects.filter(
            tenant=actor.tenant,
            fingerprint=fingerprint,
            triage=IGNORED,
            status__in=kind.failed_statuses,
        ).update(triage="open", triage_until=None)
        for kind in spans
    )
    before = group.state
    FailureGroup.objects.filter(pk=group.pk).update(
        state="open", until=None, reason="", updated_at=timezone.now()
    )
    _audit(actor, group.kind, "reopen_group", fingerprint, before, {"state": "open", "failures": n})
    return n


def group_states(tenant: Tenant, fingerprints: Iterable[str]) -> dict[str, FailureGroup]:
    """The groups of `fingerprints` (those that have one), for the groups view."""
    return {
        g.fingerprint: g
        for g in FailureGroup.objects.filter(tenant=tenant, fingerprint__in=list(fingerprints))
    }
