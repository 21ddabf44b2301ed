"""Secret values in units of work: a function's `environment` values, a command's `env` values and
HTTP headers.

A value is secret when it is written `{"value": "...", "secret": true}` instead of a plain string.
The work gets the real value (`reveal`); everything shown back (API, console, admin, logs, audit)
gets `masked(...)`, which keeps the name and replaces the value with a mask; whatever a unit
logs or returns is passed through `redact` so a secret it echoes is masked there too.
"""

from __future__ import annotations

import re
from typing import Any

from executions.errors import InvalidInput

MASK = "********"
# A long secret keeps its last characters in the mask, so an operator can tell which one is set;
# a short one would give too much away.
SHOW_TAIL_FROM = 20
SHOWN_TAIL = 4
# Shorter secrets are not searched for in output: masking every "ab" would garble it.
REDACT_FROM = 4


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get("secret") is True


def reveal(value: Any) -> str:
    """The real value of a plain or secret value."""
    return str(value["value"]) if isinstance(value, dict) else str(value)


def mask(value: Any) -> str:
    """A secret's mask: never the whole value."""
    text = reveal(value)
    return MASK + text[-SHOWN_TAIL:] if len(text) >= SHOW_TAIL_FROM else MASK


def masked_values(values: dict[str, Any]) -> dict[str, Any]:
    """An env/headers mapping for display: secret values masked, plain ones as they are."""
    return {
        name: {"secret": True, "value": mask(value)} if is_secret(value) else value
        for name, value in values.items()
    }


SECRET_MAPPINGS = ("env", "headers")


def masked(unit: dict) -> dict:
    """A unit for display: its secret env and header values masked."""
    shown = dict(unit)
    for key in SECRET_MAPPINGS:
        if isinstance(unit.get(key), dict):
            shown[key] = masked_values(unit[key])
    return shown


def masked_deep(value: Any) -> Any:
    """Any stored definition (a rule's actions, a run's nodes, a job's operation, ...) for
    display: every secret value in it, wherever it is, replaced by its mask."""
    if is_secret(value):
        return {"secret": True, "value": mask(value)}
    if isinstance(value, list):
        return [masked_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: masked_deep(v) for k, v in value.items()}
    return value


def keep_masked(submitted: Any, stored: Any) -> Any:
    """A definition submitted back (an admin form shows it masked): each secret left as its
    mask, where the stored one was at the same place, keeps its stored value."""
    if is_secret(submitted) and is_secret(stored) and submitted.get("value") == mask(stored):
        return stored
    if isinstance(submitted, list) and isinstance(stored, list):
        return [
            keep_masked(v, stored[i] if i < len(stored) else None) for i, v in enumerate(submitted)
        ]
    if isinstance(submitted, dict) and isinstance(stored, dict) and not is_secret(submitted):
        return {k: keep_masked(v, stored.get(k)) for k, v in submitted.items()}
    return submitted


def _secret_paths(value: Any, path: str, found: dict[str, Any]) -> dict[str, Any]:
    if is_secret(value):
        found[path] = value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _secret_paths(v, f"{path}[{i}]", found)
    elif isinstance(value, dict):
        for k, v in value.items():
            _secret_paths(v, f"{path}.{k}" if path else str(k), found)
    return found


def unmatched_masks(value: Any, prefix: str = "") -> list[str]:
    """Where a definition still holds a mask as a secret's value (what keep_masked left)."""
    found = _secret_paths(value, prefix, {})
    return sorted(p for p, v in found.items() if str(v.get("value", "")).startswith(MASK))


def changed_secret_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Where a secret was added, changed or removed between two versions of a definition
    (`actions[0].headers.Authorization`): what an audit row names, never the values."""
    old, new = _secret_paths(before, prefix, {}), _secret_paths(after, prefix, {})
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


def secret_values(unit: dict) -> list[str]:
    """The real values of a unit's secrets, to redact from what it logs and returns."""
    found = []
    for key in SECRET_MAPPINGS:
        values = unit.get(key)
        if isinstance(values, dict):
            found += [reveal(v) for v in values.values() if is_secret(v)]
    return found


def changed_secrets(before: dict, after: dict) -> list[str]:
    """`env.NAME` / `headers.NAME` of each secret added, changed or removed between two versions
    of a unit (what an audit row names; never the values)."""
    changed = []
    for key in SECRET_MAPPINGS:
        old = before.get(key) if isinstance(before.get(key), dict) else {}
        new = after.get(key) if isinstance(after.get(key), dict) else {}
        for name in sorted(set(old) | set(new)):
            was, now = old.get(name), new.get(name)
            if (is_secret(was) or is_secret(now)) and was != now:
                changed.append(f"{key}.{name}")
    return changed


def redact(value: Any, secrets: list[str]) -> Any:
    """`value` (a string, or JSON-able data) with every occurrence of a secret masked."""
    secrets = sorted({s for s in secrets if len(s) >= REDACT_FROM}, key=len, reverse=True)
    if not secrets:
        return value
    return _redact(value, secrets)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, mask(secret))
        return value
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    if isinstance(value, dict):
        return {_redact(k, secrets): _redact(v, secrets) for k, v in value.items()}
    return value


def validate_values(values: Any, field: str, *, names: re.Pattern[str]) -> dict[str, Any]:
    """An env or headers mapping as a unit may hold it: names matching `names`, each value a
    string or a secret `{"value": "...", "secret": true}`."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidInput(f"{field} must be an object of names to values", field=field)
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if not names.match(name):
            raise InvalidInput(f"{field}: {name!r} is not a valid name", field=f"{field}.{name}")
        if isinstance(value, str):
            clean[name] = value
        elif (
            isinstance(value, dict)
            and isinstance(value.get("value"), str)
            and isinstance(value.get("secret", False), bool)
            and set(value) <= {"value", "secret"}
        ):
            clean[name] = {"value": value["value"], "secret": value.get("secret", False)}
        else:
            raise InvalidInput(
                f'{field}.{name} must be a string or {{"value": "...", "secret": true}}',
                field=f"{field}.{name}",
            )
    return clean
