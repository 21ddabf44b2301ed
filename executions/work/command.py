"""Command work: seed 002's `command.exec`, a program run on the worker's host.

    {"command": "test", "args": ["-f", "app.ready"], "cwd": "/srv/app", "timeout": 30,
     "env": {"NAME": "value"}}

No shell: `command` and `args` are the argv. Only workers started with `--allow-commands` run
commands; `env` may set only the names the worker allows with `--command-env`, and the command
gets nothing else of the worker's environment but PATH (the worker's database URL and secret key
stay out of it). The result is {"exitCode", "stdout", "stderr", "durationMs"} with the last
TAIL_BYTES of each stream; a non-zero exit fails the unit with "exit code N" and the stderr
tail. At the timeout, the command's whole process group is killed, and so is whatever of the
group is left when the command itself exits.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

from executions.errors import InvalidInput

from . import base, secrets
from .base import Outcome, WorkContext, WorkFailed, WorkTimeout, effective_timeout, field_name

DEFAULT_TIMEOUT_S = 30
MAX_TIMEOUT_S = 24 * 3600
TAIL_BYTES = 16 * 1024
EXCERPT_CHARS = 500
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOT_ALLOWED = "this worker does not run commands (start it with --allow-commands)"


@dataclass(frozen=True)
class Policy:
    allowed: bool = False
    env_names: frozenset[str] = frozenset()


_policy = Policy()


def configure(*, allowed: bool, env_names: frozenset[str] | set[str] = frozenset()) -> None:
    """Set by `manage.py worker --allow-commands --command-env NAME,NAME` for this process."""
    global _policy
    _policy = Policy(allowed=allowed, env_names=frozenset(env_names))


def policy() -> Policy:
    return _policy


def validate(unit: dict, where: str = "", *, saving: bool = True) -> dict:
    command = unit.get("command")
    if not isinstance(command, str) or not command.strip() or "\0" in command:
        raise InvalidInput("command must be a non-empty string", field=field_name(where, "command"))
    args = unit.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) and "\0" not in a for a in args):
        raise InvalidInput("args must be a list of strings", field=field_name(where, "args"))
    cwd = unit.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not os.path.isabs(cwd)):
        raise InvalidInput("cwd must be an absolute path", field=field_name(where, "cwd"))
    base.check_timeout(unit, where, maximum=MAX_TIMEOUT_S, default=DEFAULT_TIMEOUT_S)
    env = secrets.validate_values(unit.get("env"), field_name(where, "env"), names=ENV_NAME_RE)
    return {**unit, "command": command, "args": list(args), "env": env}


def run(unit: dict, ctx: WorkContext) -> Outcome:
    if not _policy.allowed:
        raise WorkFailed(NOT_ALLOWED, error_class="CommandsNotAllowed")
    env = unit.get("env") or {}
    refused = sorted(set(env) - _policy.env_names)
    if refused:
        raise WorkFailed(
            f"env {', '.join(refused)} not allowed on this worker (--command-env)",
            error_class="CommandEnvNotAllowed",
        )
    hidden = secrets.secret_values(unit)
    timeout = effective_timeout(float(unit.get("timeout", DEFAULT_TIMEOUT_S)), ctx)
    argv = [unit["command"], *unit.get("args", [])]
    cwd = unit.get("cwd")
    started = time.monotonic()
    try:
        process = subprocess.Popen(  # noqa: S603 - an argv list, no shell: the point of this kind
            argv,
            cwd=cwd,
            env={
                "PATH": os.environ.get("PATH", DEFAULT_PATH),
                "LANG": "C.UTF-8",
                **{name: secrets.reveal(value) for name, value in env.items()},
            },
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, to kill it whole
            close_fds=True,
        )
    except FileNotFoundError as exc:
        missing = cwd if cwd and not os.path.isdir(cwd) else unit["command"]
        what = "cwd" if missing == cwd else "command"
        raise WorkFailed(f"{what} not found: {missing}", error_class="FileNotFoundError") from exc
    except PermissionError as exc:
        raise WorkFailed(
            f"permission denied: {unit['command']}", error_class="PermissionError"
        ) from exc
    except OSError as exc:
        raise WorkFailed(
            f"cannot run {unit['command']}: {exc}", error_class=type(exc).__name__
        ) from exc

    tails = {"stdout": b"", "stderr": b""}
    try:
        timed_out = not _collect(process, tails, started + timeout)
    except BaseException:
        _kill_group(process.pid)  # nothing left running behind an error here
        raise
    if timed_out:
        _kill_group(process.pid)
        _drain(process, tails)
    for stream in (process.stdout, process.stderr):
        stream.close()
    code = process.wait()
    result = {
        "exitCode": code,
        "stdout": secrets.redact(tails["stdout"].decode(errors="replace"), hidden),
        "stderr": secrets.redact(tails["stderr"].decode(errors="replace"), hidden),
        "durationMs": int((time.monotonic() - started) * 1000),
    }
    if timed_out:
        raise WorkTimeout(
            f"command timed out after {timeout:g}s", stack=result["stderr"], result=result
        )
    if code != 0:
        status = f"exit code {code}" if code > 0 else f"killed by {signal.Signals(-code).name}"
        excerpt = result["stderr"].strip()[-EXCERPT_CHARS:]
        raise WorkFailed(
            f"{status}: {excerpt}" if excerpt else status,
            error_class="CommandFailed",
            stack=result["stderr"],
            result=result,
        )
    return Outcome(result=result)


def _collect(process: subprocess.Popen, tails: dict[str, bytes], deadline: float) -> bool:
    """Read both streams, keeping their tails, until the command has exited and its streams are
    closed; False at the deadline. When the command exits, what is left of its process group is
    killed (nothing of a finished command outlives it), which closes the streams it held."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ, "stdout")
    selector.register(process.stderr, selectors.EVENT_READ, "stderr")
    pidfd = os.pidfd_open(process.pid)  # readable once the command has exited (Linux)
    selector.register(pidfd, selectors.EVENT_READ, "exit")
    try:
        while selector.get_map():
            left = deadline - time.monotonic()
            events = selector.select(left) if left > 0 else []
            if not events:
                return False
            for key, _ in events:
                if key.data == "exit":
                    selector.unregister(pidfd)
                    _kill_group(process.pid)  # not reaped yet, so the group id is still its
                elif not _read_into(tails, key.fileobj, key.data):
                    selector.unregister(key.fileobj)
        return True
    finally:
        selector.close()
        os.close(pidfd)


def _read_into(tails: dict[str, bytes], stream, name: str) -> bool:
    chunk = os.read(stream.fileno(), 1 << 16)
    if not chunk:
        return False
    tails[name] = (tails[name] + chunk)[-TAIL_BYTES:]
    return True


def _drain(process: subprocess.Popen, tails: dict[str, bytes]) -> None:
    """After a kill, what the pipes still hold, without waiting on a process that escaped the
    group and keeps them open."""
    for name, stream in (("stdout", process.stdout), ("stderr", process.stderr)):
        os.set_blocking(stream.fileno(), False)
        with contextlib.suppress(BlockingIOError):
            while _read_into(tails, stream, name):
                pass


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
