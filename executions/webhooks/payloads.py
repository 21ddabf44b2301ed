"""What a delivery's body is, per its subscription's format: Standard Webhooks' own
`{"type", "timestamp", "data"}`, or a message a Slack or Teams incoming webhook accepts (the
failure's name, error, count and a link to the console)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.urls import reverse

TITLES = {
    "automation.execution.retried": "Automation execution retried",
    "failure.new_group": "New failure",
    "failure.regressed": "Failure regressed",
    "retry.finished": "Retry finished",
    "bulk_retry.finished": "Bulk retry finished",
    "execution.failed": "Execution failed",
}


def standard(event_type: str, at, data: dict) -> dict:
    return {"type": event_type, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}


def body(fmt: str, payload: dict) -> bytes:
    if fmt == "slack":
        message: dict[str, Any] = {"text": _text(payload, "<{link}|Open in Redrive>")}
    elif fmt == "teams":
        message = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": TITLES.get(payload["type"], payload["type"]),
            "title": TITLES.get(payload["type"], payload["type"]),
            "text": _text(payload, "[Open in Redrive]({link})", title=False),
            "potentialAction": [
                {
                    "@type": "OpenUri",
                    "name": "Open in Redrive",
                    "targets": [{"os": "default", "uri": _link(payload["data"])}],
                }
            ],
        }
    else:
        message = payload
    return json.dumps(message, separators=(",", ":"), default=str).encode()


def _text(payload: dict, link: str, *, title: bool = True) -> str:
    data = payload.get("data") or {}
    name = data.get("name") or data.get("executionId") or data.get("bulkId") or ""
    lines = [f"*{TITLES.get(payload['type'], payload['type'])}*: {name}" if title else str(name)]
    error = data.get("error")
    if error:
        lines.append(f"Error: {str(error)[:300]}")
    if data.get("count") is not None:
        lines.append(f"Count: {data['count']}")
    if data.get("outcome"):
        lines.append(f"Outcome: {data['outcome']}")
    lines.append(link.format(link=_link(data)))
    return "\n".join(lines)


def _link(data: dict) -> str:
    base = settings.REDRIVE_CONSOLE_URL.rstrip("/")
    kind, item = data.get("kind"), data.get("id") or data.get("executionId")
    if kind and item:
        return base + reverse("detail", args=[kind, item])
    if data.get("fingerprint"):
        return f"{base}{reverse('inbox')}?fingerprint={data['fingerprint']}"
    return base + reverse("inbox")
