"""The README's shell examples run as written, in order, against `manage.py up`: "Your own work in
five minutes" (whose `# ->` lines are the exact answers) and every block of "REST API" (no answer
an HTTP error, and the answers the comments promise). A newcomer copies these first; six of them
were broken while every test passed (a variable read before it was set, a placeholder, an
operator's key for an admin's call, ...).

What changes from the README's text: its port and manifest (this test's own), `uv run` (this
Python), and its `sleep 1;` (a human's wait for the worker): here the script stops there and the
test waits until the work queued since the last stop is final."""

from __future__ import annotations

import json
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.test_up import ROOT, start_up

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (shutil.which("jq") and shutil.which("curl")), reason="needs jq and curl"
    ),
]

DONE = "__readme_segment_done__"
# Every answer on a line of its own; an HTTP error is a failure, named with its command.
CURL = (
    'curl() { command curl -sS --max-time 60 --fail-with-body "$@"'
    ' || printf "\\nFAILED: curl %s" "$*"; echo; }'
)
# The queues `up`'s worker serves: a job for another host (the README's web-01, a retried job's
# own host) waits for a worker that is not running here.
SERVED = ("default", "host-_any", f"host-{socket.gethostname()}")


def sh_blocks(start: str, end: str) -> list[str]:
    """The ```sh blocks of the README between the headings `start` and `end`."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(start) : text.index(end, text.index(start))]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def segments(blocks: list[str], port: int, manifest: Path) -> list[str]:
    """The blocks as one script cut at each `sleep 1;`, pointed at this test's server."""
    script = "\n".join(blocks)
    script = script.replace("localhost:8000", f"127.0.0.1:{port}")
    script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    script = script.replace("M=var/demo-manifest.json", f"M={manifest}")
    script = script.replace("uv run manage.py", f"{sys.executable} manage.py")
    assert "var/demo-manifest.json" not in script
    return script.split("sleep 1; ")


class Shell:
    """One bash for the whole script, so that its variables carry from block to block."""

    def __init__(self, env: dict) -> None:
        self.process = subprocess.Popen(
            ["bash"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.output: list[str] = []

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def run(self, text: str, timeout: float = 60) -> list[str]:
        self.process.stdin.write(f"{text}\necho {DONE}\n")
        self.process.stdin.flush()
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                # A quote left open, a command that never returns: the script is not as written.
                pytest.fail(f"the README's script did not finish this part:\n{text}\n{out}")
            if line == DONE:
                break
            out.append(line)
        self.output += out
        return out

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def settled(since) -> bool:
    """Nothing queued since `since` is still waiting or running (on the queues `up` serves)."""
    return not DBTaskResult.objects.filter(
        enqueued_at__gte=since, status__in=["READY", "RUNNING"], queue_name__in=SERVED
    ).exists()


@pytest.fixture
def up(tmp_path, process_env, wait_until):
    server, port, manifest, log = start_up(tmp_path, process_env(), wait_until)
    try:
        assert server.poll() is None, log.read_text()
        yield port, manifest
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def gives(line: str, answer: str) -> bool:
    """Whether an output line is the README's `# -> answer`: the same JSON (PostgreSQL orders an
    object's keys its own way), where `...` stands for the rest of the object."""
    partial = answer.endswith(",...}")
    try:
        got = json.loads(line)
        want = json.loads(answer.removesuffix(",...}") + "}" if partial else answer)
    except ValueError:
        return line == answer
    if partial:
        return isinstance(got, dict) and all(got.get(k) == v for k, v in want.items())
    return got == want


def run_in_order(parts: list[str], env: dict, wait_until) -> list[str]:
    shell = Shell(env)
    try:
        shell.run(CURL)
        for part in parts:
            since = timezone.now()
            shell.run(part)
            wait_until(lambda s=since: settled(s), timeout=60, message="the work just queued")
    finally:
        shell.close()
    return shell.output


def test_the_readmes_examples_run_as_written(up, process_env, wait_until) -> None:
    port, manifest = up
    env = process_env()

    five = sh_blocks("## Your own work in five minutes", "## Definitions in a file")
    assert len(five) == 2
    output = run_in_order(segments(five, port, manifest), env, wait_until)
    errors = [line for line in output if line.startswith(("FAILED:", "parse error", "bash:"))]
    assert not errors, (errors, output)
    promised = [
        line.removeprefix("# -> ")
        for block in five
        for line in block.splitlines()
        if line.startswith("# -> ")
    ]
    assert len(promised) == 6
    for answer in promised:
        assert any(gives(line, answer) for line in output), (answer, output)

    api = sh_blocks("## REST API", "## Use your existing client")
    assert len(api) >= 7
    output = run_in_order(segments(api, port, manifest), env, wait_until)
    errors = [line for line in output if line.startswith(("FAILED:", "parse error", "bash:"))]
    assert not errors, (errors, output)
    # What the comments promise, at the places a broken example showed something else.
    assert output[output.index('"failed"') + 1] == "true"  # charge-card failed; its fix's retry
    text = "\n".join(output)
    assert '"no live worker for host web-01"' in text
    assert '"status": "failure",\n  "errorMessage": "too many"' in text
    assert '"secret":"whsec_' in text  # the webhook subscription, an admin's call
