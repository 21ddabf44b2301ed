"""The one cursor of the failures list, for the console's inbox and `GET /api/failures` alike:
the last row's (time, kind, pk), opaque to the caller."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from executions import kinds, validation
from executions.errors import InvalidInput

_BAD = "cursor is not a cursor this server gave out"


@dataclass(frozen=True)
class Cursor:
    when: datetime
    kind: str
    pk: str

    def encode(self) -> str:
        raw = f"{self.when.isoformat()}|{self.kind}|{self.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            when_s, kind, pk = raw.split("|", 2)
            # In range and in UTC, like any filter time: an edited one must not overflow.
            when = validation.iso_datetime(when_s, "cursor")
        except (binascii.Error, UnicodeDecodeError, ValueError, InvalidInput):
            when = kind = pk = None
        if when is None or kind not in kinds.BY_NAME or not pk or "\x00" in pk:
            raise InvalidInput(_BAD, field="cursor")
        try:
            kinds.get(kind).model._meta.pk.to_python(pk)
        except Exception:
            raise InvalidInput(_BAD, field="cursor") from None
        return cls(when, kind, pk)
