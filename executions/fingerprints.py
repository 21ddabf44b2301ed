"""Error fingerprints: "the same failure" regardless of the ids, numbers and values in its message.

fingerprint = the message with quoted values, uuids, hex ids, IPs and numbers normalised away,
hashed to 16 hex characters: the same error is one group whichever kinds and names it happens in
(issue 20). Only a failure without a message is told apart by its kind, handler and error type.
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
    text = normalise(message)
    basis = text if text else "\x1f".join((kind, handler or "", error_type or "", text))
    return hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()[:16]
