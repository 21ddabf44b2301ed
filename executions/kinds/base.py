"""What every kind shares: the KindSpec a kind package describes itself with (its KIND), and the
helpers its retry rule and its runner build on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db.models import Count, Model, OuterRef, QuerySet, Subquery
from django.utils import timezone

from .. import handlers, leases, sets, work
from ..errors import InvalidInput
from ..fingerprints import fingerprint
from ..models import Attempt, AuditEvent

if TYPE_CHECKING:
    from ..tenancy import Actor
    from .shown import Shown


def _nothing(*args, **kwargs) -> None:
    return None


def _no_options(obj: Model) -> dict[str, Any]:
    return {}


def _never(n: int) -> bool:
    return False


def _retried_meanwhile(obj: Model) -> str:
    return "Retried meanwhile by a concurrent request"


class Rule(NamedTuple):
    """A kind's retry rule (kinds/<kind>/retry.py's RULE): why one item is not retryable (None:
    it is), the same rule as querysets (previews, bulk), and the set-based retry itself, which
    runs inside the caller's transaction and returns one Retried per retried item."""

    reason: Callable[[Model], str | None]
    retryable: Callable[[QuerySet, Actor], QuerySet]
    not_retryable: Callable[[QuerySet, Actor], dict[str, int]]
    retry: Callable[..., list[Retried]]


@dataclass(frozen=True, eq=False)
class KindSpec:
    """One kind of execution, whole: what the inbox, the filters, the API, the console, the
    retry services, the reaper and the failure counts need to know about it. Each kind package
    builds one (its KIND) and executions/kinds/__init__.py lists them."""

    name: str  # "function": in URLs, filters, audit rows and failure counts
    label: str  # "Function execution"
    model: type[Model]
    # Statuses: what the inbox lists as failed, what a retry accepts, what is still running,
    # what an attempt succeeds with (it resolves its chain: triage.settled).
    failed_statuses: tuple[str, ...]
    retryable_statuses: tuple[str, ...]
    in_flight: tuple[str, ...]
    success_statuses: tuple[str, ...]
    time_field: str  # when it failed (indexed with the failed partial index)
    name_field: str  # handler / rule / operation / workflow, as a filter's `name` matches it
    name_label: str
    count_source: str  # SQL over the kind's table: the failure counts' `source` (its name's key)
    permission: str  # to retry
    read_permission: str
    not_found: str  # the 404's message
    rule: Rule
    # What its inbox row and detail page show, and its API links (kinds/<kind>/shown.py).
    shown: Shown
    # The reaper's part (kinds/<kind>/run.py): fail this kind's attempts whose lease expired.
    reap: Callable[[Any], int]
    # Optional: a permission one item needs besides `permission` (jobs: their operation's).
    needs: Callable[[Model], str | None] = _nothing
    # The options of a single retry, from the item as the request found it.
    one_options: Callable[[Model], dict[str, Any]] = _no_options
    # Whether retry() finds and locks a single item itself, so a single retry reads nothing first.
    finds_itself: bool = False
    # Whether retry(n items) is one statement, atomic and durable on its own (no transaction).
    one_statement: Callable[[int], bool] = _never
    # A bulk retry's first batch, for a kind known to be fast (services._BatchSize).
    first_batch: int | None = None
    # Whether retry() writes the audit rows itself, given retry(audit=<their shared columns>).
    writes_audit: bool = False
    # A kind that retries in place: the status a retry resets an item to. Its retry() keeps the
    # attempt in the Attempt history, where a bulk retry's items name the bulk's audit row
    # (retry(bulk_audit=<its id>)) instead of an audit row each.
    resets_to: str | None = None
    # Inside the retry's transaction, before it: take what authorises it out of the options.
    authorise: Callable[[Actor, dict[str, Any]], None] = _nothing
    # Options that authorise a retry but do not make it another (left out of its idempotency).
    secret_options: tuple[str, ...] = ()
    # Options recorded in the audit row's details.
    audit_options: tuple[str, ...] = ()
    # After a single retry committed (or replayed): e.g. wait for its result (functions); the
    # row to answer with, or None.
    after_one: Callable[[Any, dict[str, Any]], Model | None] = _nothing
    # Why a single retry that raced another one (and lost) retried nothing.
    retried_meanwhile: Callable[[Model], str] = _retried_meanwhile
    # What retried an item, when that is why it cannot be retried now ("" if nothing did).
    retried_by: Callable[[Model], str] | None = None
    # Each status in the console's one vocabulary (kinds.WORDS): its badges and status filter
    # say "timed out" for a function's `timeout` and a workflow's `TIMED_OUT` alike.
    status_words: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shown.spec = self

    @property
    def all_statuses(self) -> tuple[str, ...]:
        return tuple(self.model.Status.values)

    def __str__(self) -> str:
        return self.name


# "No expectation", for rule options where None is a value (functions.retry(seen_retry=...)).
ANY = object()


class Retried(NamedTuple):
    """One retried item. A tuple, not a dataclass: a bulk retry makes 100,000 of them
    (bench/bulk_retry.py)."""

    target_id: Any
    new_id: Any
    status_before: str
    status_after: str
    obj: Any = None  # the item as the retry left it, when the rule hands it over (rows=True)


def write_audit(constants: dict, retried: list[Retried]) -> None:
    """One AuditEvent per retried item: `constants` are the columns every row shares (see
    services._audit_constants)."""
    if not retried:
        return
    sets.insert_rows(
        AuditEvent,
        constants,
        {
            "target_id": [str(r.target_id) for r in retried],
            "new_target_id": [str(r.new_id) for r in retried],
            "status_before": [r.status_before for r in retried],
            "status_after": [r.status_after for r in retried],
        },
    )


def without_retry_in_flight(originals: list) -> list:
    """The locked `originals` (of a kind that clones: functions, jobs) whose latest retry, if
    any, is final. Their rows were read under lock, so `retried_by_id` is the latest retry's; its
    status is read now, after the lock, by a statement that sees every committed retry."""
    pointed = [o.retried_by_id for o in originals if o.retried_by_id is not None]
    if not pointed:
        return originals
    model = type(originals[0])
    busy = set(
        model.objects.filter(pk__in=pointed, status__in=model.IN_FLIGHT).values_list(
            "pk", flat=True
        )
    )
    return [o for o in originals if o.retried_by_id not in busy]


def latest_retry_in_flight(obj: Model, noun: str) -> str | None:
    """Why an item of a kind that clones is not retried now: its latest retry is still in flight.
    No query when the caller selected `retried_by` (the console's inbox does)."""
    retry = obj.retried_by
    if retry is not None and retry.status in type(obj).IN_FLIGHT:
        return f"{noun} was already retried as {retry.pk}, which is still {retry.status}"
    return None


def retried_meanwhile(noun: str) -> Callable[[Model], str]:
    """Why a single retry of a kind that clones, which raced another one (and lost), retried
    nothing."""

    def why(obj: Model) -> str:
        return f"{noun} was already retried as {obj.retried_by_id} by a concurrent request"

    return why


def copy_to_history(
    actor: Actor, kind: str, rows: list[dict], now, bulk_audit: int | None = None, **columns: Any
) -> None:
    """Keep the attempts a retry resets (kinds that retry in place) in the Attempt history.
    `rows`: their pk, attempt, status, error_message, error_stack (and logs); `bulk_audit`: the
    audit row of the bulk retry that resets them; `columns`: the Attempt's other columns, each a
    function of the row."""
    Attempt.objects.bulk_create(
        Attempt(
            tenant=actor.tenant,
            kind=kind,
            object_id=str(r["pk"]),
            number=r["attempt"],
            status=r["status"],
            error_message=r["error_message"],
            error_stack=r["error_stack"],
            logs=r.get("logs") or [],
            recorded_at=now,
            bulk_audit_id=bulk_audit,
            **{column: value(r) for column, value in columns.items()},
        )
        for r in rows
    )


def retry_in_flight(model) -> Subquery:
    """For `UPDATE originals SET retried_by = ...`: each original's retry in flight (at most one,
    a partial unique index says so), just created by the retry."""
    return Subquery(
        model.objects.filter(retry_of=OuterRef("pk"), status__in=model.IN_FLIGHT).values("pk")[:1]
    )


def by_status(qs, retryable: tuple[str, ...]) -> dict[str, int]:
    """Why the rest of `qs` is not retryable, for kinds whose only rule is the status: one
    GROUP BY, {"status is <status>": count}."""
    rows = qs.exclude(status__in=retryable).order_by().values_list("status").annotate(n=Count("pk"))
    return {f"status is {status}": n for status, n in rows}


# --- for the runners ------------------------------------------------------------------------------


def failure(kind: str, handler: str, exc: BaseException) -> dict[str, Any]:
    """The columns a failed attempt records: its error, stack and fingerprint."""
    message = str(exc) or type(exc).__name__
    return {
        "error_message": message,
        "error_stack": leases.format_exception(exc),
        "fingerprint": fingerprint(kind, handler, type(exc).__name__, message),
    }


# A unit with one of these keys is real work of that kind; any other names a handler.
WORK_KEYS = ("url", "code", "command")


def unit_name(unit: dict) -> str:
    """What a unit's failures are fingerprinted and logged by: its handler, else its work."""
    if "url" in unit:
        return f"{str(unit.get('method') or 'GET').upper()} {unit['url']}"
    if "code" in unit:
        return "javascript"
    if "command" in unit:
        return str(unit["command"])
    return str(unit.get("handler") or "")


class UnitFailed(Exception):
    """A unit of work that failed: the failure columns the kind records, its logs, what there is
    of a result, and whether it timed out (a kind with a timeout status records that)."""

    def __init__(
        self, columns: dict[str, Any], logs: list[dict], *, timed_out: bool, result: Any = None
    ) -> None:
        super().__init__(columns["error_message"])
        self.columns = columns
        self.logs = logs
        self.timed_out = timed_out
        self.result = result


def run_unit(kind: str, unit: dict, ctx: work.WorkContext) -> tuple[Any, list[dict]]:
    """Run one unit through executions.work: (result, log entries), or UnitFailed. A handler's
    own exception is recorded as it always was (message, traceback, fingerprint by its class)."""
    name = unit_name(unit)
    try:
        if not any(key in unit for key in WORK_KEYS):
            handlers.get(unit.get("handler") or "")  # an unknown handler: "Unknown handler 'x'"
        outcome = work.run(unit, ctx)
    except handlers.HandlerNotFound as exc:
        raise UnitFailed(failure(kind, name, exc), [], timed_out=False) from exc
    except work.WorkFailed as exc:
        cause = exc.__cause__
        if "handler" in unit and cause is not None and not isinstance(cause, InvalidInput):
            columns = failure(kind, name, cause)
        else:
            columns = {
                "error_message": exc.message,
                "error_stack": exc.stack or None,
                "fingerprint": fingerprint(kind, name, exc.error_class, exc.message),
            }
        raise UnitFailed(
            columns,
            exc.logs.entries,
            timed_out=isinstance(exc, work.WorkTimeout),
            result=exc.result,
        ) from exc
    return outcome.result, outcome.logs.entries


def worker_lost(kind: str) -> dict[str, Any]:
    """The columns the reaper writes on an attempt whose worker was lost."""
    return {
        "error_message": leases.WORKER_LOST,
        "error_stack": None,
        "lease_owner": "",
        "lease_expires_at": None,
        "fingerprint": fingerprint(kind, "", "WorkerLost", leases.WORKER_LOST),
    }


def log_entry(level: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"timestamp": timezone.now().isoformat(), "level": level, "message": message, **extra}


def chain_depth(model, obj, field: str = "retry_of_id", limit: int = 50) -> int:
    """How many retries precede `obj` (its attempt number, less one)."""
    depth, parent = 0, getattr(obj, field)
    while parent is not None and depth < limit:
        depth += 1
        parent = model.objects.filter(pk=parent).values_list(field, flat=True).first()
    return depth
