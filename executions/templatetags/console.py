"""Template helpers for the console: relative timestamps with the exact time on hover, status and
kind badges."""

from __future__ import annotations

import html
import json
import secrets
from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from executions import kinds

register = template.Library()


def _html(markup: str, *args: object, **kwargs: object) -> SafeString:
    """format_html with the same escaping (anything with __html__ as it is, everything else
    through html.escape, as django.utils.html.escape does) minus the lazy-string check Django makes
    on every value: an inbox row escapes ~30 values, 1,500 a page (bench/README.md)."""
    return mark_safe(  # noqa: S308 - every value is escaped here
        markup.format(*map(_escaped, args), **{k: _escaped(v) for k, v in kwargs.items()})
    )


def _escaped(value: object) -> str:
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


_BAD = {
    "failed",
    "timeout",
    "FAILED",
    "TIMED_OUT",
    "TERMINATED",
    "failure",
    "cancelled",
    "CANCELED",
    "FAILED_WITH_TERMINAL_ERROR",
}
_GOOD = {"success", "completed", "COMPLETED", "finished"}
_BUSY = {"pending", "running", "unprocessed", "processing", "RUNNING", "waiting", "IN_PROGRESS"}
_WARN = {"partial", "SCHEDULED", "skipped", "SKIPPED"}


def _ago(delta_s: float) -> str:
    future = delta_s < 0
    s = abs(delta_s)
    if s < 45:
        text = "just now" if not future else "in a few seconds"
        return text
    for size, unit in (
        (86400 * 365, "y"),
        (86400 * 30, "mo"),
        (86400, "d"),
        (3600, "h"),
        (60, "min"),
    ):
        if s >= size:
            n = int(s // size)
            return f"in {n} {unit}" if future else f"{n} {unit} ago"
    return "just now"


@register.filter
def reltime(value: datetime | None) -> str:
    """`<time>` with a relative text ("5 min ago") and the exact UTC time as its title."""
    if not value:
        return mark_safe('<span class="muted">—</span>')  # noqa: S308 - a constant
    exact = value.astimezone(timezone.UTC)
    return _html(
        '<time datetime="{}" title="{}">{}</time>',
        exact.isoformat(),
        exact.strftime("%Y-%m-%d %H:%M:%S UTC"),
        _ago((timezone.now() - value).total_seconds()),
    )


# The badge's colour by the console's status words (kinds.WORDS and the rest of each kind's).
_WORD_CLASS = {
    "failed": "bad",
    "timed out": "bad",
    "cancelled": "bad",
    "terminated": "bad",
    "partial": "warn",
    "skipped": "warn",
    "succeeded": "good",
    "queued": "busy",
    "running": "busy",
    "waiting": "busy",
}


@register.filter
def logtime(value: datetime | None) -> str:
    """A log line's date and time (UTC, to the millisecond): lines of several days apart read
    apart."""
    if not value:
        return ""
    exact = value.astimezone(timezone.UTC)
    return _html(
        '<time class="ts" datetime="{}">{}</time>',
        exact.isoformat(),
        exact.strftime("%Y-%m-%d %H:%M:%S.%f")[:23],
    )


@register.filter
def status_class(status: str) -> str:
    found = _WORD_CLASS.get(kinds.status_word(status))
    if found:
        return found
    if status in _BAD:
        return "bad"
    if status in _GOOD:
        return "good"
    if status in _BUSY:
        return "busy"
    if status in _WARN:
        return "warn"
    return "neutral"


@register.filter
def kind_label(kind: str) -> str:
    found = kinds.BY_NAME.get(kind)
    return found.shown.short if found else kind


@register.simple_tag
def status_badge(status: str, kind: str | None = None) -> str:
    """The status in the console's one vocabulary, the kind's own word small beside it when it
    says it otherwise ("timed out" and `TIMED_OUT`)."""
    word = kinds.status_word(status, kind)
    if word == status:
        return _html('<span class="badge {}">{}</span>', status_class(status), word)
    return _html(
        '<span class="badge {}">{}</span><small class="native" title="Its own status">{}</small>',
        status_class(status),
        word,
        status,
    )


@register.simple_tag
def outcome_badge(status: str, kind: str) -> str:
    """A retry's outcome (the status its new attempt has now), on the detail page's audit and
    the audit page: a failure is said as what it is for a retry, "failed again"."""
    spec = kinds.BY_NAME.get(kind)
    if spec is None or status not in spec.failed_statuses:
        return status_badge(status, kind)
    return _html(
        '<span class="badge {}">failed again</span><small class="native" title="Its own status">'
        "{}</small>",
        status_class(status),
        kinds.status_word(status, kind),
    )


@register.filter
def json_text(value: Any, indent: int | None = None) -> str:
    """A JSON value as text (escaped by the template like any other text)."""
    return json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False)


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def duration(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return ""
    ms = (end - start).total_seconds() * 1000
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


# --- the inbox's row ------------------------------------------------------------------------------
# Built here rather than in the template: the row is the page's inner loop (50 per page, a dozen
# variables each), and the template engine was the page's biggest cost (bench/README.md, "Sixth
# session"). The partial console/inbox.html#row renders it, for the inbox's rows and for the htmx
# row answers.

_ROW = (
    '<tr id="row-{kind}-{id}" class="row{live}"{poll}>'
    '<td class="sel">{select}</td>'
    '<td data-label="Kind"><span class="kind kind-{kind}">{kind_label}</span></td>'
    '<td data-label="Name" class="name"><a href="{detail}">{name}</a>'
    '<span class="id mono" title="{id}">{short_id}'
    '<button type="button" class="copy" data-copy="{id}" aria-label="Copy id {id}" '
    'title="Copy id">copy</button></span></td>'
    '<td data-label="Error" class="err">'
    '<span class="clamp" title="{error}">{error_text}</span></td>'
    '<td data-label="When" class="when">{when}</td>'
    '<td data-label="Attempts" class="num">{attempts}</td>'
    '<td data-label="Status" class="status">{status}{then}{triage}{chain}{waiting}</td>'
    '<td data-label="Retry" class="act">{action}{triage_action}{message}</td>'
    "</tr>"
)
# Ignore (until it happens again) or reopen, beside Retry (executions/triage.py).
_TRIAGE_FORM = (
    '<form method="post" action="{url}" hx-post="{url}" hx-target="closest tr" '
    'hx-swap="outerHTML" hx-disabled-elt="find button" class="triage-form">'
    '<input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">'
    '<input type="hidden" name="next" value="{next}">'
    '<button type="submit" class="btn ghost {action}">{label}</button></form>'
)
_TRIAGE_LABELS = {"regressed": "regression", "resolved": "resolved", "ignored": "ignored"}


def triage_action(context, row) -> str:
    """The row's Ignore or Reopen button, for those who may retry it."""
    if not context["request"].can_retry or not row.is_failure:
        return ""
    action = "reopen" if row.triage in ("ignored", "resolved") else "ignore"
    return _html(
        _TRIAGE_FORM,
        url=row.urls[action],
        csrf=context.get("csrf_token") or "",
        next=context.get("next_url") or "",
        action=action,
        label=action.capitalize(),
    )


_RETRY_FORM = (
    '<form method="post" action="{url}" hx-post="{url}" hx-target="closest tr" '
    'hx-swap="outerHTML" hx-disabled-elt="find button">'
    '<input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">'
    '<input type="hidden" name="idempotency_key" value="{key}">'
    '<input type="hidden" name="next" value="{next}">{host}'
    '<input name="reason" class="reason" maxlength="500" placeholder="Reason (optional)" '
    'aria-label="Reason for the retry">'
    '<button type="submit" class="btn retry">Retry</button></form>'
)


@register.simple_tag
def idempotency_key() -> str:
    """A fresh Idempotency-Key for one rendered Retry button: submitting it twice (a double
    click, a resent form) retries once; the next rendering of the button is a new retry."""
    return secrets.token_urlsafe(16)


_HOST_INPUT = mark_safe(  # noqa: S308 - a constant
    '<input name="target_hostname" value="_any" class="host" '
    'aria-label="Target host for the retry" size="7" maxlength="253">'
)


@register.simple_tag(takes_context=True)
def inbox_row(context, row) -> str:
    """One failure's `<tr>`: select box, kind, name, error, time, attempts, status (and what it
    was retried as), and its Retry form or why it cannot be retried."""
    request = context["request"]
    active, new, error = row.active, row.new_attempt, row.error_message
    select = ""
    if request.can_retry:
        select = _html(
            '<input type="checkbox" name="sel" value="{}" form="bulk-form" '
            'aria-label="Select {} {}"{}>',
            row.key,
            row.kind,
            row.id,
            mark_safe(" disabled") if row.reason else "",  # noqa: S308 - a constant
        )
    then = ""
    if new is not None:
        then = _html(
            '<span class="then">→ <a href="{}" title="Retried as {}">retry</a> {}</span>',
            row.urls["new"],
            new.pk,
            status_badge(new.status, row.kind),
        )
    message = context.get("message")
    if row.reason and message and message[0] == "success":
        action = ""  # "Retried as …" says it: not also why it cannot be retried again now
    elif row.reason:
        action = _html('<span class="why">{}</span>', row.reason)
    else:
        action = _html(
            _RETRY_FORM,
            url=row.urls["retry"],
            csrf=context.get("csrf_token") or "",
            key=idempotency_key(),
            next=context.get("next_url") or "",
            host=_HOST_INPUT if row.shown.asks_host else "",
        )
    return _html(
        _ROW,
        kind=row.kind,
        id=row.id,
        live=" live" if active else "",
        poll=_html(' hx-get="{}" hx-trigger="every 1s" hx-swap="outerHTML"', row.urls["live"])
        if active
        else "",
        select=select,
        kind_label=kind_label(row.kind),
        detail=row.urls["detail"],
        name=row.name or "(unnamed)",
        short_id=row.short_id,
        error=error,
        error_text=error or "(no message)",
        when=reltime(row.when),
        attempts=row.attempts,
        status=status_badge(row.status, row.kind),
        then=then,
        triage=_html(' <span class="triage triage-{}">{}</span>', row.triage, label)
        if (label := _TRIAGE_LABELS.get(row.triage))
        else "",
        chain=_html('<span class="chain">{}</span>', row.chain) if row.chain else "",
        triage_action=triage_action(context, row),
        waiting=_html('<span class="waiting">Waiting: {}</span>', row.waiting)
        if row.waiting
        else "",
        action=action,
        message=_html(
            '<div class="msg msg-{} inline" role="status">{}</div>', message[0], message[1]
        )
        if message
        else "",
    )
