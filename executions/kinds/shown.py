"""What a kind shows: its inbox row, its detail page, its API links. Each kind package has its
subclass of Shown (kinds/<kind>/shown.py, its KIND's `shown`), so that the read side, the console
and the API iterate the kinds instead of asking `if kind == ...`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from django.db.models import Model
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from ..models import Tenant
from ..work import secrets

if TYPE_CHECKING:
    from .base import KindSpec


def log_lines(raw: Any) -> list[dict]:
    """Log lines as {timestamp, level, message, extra}; anything odd is shown, not dropped."""
    out = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict):
            extra = {k: v for k, v in entry.items() if k not in ("timestamp", "level", "message")}
            out.append(
                {
                    "timestamp": parse_datetime(str(entry.get("timestamp") or "")),
                    "level": str(entry.get("level") or "info").lower(),
                    "message": str(entry.get("message", "")),
                    "extra": extra,
                }
            )
        else:
            out.append({"timestamp": None, "level": "info", "message": str(entry), "extra": {}})
    return out


def dependency_order(ids: list[str], depends_on: dict[str, list[str]]) -> list[str]:
    """`ids` with each after what it depends on, otherwise in their own order (a node of a
    cycle, or depending on an unknown one, comes after the rest rather than being dropped)."""
    done: list[str] = []
    placed: set[str] = set()
    waiting = list(ids)
    while waiting:
        ready = [i for i in waiting if all(d in placed for d in depends_on.get(i) or [])]
        if not ready:
            ready = waiting[:1]
        for i in ready:
            done.append(i)
            placed.add(i)
        waiting = [i for i in waiting if i not in placed]
    return done


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


class Shown:
    """The display part of one kind. Subclasses set the attributes and override what differs."""

    short: ClassVar[str]  # "Function": the badge
    # Kinds whose retry clones the item name the link to the original (retry_of / source_run);
    # None: the kind retries in place and keeps its history in Attempt rows.
    clone_parent: ClassVar[str | None] = None
    row_fields: ClassVar[tuple[str, ...]]  # the inbox row's own columns, with its pk and time
    row_related: ClassVar[tuple[str, ...]] = ()
    retried_by_fields: ClassVar[tuple[str, ...]] = ()  # besides pk, status and time
    detail_related: ClassVar[tuple[str, ...]] = ()
    started_field: ClassVar[str]
    # When an attempt was made, where that differs from when it started running (jobs).
    made_field: ClassVar[str] = ""
    finished_field: ClassVar[str] = "finished_at"
    has_logs: ClassVar[bool] = False  # the item's own `logs` column
    asks_host: ClassVar[bool] = False  # its Retry form asks for a target host
    input_label: ClassVar[str] = "Input"  # the detail page's headings for input() and output()
    output_label: ClassVar[str] = "Output"
    no_output_note: ClassVar[str] = ""  # said after "No output" when output() is None
    input_field: ClassVar[str]
    output_field: ClassVar[str | None] = None
    outputs_per_node: ClassVar[bool] = False  # its sections show each node's output instead
    retried_text: ClassVar[str]  # formatted with the services.RetryOutcome as `outcome`
    api_url_names: ClassVar[tuple[str, str]]  # the item's API route and its retry route
    waits_for_host: ClassVar[bool] = False  # an unprocessed item waits for a live host worker

    # The kind this is the display part of (set by its KindSpec).
    spec: KindSpec

    @property
    def meta(self) -> KindSpec:
        return self.spec

    @property
    def kind(self) -> str:
        return self.spec.name

    @property
    def active_statuses(self) -> tuple[str, ...]:
        """Not final yet: the console polls the row."""
        return self.spec.in_flight

    @property
    def label(self) -> str:
        """ "Function execution": a detail page's title."""
        return self.spec.label

    @property
    def template(self) -> str:
        """The detail page's part for this kind: partials `facts` and `sections`."""
        return f"console/kinds/{self.kind}.html"

    def name(self, obj: Model) -> str:
        """The kind's name field (its KIND's), read from the item and what it selected."""
        value = obj
        for part in self.meta.name_field.split("__"):
            value = getattr(value, part)
        return value

    def error(self, obj: Model) -> str:
        return obj.error_message or ""

    def attempts(self, obj: Model) -> int | None:
        """The attempt number from the item's own counter; None: count its retry chain."""
        return None

    def logs(self, obj: Model) -> list[dict]:
        return log_lines(obj.logs) if self.has_logs else []

    def extras(self, obj: Model) -> dict[str, Any]:
        """What only this kind's detail page shows (actions, events, tasks, nodes)."""
        return {}

    def input(self, obj: Model) -> Any:
        # A job's operation may hold secret values (a command's env): masked like the API.
        return secrets.masked_deep(getattr(obj, self.input_field))

    def output(self, obj: Model) -> Any:
        return getattr(obj, self.output_field) if self.output_field else None

    def retried_message(self, outcome: Any) -> str:
        """The console's message after a retry (outcome: a services.RetryOutcome)."""
        return self.retried_text.format(outcome=outcome)

    def api_args(self, tenant: Tenant, obj: Model) -> list[str]:
        return [str(obj.pk)]

    def definition(self, obj: Model) -> tuple[str, str] | None:
        """The definition the item came from, as (label, URL) where its kind's users edit it
        (the admin's change page, or the API that replaces it); None: it has none."""
        return None

    def api_urls(self, tenant: Tenant, obj: Model) -> tuple[str, str]:
        """The item's URL in its kind's API and the URL that retries it."""
        args = self.api_args(tenant, obj)
        return tuple(reverse(name, args=args) for name in self.api_url_names)

    def name_lookup(self) -> tuple[type[Model], str] | None:
        """The model and field naming the item's source (None: the source is its own name)."""
        head, _, attr = self.meta.name_field.partition("__")
        if not attr:
            return None
        return self.meta.model._meta.get_field(head).related_model, attr
