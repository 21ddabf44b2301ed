"""Counting handler calls across processes, for the tests that prove what ran (and what did not
run again): the `counter` handler (tests/handlers.py) appends the key of each call to the file
that REDRIVE_TEST_CALLS names - a fresh one per test (the `handler_calls` fixture) that the
workers a test starts inherit through their environment."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

ENV = "REDRIVE_TEST_CALLS"


def record(key: str) -> None:
    # One write of one line to a file opened for appending: lines from concurrent workers never
    # interleave, and a call is counted as soon as it happens, as a committed row was.
    fd = os.open(os.environ[ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{key}\n".encode())
    finally:
        os.close(fd)


class HandlerCalls:
    """What the counter handler recorded in this test, by key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def counts(self) -> Counter[str]:
        if not self.path.exists():
            return Counter()
        return Counter(self.path.read_text().splitlines())

    def count(self, key: str) -> int:
        return self.counts()[key]
