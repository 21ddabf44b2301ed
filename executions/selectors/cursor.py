"""The one keyset cursor, for the console's inbox, `GET /api/failures` and every seed's list
alike: a position in rows newest first by a time field, then pk (the last row's kind, pk and
value of that field), opaque to the caller."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Model, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan

from executions import kinds, validation
from executions.errors import InvalidInput

_BAD = "cursor is not a cursor this server gave out"


@dataclass(frozen=True)
class Cursor:
    when: datetime
    kind: str
    pk: str
    # The time field the list orders this kind by (the inbox: the kind's time_field), so that
    # a cursor of one list is refused by a list in another order rather than read as a position.
    field: str

    @classmethod
    def after_row(cls, kind: str, field: str, obj: Model) -> Cursor:
        return cls(getattr(obj, field), kind, str(obj.pk), field)

    def encode(self) -> str:
        raw = f"{self.when.isoformat()}|{self.kind}|{self.field}|{self.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str, fields: Mapping[str, str]) -> Cursor:
        """The cursor `value` encodes, if it is one of a list ordering each kind of `fields` by
        the time field given for it; any other value is a 400 naming `cursor`."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            when_s, kind, field, pk = raw.split("|", 3)
            # In range and in UTC, like any filter time: an edited one must not overflow.
            when = validation.iso_datetime(when_s, "cursor")
        except (binascii.Error, UnicodeDecodeError, ValueError, InvalidInput):
            when = kind = field = pk = None
        if when is None or kind not in fields or fields[kind] != field or not pk or "\x00" in pk:
            raise InvalidInput(_BAD, field="cursor")
        try:
            kinds.get(kind).model._meta.pk.to_python(pk)
        except Exception:  # a tampered pk is a bad cursor, never a 500
            raise InvalidInput(_BAD, field="cursor") from None
        return cls(when, kind, pk, field)

    def rows_after(self, qs: QuerySet) -> QuerySet:
        """The rows of `qs` (of this cursor's kind) after this position: (field, pk) below it."""
        pk = qs.model._meta.pk
        return qs.filter(
            TupleLessThan(Tuple(F(self.field), F(pk.name)), (self.when, pk.to_python(self.pk)))
        )


def keyset_page(
    qs: QuerySet, kind: str, field: str, limit: int, cursor: str | None
) -> tuple[list, str | None]:
    """One page of a list of one kind: `limit` rows of `qs` newest first by (field, pk) after
    `cursor`, and the cursor of the next page (None on the last). No COUNT(*): one indexed range
    scan per page, however deep."""
    qs = qs.order_by(f"-{field}", "-pk")
    if cursor:
        qs = Cursor.decode(cursor, {kind: field}).rows_after(qs)
    rows = list(qs[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, Cursor.after_row(kind, field, rows[-1]).encode()
