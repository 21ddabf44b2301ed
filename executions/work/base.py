"""What every kind of work shares: the context it runs with, its outcome, its logs, its failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from executions.errors import InvalidInput

# Each stream of captured logs keeps its last LOG_LIMIT_BYTES; one line at most LINE_LIMIT_CHARS.
LOG_LIMIT_BYTES = 64 * 1024
LINE_LIMIT_CHARS = 8 * 1024
STDERR_LEVELS = frozenset({"warn", "error"})


@dataclass
class WorkContext:
    """What the engine knows about the execution a unit runs for.

    `context` is what JavaScript code sees as its `context` global (ids, attempt); `key` is stable
    across retries of one item (handlers use it for idempotency); `timeout_s` is an outer limit
    (a workflow task's timeout, say): the unit's own limit applies too, the smaller one wins.
    """

    payload: Any = None
    context: dict = field(default_factory=dict)
    attempt: int = 1
    key: str = ""
    timeout_s: float | None = None
    # Who may run in the warm isolate a successful run of the same JavaScript code left (the
    # tenant); empty: a fresh isolate every time (executions/work/jshost.py).
    reuse: str = ""


@dataclass
class Logs:
    """Captured log lines, bounded: each entry is {timestamp, level, message} (the shape the
    engine stores), `truncated` says lines were dropped or cut, `bytes` counts all that was
    produced, kept or not."""

    entries: list[dict] = field(default_factory=list)
    truncated: bool = False
    bytes: int = 0

    @classmethod
    def of(cls, entries: list[dict], *, limit: int = LOG_LIMIT_BYTES) -> Logs:
        """Bound a list of entries (a Python handler's ctx.logs): per stream, the last `limit`
        bytes of lines are kept."""
        logs = cls()
        kept: dict[str, int] = {"stdout": 0, "stderr": 0}
        for entry in reversed(entries):
            message = str(entry.get("message", ""))
            size = len(message.encode(errors="replace")) + 1
            logs.bytes += size
            if len(message) > LINE_LIMIT_CHARS:
                message = message[:LINE_LIMIT_CHARS] + " …[cut]"
                logs.truncated = True
            stream = "stderr" if entry.get("level") in STDERR_LEVELS else "stdout"
            if kept[stream] + size > limit:
                logs.truncated = True
                continue
            kept[stream] += size
            logs.entries.append({**entry, "message": message})
        logs.entries.reverse()
        return logs

    def stdio(self) -> dict:
        """Mudbase's `logs` shape (FunctionExecutionStatusResponseDataLogs): info and debug lines
        on stdout, warn and error lines on stderr, each `<timestamp> [<level>] <message>`."""
        streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
        for entry in self.entries:
            stream = "stderr" if entry.get("level") in STDERR_LEVELS else "stdout"
            level = str(entry.get("level", "info")).upper()
            streams[stream].append(f"{entry.get('timestamp', '')} [{level}] {entry.get('message')}")
        return {
            "stdout": "\n".join(streams["stdout"]),
            "stderr": "\n".join(streams["stderr"]),
            "truncated": self.truncated,
            "bytes": self.bytes,
        }


@dataclass
class Outcome:
    """A unit that succeeded: its JSON-able result and what it logged."""

    result: Any
    logs: Logs = field(default_factory=Logs)


class WorkFailed(Exception):
    """A unit that failed. `message` and `error_class` are what the engine records as the error
    (and fingerprints); `stack` is the JavaScript stack, the Python traceback, or a command's
    stderr tail; `result` is what there is of an output (an HTTP response, a command's exit code
    and tails), else None."""

    def __init__(
        self,
        message: str,
        *,
        error_class: str,
        stack: str = "",
        logs: Logs | None = None,
        result: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class
        self.stack = stack
        self.logs = logs or Logs()
        self.result = result


class WorkTimeout(WorkFailed):
    """A unit stopped at its time limit (the engine records status "timeout", not "failed")."""

    def __init__(self, message: str, *, error_class: str = "TimeoutError", **kwargs: Any) -> None:
        super().__init__(message, error_class=error_class, **kwargs)


def log_entry(level: str, message: str) -> dict:
    return {"timestamp": timezone.now().isoformat(), "level": level, "message": message}


def effective_timeout(own_s: float, ctx: WorkContext) -> float:
    return min(own_s, ctx.timeout_s) if ctx.timeout_s else own_s


def check_timeout(unit: dict, where: str, *, maximum: float, default: float | None = None) -> None:
    """A unit's `timeout` (`default` when it has none; none at all is fine without a default):
    a number of seconds, more than 0 and at most `maximum`."""
    timeout = unit.get("timeout", default)
    if timeout is None and default is None:
        return
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= maximum
    ):
        raise InvalidInput(
            f"timeout must be a number of seconds, more than 0 and at most {maximum}",
            field=field_name(where, "timeout"),
        )


def field_name(where: str, name: str) -> str:
    """`actions[2]` + `url` -> `actions[2].url`; no prefix -> `url`."""
    return f"{where}.{name}" if where else name
