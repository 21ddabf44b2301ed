"""Standard Webhooks signing with the `standardwebhooks` package: secrets are `whsec_` and 24
random bytes in base64; while a rotation's overlap lasts, both secrets sign (the header holds
several signatures, space-separated, and a receiver accepts any that matches)."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def headers(signing: list[str], msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    signatures = " ".join(Webhook(secret).sign(msg_id, at, body) for secret in signing)
    return {
        "content-type": "application/json",
        "user-agent": "Redrive-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
