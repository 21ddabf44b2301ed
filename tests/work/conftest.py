"""A real HTTP server on 127.0.0.1, in a thread, for the HTTP work's tests."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from executions.work import command


@dataclass
class Server:
    port: int
    requests: list[dict] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    switch: int = 503  # what /switch answers: a test sets it to 200 to make a retry succeed

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class Handler(BaseHTTPRequestHandler):
    """Routes: /json, /echo, /status/<code>, /big, /redirect?to=<url>, /slow (answers when the
    test ends), /switch (answers the server's `switch` status)."""

    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        record = {
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers),
            "body": body,
        }
        self.server.state.requests.append(record)
        path = urlsplit(self.path).path
        if path == "/json":
            self._send(200, json.dumps({"ok": True}), "application/json")
        elif path == "/echo":
            self._send(200, json.dumps(record), "application/json")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), "upstream says no: " + "x" * 2000, "text/plain")
        elif path == "/switch":
            self._send(self.server.state.switch, json.dumps({"switch": True}), "application/json")
        elif path == "/big":
            self._send(200, "y" * 200_000, "text/plain")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(urlsplit(self.path).query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/slow":
            self.server.state.release.wait(30)
            self._send(200, "late", "text/plain")
        else:
            self._send(404, "not found", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def _send(self, status: int, text: str, content_type: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that gave up (the timeout test) closes its end: not the server's failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def http_server() -> Iterator[Callable[[], Server]]:
    """`http_server()` starts a server on 127.0.0.1 (a new port each call); all stop at the end."""
    running: list[tuple[QuietServer, Server]] = []

    def start() -> Server:
        httpd = QuietServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.state = Server(port=httpd.server_address[1])
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        running.append((httpd, httpd.state))
        return httpd.state

    yield start
    for httpd, state in running:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def commands() -> Iterator[Callable[..., None]]:
    """`commands(allowed=True, env_names={...})`: this process runs commands as a worker started
    with --allow-commands would; restored after the test."""
    before = command.policy()
    yield lambda allowed=True, env_names=frozenset(): command.configure(
        allowed=allowed, env_names=env_names
    )
    command.configure(allowed=before.allowed, env_names=before.env_names)
