"""Validators shared by the API, the console and the commands."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from .errors import InvalidInput

# RFC 1123 hostname (labels of letters, digits and hyphens), or Redrive's `_any`.
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$|^_any$"
)

# The moments a filter may name. A day short of each end of Python's calendar: pages widen a
# filter into a window (the chart reaches 24 hours back from `until`, hourly counts round up to
# the next hour), and that arithmetic must not leave the calendar (OverflowError, a 500).
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
_SPAN = "between {} and {}".format(
    *(m.isoformat().replace("+00:00", "Z") for m in (EARLIEST, LATEST))
)
LATEST_MS = int(LATEST.timestamp() * 1000)
_MS = re.compile(r"[0-9]{1,15}")


def iso_datetime(value: str, field: str) -> datetime:
    """An ISO 8601 date-time (UTC if it names no offset) as an aware datetime in UTC, between
    EARLIEST and LATEST; anything else is an InvalidInput naming `field`."""
    try:
        parsed = parse_datetime(value)
        if parsed is not None:
            # A naive value is UTC; an offset near the ends of the calendar can push the same
            # moment out of it (0001-01-01T00:00+14:00 is in year 0).
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
            parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None or not EARLIEST <= parsed <= LATEST:
        raise InvalidInput(f"{field} must be an ISO 8601 date-time {_SPAN}", field=field)
    return parsed


def epoch_milliseconds(value: object, field: str) -> datetime:
    """Milliseconds since the epoch (an int, or a string of ASCII digits) as a datetime in UTC."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not _MS.fullmatch(text) or int(text) > LATEST_MS:
        raise InvalidInput(
            f"{field} must be milliseconds since the epoch, from 0 to {LATEST_MS}", field=field
        )
    return datetime.fromtimestamp(int(text) / 1000, tz=UTC)


def text(value: str, field: str, maximum: int) -> str:
    """Free text that is stored or searched: bounded, and without NUL (PostgreSQL refuses it)."""
    if len(value) > maximum:
        raise InvalidInput(f"{field} must be at most {maximum} characters", field=field)
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters", field=field)
    return value


def named(exc: InvalidInput) -> InvalidInput:
    """The error with its field's full path in the message: the units' own messages say `url
    must be ...`, and seed 001's error shape has no field of its own."""
    if not exc.field or exc.message.startswith(exc.field):
        return exc
    short = exc.field.rsplit(".", 1)[-1]
    message = exc.message.removeprefix(short).lstrip(": ") if exc.message.startswith(short) else ""
    text = f"{exc.field} {message}" if message else f"{exc.field}: {exc.message}"
    return InvalidInput(text, field=exc.field)
