"""Error fingerprints: "the same failure" regardless of the ids, numbers and values in its message.

fingerprint = kind + handler + error type + the message with quoted values, uuids, hex ids, IPs and
numbers normalised away, hashed to 16 hex characters.
"""

from __future__ import annotations

import hashlib
import re

_PATTERNS = [
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'?'"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"\b[0-9a-fA-F]{12,}\b"), "<hex>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<ip>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise(message: str | None) -> str:
    text = (message or "")[:2000]
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text.strip().lower()


def fingerprint(kind: str, handler: str, error_type: str, message: str | None) -> str:
    basis = "\x1f".join((kind, handler or "", error_type or "", normalise(message)))
    return hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()[:16]
