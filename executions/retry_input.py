"""A retry's own options, checked once for the API, the console and the CLI: the operator's
`reason` (kept in the audit row) and an edited `input` (what the retried attempt runs with),
validated against the kind and compared with the original (the diff the console shows before
confirming, and the audit keeps).

What an edited input replaces, per kind: a function execution's payload, a job's operation data
(its type stays: the permission checked is the original's), a run's inputs (prop values), a
workflow execution's input and an automation execution's event data. Functions, jobs and runs
clone: the new attempt gets the edited input. Automations and workflows retry the same record:
its input changes, and the audit row keeps the one it had and the diff.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Model

from .errors import InvalidInput
from .work import secrets

MAX_REASON = 500
# An edited input is typed by a person in a form: 64 KB is far more than that, and keeps one
# audit row (which holds the input before and after) small.
MAX_INPUT_BYTES = 64 * 1024
# The diff the audit keeps and the console shows: its first entries.
MAX_DIFF = 200

# kind -> what the editor edits, in words.
EDITABLE = {
    "function": "payload",
    "automation": "event data",
    "job": "operation data",
    "workflow": "input",
    "run": "inputs",
}


def clean_reason(value: Any, field: str = "reason") -> str:
    """The reason as kept: text, trimmed, at most MAX_REASON characters (else a 400)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    value = value.strip()
    if len(value) > MAX_REASON:
        raise InvalidInput(
            f"{field} is too long ({len(value)} characters; at most {MAX_REASON})", field=field
        )
    if "\x00" in value:  # PostgreSQL keeps no NUL in text or JSON: a 400, not its DataError
        raise InvalidInput(f"{field} must not contain NUL characters", field=field)
    return value


def editable(kind: str) -> bool:
    return kind in EDITABLE


def original(kind: str, obj: Model) -> Any:
    """What the editor starts from: the item's input as stored."""
    if kind == "job":
        return (obj.operation or {}).get("data", {})
    return {
        "function": lambda: obj.payload,
        "automation": lambda: obj.trigger_data,
        "workflow": lambda: obj.input,
        "run": lambda: obj.prop_values,
    }[kind]()


def shown(kind: str, obj: Model) -> str:
    """The editor's prefill: the original, pretty, its secrets masked (a mask left as it was
    keeps the stored secret: secrets.keep_masked)."""
    return json.dumps(secrets.masked_deep(original(kind, obj)), indent=2, sort_keys=True)


def parse(text: str, field: str = "input") -> Any:
    """The console's textarea: JSON text, or a 400 saying where it is not."""
    if len(text.encode()) > MAX_INPUT_BYTES:
        raise InvalidInput(f"{field} is too large (at most {MAX_INPUT_BYTES} bytes)", field=field)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{field} is not valid JSON: {exc}", field=field) from None


def prepare(kind: str, obj: Model, value: Any, field: str = "input") -> tuple[Any, dict]:
    """(what the retry stores, the audit's record of the change) for an edited input, or a 400
    naming `field`. Jobs: the value is the whole new operation (same type, new data)."""
    if not editable(kind):
        raise InvalidInput(f"{field} cannot be edited for a {kind}", field=field)
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object", field=field)
    if len(json.dumps(value).encode()) > MAX_INPUT_BYTES:
        raise InvalidInput(f"{field} is too large (at most {MAX_INPUT_BYTES} bytes)", field=field)
    before = original(kind, obj)
    after = secrets.keep_masked(value, before)
    stored: Any = after
    if kind == "job":
        from .kinds.jobs import start as jobs_start

        # Checked as a new job's operation would be, but a handler the original named itself
        # may stay (the demo's jobs do; the type's permission is still the one checked).
        kept = "handler" in after and after.get("handler") == before.get("handler")
        checked = {k: v for k, v in after.items() if not (kept and k == "handler")}
        try:
            jobs_start.clean_operation({"type": obj.operation_type, "data": checked})
            stored = {"type": obj.operation_type, "data": after}
        except InvalidInput as exc:
            named = (exc.field or "").replace("operation.data", field, 1) or field
            message = exc.message.replace("operation.data", field, 1)
            raise InvalidInput(message, field=named) from None
    # The audit keeps what a person may read: secrets masked, as the console shows them.
    before_shown, after_shown = secrets.masked_deep(before), secrets.masked_deep(after)
    change = {"before": before_shown, "diff": diff(before_shown, after_shown)}
    return stored, change


def diff(before: Any, after: Any, path: str = "") -> list[dict]:
    """What changed from `before` to `after`, as [{path, op: added|removed|changed, before,
    after}] (objects compared key by key, anything else as a whole), at most MAX_DIFF."""
    out: list[dict] = []
    _diff(before, after, path, out)
    return out[:MAX_DIFF]


def _diff(before: Any, after: Any, path: str, out: list[dict]) -> None:
    if len(out) >= MAX_DIFF:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in after:
                out.append({"path": sub, "op": "removed", "before": before[key]})
            elif key not in before:
                out.append({"path": sub, "op": "added", "after": after[key]})
            else:
                _diff(before[key], after[key], sub, out)
        return
    if before != after or type(before) is not type(after):
        out.append(
            {"path": path or "(whole input)", "op": "changed", "before": before, "after": after}
        )
