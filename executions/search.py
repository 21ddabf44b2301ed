"""The inbox's one search box (`q`, the console and GET /api/failures alike): an id, or the start
of one (6+ characters), of any kind's item; otherwise the error text, every word of it in any
order ("timed out" finds "read timed out after 60s", "refused 10.0.4.17" finds "connection to
10.0.4.17:5432 refused after 3 attempts").

What looks like an id is looked up as one only: hex digits and dashes with at least one digit and
one letter (a uuid's or an object id's start), or a run id (`run_...`). Such a search reads a
range of the primary key, not every message of the tenant (bench/inbox.py, id_search_p95_ms); a
search like "E11000 duplicate" has a space, so it searches the text. Six or more hex characters
that are all digits (a number, a date) or all letters (a word like "facade") match either: an id's
start holds no letter, or no digit, often enough (about one in seventeen and one in 360
six-character starts) to be found as one.
"""

from __future__ import annotations

import re
import uuid

from django.db.models import IntegerField, Model, Q, UUIDField

MIN_ID = 6
_HEX_ID = re.compile(r"^(?=.*[0-9])(?=.*[a-f])[0-9a-f-]{6,64}$")
_RUN_ID = re.compile(r"^run_[0-9a-f]{2,60}$")
_EITHER = re.compile(r"^(?=.*[0-9a-f])(?:[0-9-]{6,64}|[a-f-]{6,64})$")


def looks_like_id(q: str) -> bool:
    q = q.lower()
    return bool(_HEX_ID.match(q) or _RUN_ID.match(q))


def condition(model: type[Model], q: str) -> Q:
    """What `q` selects among `model`'s items (tenant and status are the filter's)."""
    if looks_like_id(q):
        return id_prefix(model, q.lower())
    cond = Q()
    for word in q.split():
        cond &= Q(error_message__icontains=word)
    if _EITHER.match(q.lower()):  # a number or a word in a message, or the start of an id: both
        cond |= id_prefix(model, q.lower())
    return cond


def id_prefix(model: type[Model], prefix: str) -> Q:
    """The items whose id starts with `prefix`, as a range of the primary key (its index)."""
    pk = model._meta.pk
    if isinstance(pk, IntegerField):  # a number id (webhook deliveries): the whole number only
        return Q(pk=int(prefix)) if prefix.isdigit() and len(prefix) < 19 else Q(pk__in=[])
    if isinstance(pk, UUIDField):
        digits = prefix.replace("-", "")
        if not re.fullmatch(r"[0-9a-f]{1,32}", digits):
            return Q(pk__in=[])
        low, high = uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
        return Q(pk__gte=low, pk__lte=high)
    # A text id (an object id's hex, `run_<hex>`): it ends in a hex digit, and the next one
    # bounds the range ('9' -> 'a': digits sort before letters in any collation) that serves
    # the index; startswith keeps it exact.
    cond = Q(pk__in=[])
    for start in {prefix, _id_head(pk) + prefix}:
        following = start[:-1] + ("a" if start[-1] == "9" else chr(ord(start[-1]) + 1))
        cond |= Q(pk__gte=start, pk__lt=following, pk__startswith=start)
    return cond


def _id_head(pk) -> str:
    """The fixed start of a kind's ids (`run_`), so their hex alone finds them too."""
    sample = pk.default() if callable(pk.default) else ""
    head = re.match(r"^[a-z]+_", sample) if isinstance(sample, str) else None
    return head.group(0) if head else ""
