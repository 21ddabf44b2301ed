"""JavaScript work: the body of an async function run in V8, what seed 000's product runs.

    {"code": "return payload.a + 1;",
     "env": {"API_KEY": {"value": "...", "secret": true}, "REGION": "eu"},
     "limits": {"timeout": 30000, "memoryMb": 64}}

The code sees `payload`, `context`, `env` and `console`; its return value (JSON) is the result, a
throw fails it. No `require`, `fetch`, `process`, files or database: plain V8 has none. It runs in
the thread's sandbox host process (executions/work/jshost.py), in an isolate of its own, within
`limits.timeout` ms (default 30000) and `limits.memoryMb` (default REDRIVE_JS_MEMORY_MB).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from executions.errors import InvalidInput

from . import secrets
from .base import (
    LINE_LIMIT_CHARS,
    LOG_LIMIT_BYTES,
    Logs,
    Outcome,
    WorkContext,
    WorkFailed,
    WorkTimeout,
    effective_timeout,
    field_name,
)

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 15 * 60 * 1000
MIN_MEMORY_MB = 16
MAX_MEMORY_MB = 1024
MAX_CODE_BYTES = 256 * 1024
RESULT_LIMIT_BYTES = 1024 * 1024
# How long past the code's own timeout the host may take to answer before it is killed (it stops
# the code itself at the timeout; this is for a host that hangs or dies).
KILL_GRACE_S = 5.0
COMPILE_TIMEOUT_S = 10.0
HOST_SCRIPT = Path(__file__).with_name("jshost.py")
ENV_NAME_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
USER_SOURCE = "function.js"
# Frames of the harness and of the host's own calls into the isolate: not the user's code.
_HARNESS_FRAME = re.compile(r"^\s*at .*(?:redrive-sandbox\.js|<anonymous>:\d+:\d+\)?$)")
_MEMORY_WORDS = ("out of memory", "MemoryError", "Cannot allocate memory", "allocation failed")
# How a process dies when an allocation fails: V8's immediate crash (SIGTRAP/SIGILL), abort(),
# the OOM killer.
_ABORTS = {signal.SIGTRAP, signal.SIGILL, signal.SIGABRT, signal.SIGKILL}


def validate(unit: dict, where: str = "", *, saving: bool = True) -> dict:
    """saving=False (at run time) skips compiling: running compiles it anyway."""
    code = unit.get("code")
    code_field = field_name(where, "code")
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("code must be a non-empty string", field=code_field)
    if len(code.encode()) > MAX_CODE_BYTES:
        raise InvalidInput(f"code is longer than {MAX_CODE_BYTES} bytes", field=code_field)
    clean: dict[str, Any] = {**unit, "code": code}
    clean["env"] = secrets.validate_values(
        unit.get("env"), field_name(where, "env"), names=ENV_NAME_RE
    )
    limits = unit.get("limits") or {}
    limits_field = field_name(where, "limits")
    if not isinstance(limits, dict) or set(limits) - {"timeout", "memoryMb"}:
        raise InvalidInput("limits may hold timeout (ms) and memoryMb", field=limits_field)
    for name, low, high in (
        ("timeout", 1, MAX_TIMEOUT_MS),
        ("memoryMb", MIN_MEMORY_MB, MAX_MEMORY_MB),
    ):
        value = limits.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            raise InvalidInput(
                f"limits.{name} must be an integer from {low} to {high}",
                field=f"{limits_field}.{name}",
            )
    clean["limits"] = dict(limits)
    if saving:
        answer = _ask({"op": "compile", "code": code}, COMPILE_TIMEOUT_S)
        if answer is None:
            raise InvalidInput(
                "code could not be checked (the sandbox did not answer)", field=code_field
            )
        if not answer["ok"]:
            raise InvalidInput(
                f"code does not compile: {_syntax_message(answer['error'])}", field=code_field
            )
    return clean


def run(unit: dict, ctx: WorkContext) -> Outcome:
    limits = unit.get("limits") or {}
    timeout_ms = int(
        effective_timeout(limits.get("timeout", DEFAULT_TIMEOUT_MS) / 1000, ctx) * 1000
    )
    memory_mb = limits.get("memoryMb") or settings.REDRIVE_JS_MEMORY_MB
    env = {name: secrets.reveal(value) for name, value in (unit.get("env") or {}).items()}
    hidden = secrets.secret_values(unit)
    request = {
        "op": "run",
        "code": unit["code"],
        "args": json.dumps(
            {"payload": ctx.payload, "context": ctx.context, "env": env}, cls=DjangoJSONEncoder
        ),
        "timeoutMs": max(timeout_ms, 1),
        "memoryMb": memory_mb,
        "logLimit": LOG_LIMIT_BYTES,
        "lineLimit": LINE_LIMIT_CHARS,
        "reuse": ctx.reuse,
    }
    host = _host()
    answer = host.ask(request, timeout_ms / 1000 + KILL_GRACE_S)
    if answer is None:
        if host.alive():
            host.kill()
            raise WorkTimeout(f"JavaScript timed out after {timeout_ms} ms")
        raise _died(host, memory_mb)
    logs = _logs(answer.get("logs"), hidden)
    if answer.get("timeout"):
        raise WorkTimeout(f"JavaScript timed out after {timeout_ms} ms", logs=logs)
    if answer.get("memory"):
        raise _memory(memory_mb, logs)
    if not answer["ok"]:
        error = answer["error"]
        if "line" in error:  # did not compile
            raise WorkFailed(
                _syntax_message(error),
                error_class=error["name"],
                stack=error.get("source", ""),
                logs=logs,
            )
        raise WorkFailed(
            secrets.redact(error["message"], hidden) or error["name"],
            error_class=error["name"],
            stack=secrets.redact(user_stack(error["stack"], answer["offset"]), hidden),
            logs=logs,
        )
    text = answer["result"]
    if len(text.encode()) > RESULT_LIMIT_BYTES:
        raise WorkFailed(
            f"the function's result is larger than {RESULT_LIMIT_BYTES} bytes",
            error_class="ResultTooLarge",
            logs=logs,
        )
    return Outcome(result=secrets.redact(json.loads(text), hidden), logs=logs)


def user_stack(stack: str, offset: int) -> str:
    """A V8 stack with the sandbox's own frames left out and line numbers of the user's code
    counted from its first line."""
    lines = []
    for line in stack.splitlines():
        if _HARNESS_FRAME.match(line):
            continue
        lines.append(
            re.sub(
                re.escape(USER_SOURCE) + r":(\d+)",
                lambda m: f"{USER_SOURCE}:{int(m.group(1)) - offset}",
                line,
            )
        )
    return "\n".join(lines)


def _syntax_message(error: dict) -> str:
    line = f" (line {error['line']})" if error.get("line") else ""
    return f"{error['name']}: {error['message']}{line}"


def _logs(raw: dict | None, hidden: list[str]) -> Logs:
    if not raw:
        return Logs()
    return Logs(
        entries=secrets.redact(raw["entries"], hidden),
        truncated=raw["truncated"],
        bytes=raw["bytes"],
    )


def _memory(memory_mb: int, logs: Logs | None = None, stack: str = "") -> WorkFailed:
    return WorkFailed(
        f"JavaScript exceeded its memory limit of {memory_mb} MB",
        error_class="MemoryLimitExceeded",
        stack=stack,
        logs=logs,
    )


def _died(host: _Host, memory_mb: int) -> WorkFailed:
    """The host stopped while running code. Under its memory limit, V8 and ICU abort the process
    when an allocation fails (V8 prints why, mostly, after a long C stack); the kernel's OOM killer
    sends SIGKILL. Anything else is a crash."""
    code = host.process.returncode
    how = f"by {signal.Signals(-code).name}" if code < 0 else f"with exit status {code}"
    stack = f"the JavaScript sandbox process stopped {how}\n{host.stderr_tail()}".strip()
    if any(word in host.stderr_tail(1 << 16) for word in _MEMORY_WORDS) or -code in _ABORTS:
        return _memory(memory_mb, stack=stack)
    return WorkFailed(
        f"the JavaScript sandbox process stopped {how}", error_class="SandboxCrashed", stack=stack
    )


# --- the sandbox host processes: one per worker thread ---------------------------------------


class _Host:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in kill()
        # -I: none of the worker's environment or paths; the host needs only the venv's
        # mini-racer. Same process group as the worker, so stopping the worker stops it too.
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter and our own script
            [sys.executable, "-I", str(HOST_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env={"LANG": "C.UTF-8"},
            close_fds=True,
        )
        self.buffer = b""

    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, request: dict, timeout: float) -> dict | None:
        """Send a request and wait for the answer; None when the host died or did not answer
        in time (the caller tells which by `alive()`)."""
        deadline = time.monotonic() + timeout
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            self.process.wait()
            return None
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.process.wait()
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def stderr_tail(self, size: int = 4096) -> str:
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - size))
        return self.stderr.read().decode(errors="replace").strip()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        self.close()

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self.stderr.close()


_local = threading.local()
_hosts: list[_Host] = []
_hosts_lock = threading.Lock()


def _host() -> _Host:
    host: _Host | None = getattr(_local, "host", None)
    # A forked process (an RQ work-horse) must not share its parent's host.
    if host is None or host.pid != os.getpid() or not host.alive():
        if host is not None and host.pid == os.getpid():
            host.kill()
        host = _local.host = _Host()
        with _hosts_lock:
            _hosts[:] = [h for h in _hosts if h.alive()] + [host]
    return host


def host_pid() -> int:
    """The pid of this thread's sandbox host process (started if need be): for monitoring."""
    return _host().process.pid


def _ask(request: dict, timeout: float) -> dict | None:
    host = _host()
    answer = host.ask(request, timeout)
    if answer is None and host.alive():
        host.kill()
    return answer


@atexit.register
def _stop_hosts() -> None:
    """Close the hosts' stdin: each one finishes what it runs (at most its timeout) and exits."""
    with _hosts_lock:
        for host in _hosts:
            if host.pid == os.getpid() and host.alive():
                with contextlib.suppress(OSError):
                    host.process.stdin.close()
