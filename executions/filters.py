"""The failure filter: one parser for the inbox, the API and bulk retry, and the per-kind
queryset it selects (from each kind's KIND: its failed statuses, time and name fields). Any input
gives a FailureFilter or an InvalidInput naming the field, never an exception of another type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from . import kinds as registry
from . import search, validation
from .errors import InvalidInput
from .models import Tenant

RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
STATES = ("open", "resolved", "ignored", "all")
MAX_TEXT = 200


@dataclass(frozen=True)
class FailureFilter:
    kinds: tuple[str, ...] = field(default_factory=registry.names)
    statuses: tuple[str, ...] = ()  # empty: each kind's failed statuses
    since: datetime | None = None
    until: datetime | None = None
    q: str = ""
    fingerprint: str = ""
    name: str = ""
    # Triage (executions/triage.py): open | resolved | ignored | all. "all" here, so code that
    # builds a filter itself sees every failure; parse() defaults to "open", as the inbox does.
    state: str = "all"
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "kind": list(self.kinds),
            "status": list(self.statuses),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "q": self.q,
            "fingerprint": self.fingerprint,
            "name": self.name,
            "state": self.state,
        }

    def queryset(self, kind: str, tenant: Tenant) -> QuerySet:
        meta = registry.get(kind)
        statuses = [s for s in self.statuses if s in meta.all_statuses] or list(
            meta.failed_statuses
        )
        if self.statuses and not any(s in meta.all_statuses for s in self.statuses):
            return meta.model.objects.none()
        failed = Q(status__in=statuses)
        if self.state == "open":
            failed &= Q(triage__in=("open", "regressed"))
        elif self.state == "ignored":
            failed &= Q(triage="ignored")
        elif self.state == "resolved":
            # A record retried in place that succeeded is resolved too, in its success status.
            failed = Q(triage="resolved") & (failed if self.statuses else Q())
        elif not self.statuses:
            failed |= Q(triage="resolved")
        qs = meta.model.objects.filter(failed, tenant=tenant)
        if self.since:
            qs = qs.filter(**{f"{meta.time_field}__gte": self.since})
        if self.until:
            qs = qs.filter(**{f"{meta.time_field}__lt": self.until})
        if self.q:
            qs = qs.filter(search.condition(meta.model, self.q))
        if self.fingerprint:
            qs = qs.filter(fingerprint=self.fingerprint)
        if self.name:
            qs = qs.filter(**{f"{meta.name_field}__icontains": self.name})
        return qs

    def querysets(self, tenant: Tenant) -> dict[str, QuerySet]:
        return {kind: self.queryset(kind, tenant) for kind in self.kinds}


def _raw(data, key: str) -> list[str]:
    """Every value given for `key`: a query string may repeat it, a JSON object may list them."""
    if hasattr(data, "getlist"):
        raw = data.getlist(key)
    else:
        raw = data.get(key)
        if raw is None:
            raw = []
        elif not isinstance(raw, list):
            raw = [raw]
    for item in raw:
        if not isinstance(item, str):
            raise InvalidInput(f"{key} must be a string or a list of strings", field=key)
    return raw


def _values(data, key: str) -> list[str]:
    """A list field (kind, status): repeated, or comma-separated, or both."""
    return [part.strip() for item in _raw(data, key) for part in item.split(",") if part.strip()]


def _single(data, key: str) -> str:
    """A field of one value, taken whole: a comma is part of it (`q=refused, retry` is one
    search text)."""
    values = [item.strip() for item in _raw(data, key) if item.strip()]
    if len(values) > 1:
        raise InvalidInput(f"{key} takes one value", field=key)
    return values[0] if values else ""


def _datetime(data, key: str) -> datetime | None:
    value = _single(data, key)
    return validation.iso_datetime(value, key) if value else None


def parse(data) -> FailureFilter:
    """Parse a QueryDict or a JSON object into a FailureFilter."""
    if data is None:
        data = {}
    if not hasattr(data, "get"):
        raise InvalidInput("filter must be an object", field="filter")
    kinds = _values(data, "kind")
    unknown = [k for k in kinds if k not in registry.BY_NAME]
    if unknown:
        raise InvalidInput(
            f"kind must be one of {', '.join(registry.names())}; got {unknown[0]!r}", field="kind"
        )
    statuses = _values(data, "status")
    known = {s for meta in registry.KINDS for s in meta.all_statuses}
    bad = [s for s in statuses if s not in known and s not in registry.WORDS]
    if bad:
        raise InvalidInput(
            f"status {bad[0]!r} is not one of {', '.join(registry.WORDS)} nor a status of any kind",
            field="status",
        )
    # A word of the console's vocabulary ("timed out") stands for each kind's failed statuses
    # it names (`timeout`, `TIMED_OUT`); a kind's own status stays as it is.
    statuses = list(
        dict.fromkeys(
            raw
            for s in statuses
            for raw in (sorted(registry.failed_statuses_for(s)) if s in registry.WORDS else [s])
        )
    )
    since, until = _datetime(data, "since"), _datetime(data, "until")
    rng = _single(data, "range")
    if rng:
        if rng not in RANGES:
            raise InvalidInput(f"range must be one of {', '.join(RANGES)}", field="range")
        since = timezone.now() - RANGES[rng]
    if since and until and since >= until:
        raise InvalidInput("since must be before until", field="since")
    q = validation.text(_single(data, "q"), "q", MAX_TEXT)
    fp = _single(data, "fingerprint")
    if fp and not _FINGERPRINT.fullmatch(fp):
        raise InvalidInput("fingerprint must be 16 lowercase hex characters", field="fingerprint")
    name = validation.text(_single(data, "name"), "name", MAX_TEXT)
    state = _single(data, "state") or "open"
    if state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
    return FailureFilter(
        kinds=tuple(kinds) or registry.names(),
        statuses=tuple(statuses),
        since=since,
        until=until,
        q=q,
        fingerprint=fp,
        name=name,
        state=state,
    )
