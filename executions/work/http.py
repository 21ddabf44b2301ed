"""HTTP work: one request to an allowed host.

    {"url": "https://api.example.com/v1/sync", "method": "POST",
     "headers": {"Authorization": {"value": "Bearer ...", "secret": true}},
     "json": {"full": true},            # or "body": "raw text"
     "timeout": 30,                     # seconds, for each network step and the whole exchange
     "expectStatus": "2xx"}             # an int, "2xx"-style class, or a list of those

The result is {"status", "headers", "body", "truncated"} (plus "json" when the response is JSON and
whole); a status outside expectStatus fails the unit with the status and a bounded excerpt of the
body.

SSRF: every connection, redirects included, goes through GuardedBackend, which resolves the host
itself, checks every address against REDRIVE_HTTP_ALLOW and connects to the address it checked, so
DNS cannot answer differently between the check and the connection (TLS still verifies the
certificate against the host name). Environment proxies are ignored: a proxy would connect on our
behalf, unchecked.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

import httpcore
import httpx
from django.conf import settings

from executions.errors import InvalidInput

from . import base, secrets
from .allow import AllowList, literal_addresses
from .base import Outcome, WorkContext, WorkFailed, WorkTimeout, effective_timeout, field_name

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_TIMEOUT_S = 30
MAX_TIMEOUT_S = 900
BODY_LIMIT_BYTES = 64 * 1024
EXCERPT_CHARS = 500
MAX_REDIRECTS = 10
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_STATUS_CLASS_RE = re.compile(r"^[1-5]xx$")


class HostNotAllowed(httpcore.ConnectError):
    """Raised before connecting to an address REDRIVE_HTTP_ALLOW does not allow."""


def allow_list() -> AllowList:
    return AllowList.of(settings.REDRIVE_HTTP_ALLOW)


# --- validation ----------------------------------------------------------------------------------


def validate(unit: dict, where: str = "", *, saving: bool = True) -> dict:
    """saving=False (at run time) leaves the host to the connection's check, which refuses it
    with the same message after resolving names too."""
    url_field = field_name(where, "url")
    raw = unit.get("url")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("url must be a non-empty string", field=url_field)
    try:
        url = httpx.URL(raw.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidInput(f"url is not a valid URL: {exc}", field=url_field) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidInput("url must be an http:// or https:// URL with a host", field=url_field)
    if url.userinfo:
        raise InvalidInput(
            "url must not carry credentials: send them in a secret header", field=url_field
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    for ip in literal_addresses(url.host) if saving else []:
        if not allow_list().permits(url.host, ip, port):
            raise InvalidInput(f"host not allowed: {url.host}", field=url_field)

    clean: dict[str, Any] = {**unit, "url": str(url)}
    method = unit.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidInput(
            f"method must be one of {', '.join(METHODS)}", field=field_name(where, "method")
        )
    clean["method"] = method.upper()
    clean["headers"] = secrets.validate_values(
        unit.get("headers"), field_name(where, "headers"), names=HEADER_NAME_RE
    )
    if "body" in unit and "json" in unit:
        raise InvalidInput("give body or json, not both", field=field_name(where, "body"))
    if "body" in unit and not isinstance(unit["body"], str):
        raise InvalidInput(
            "body must be a string (use json for data)", field=field_name(where, "body")
        )
    base.check_timeout(unit, where, maximum=MAX_TIMEOUT_S, default=DEFAULT_TIMEOUT_S)
    expect = unit.get("expectStatus", "2xx")
    if not _statuses(expect):
        raise InvalidInput(
            'expectStatus must be a status code, a class like "2xx", or a list of those',
            field=field_name(where, "expectStatus"),
        )
    return clean


def _statuses(expect: Any) -> list[int | str] | None:
    items = expect if isinstance(expect, list) else [expect]
    for item in items:
        if isinstance(item, bool):
            return None
        if isinstance(item, int) and 100 <= item <= 599:
            continue
        if isinstance(item, str) and _STATUS_CLASS_RE.match(item):
            continue
        return None
    return items or None


def expected(status: int, expect: Any) -> bool:
    return any(
        status == item if isinstance(item, int) else str(status)[0] == item[0]
        for item in _statuses(expect) or ["2xx"]
    )


# --- running ---------------------------------------------------------------------------------


def run(unit: dict, ctx: WorkContext) -> Outcome:
    timeout = effective_timeout(float(unit.get("timeout", DEFAULT_TIMEOUT_S)), ctx)
    hidden = secrets.secret_values(unit)
    headers = {name: secrets.reveal(value) for name, value in (unit.get("headers") or {}).items()}
    method, url = unit.get("method", "GET"), unit["url"]
    shown = f"{method} {url}"
    content: str | bytes | None = unit.get("body")
    if "json" in unit:
        content = json.dumps(unit["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(
                transport=GuardedTransport(allow_list()),
                timeout=timeout,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                trust_env=False,
                event_hooks={"request": [_secrets_stay_home(url, unit)]},
            ) as client,
            client.stream(method, url, headers=headers, content=content) as response,
        ):
            body, truncated = _read(response.iter_bytes(), deadline)
    except HostNotAllowed as exc:
        raise WorkFailed(str(exc), error_class="HostNotAllowed") from exc
    except (httpx.TimeoutException, httpcore.TimeoutException, _Overdue) as exc:
        raise WorkTimeout(f"{shown}: timed out after {timeout:g}s") from exc
    except (
        httpx.HTTPError,
        httpcore.NetworkError,
        httpcore.ProtocolError,
        OSError,
        ValueError,  # a header value that is not Latin-1, say
    ) as exc:
        message = secrets.redact(f"{shown}: {exc or type(exc).__name__}", hidden)
        raise WorkFailed(message, error_class=type(exc).__name__) from exc

    text = body.decode(response.encoding or "utf-8", errors="replace")
    result: dict[str, Any] = {
        "status": response.status_code,
        "headers": dict(response.headers.items()),
        "body": text,
        "truncated": truncated,
    }
    if not truncated and _is_json(response):
        with contextlib.suppress(ValueError):
            result["json"] = json.loads(text)
    result = secrets.redact(result, hidden)
    if not expected(response.status_code, unit.get("expectStatus", "2xx")):
        excerpt = result["body"][:EXCERPT_CHARS]
        more = "…" if len(result["body"]) > EXCERPT_CHARS or truncated else ""
        raise WorkFailed(
            f"HTTP {response.status_code} {response.reason_phrase} from {shown}: {excerpt}{more}",
            error_class="HTTPStatusError",
            result=result,
        )
    return Outcome(result=result)


def _secrets_stay_home(url: str, unit: dict):
    """httpx drops Authorization on a redirect to another origin; drop every secret header."""
    origin = _origin(httpx.URL(url))
    names = [n for n, v in (unit.get("headers") or {}).items() if secrets.is_secret(v)]

    def hook(request: httpx.Request) -> None:
        if _origin(request.url) != origin:
            for name in names:
                request.headers.pop(name, None)

    return hook


def _origin(url: httpx.URL) -> tuple:
    return (url.scheme, url.host, url.port)


class _Overdue(Exception):
    pass


def _read(chunks: Iterator[bytes], deadline: float) -> tuple[bytes, bool]:
    """Up to BODY_LIMIT_BYTES of the body; the rest is not downloaded."""
    body = b""
    for chunk in chunks:
        body += chunk
        if len(body) > BODY_LIMIT_BYTES:
            return body[:BODY_LIMIT_BYTES], True
        if time.monotonic() > deadline:
            raise _Overdue
    return body, False


def _is_json(response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


# --- the guarded connection layer ---------------------------------------------------------------


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks every address, then connects to a checked address (never by name)."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not self.allow.permits(host, ip, port):
                shown = host if address == host.strip("[]") else f"{host} ({address})"
                raise HostNotAllowed(f"host not allowed: {shown}")
        error: Exception | None = None
        for address in addresses:
            try:
                return self.inner.connect_tcp(
                    address,
                    port,
                    timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


@cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


class GuardedTransport(httpx.BaseTransport):
    """httpx's HTTP transport over httpcore, with GuardedBackend as its network backend (httpx's
    own HTTPTransport does not take a backend)."""

    def __init__(self, allow: AllowList) -> None:
        self.pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(), network_backend=GuardedBackend(allow)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Stream(response),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.pool.close()


class _Stream(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self.response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self.response.iter_stream()

    def close(self) -> None:
        self.response.close()
