"""Template helpers for the console: relative timestamps with the exact time on hover, status and
kind badges."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

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

KIND_SHORT = {
    "function": "Function",
    "automation": "Automation",
    "job": "Job",
    "workflow": "Workflow",
    "run": "Run",
}


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
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        exact.isoformat(),
        exact.strftime("%Y-%m-%d %H:%M:%S UTC"),
        _ago((timezone.now() - value).total_seconds()),
    )


@register.filter
def status_class(status: str) -> str:
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
    return KIND_SHORT.get(kind, kind)


@register.simple_tag
def status_badge(status: str) -> str:
    return format_html('<span class="badge {}">{}</span>', status_class(status), status)


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def duration(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return ""
    ms = (end - start).total_seconds() * 1000
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
