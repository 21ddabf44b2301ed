"""HTTP work against a real server on 127.0.0.1 (allowed by setting), and the SSRF refusals:
loopback when not allowed, a name that resolves to loopback, redirects to refused addresses, and
literal refused addresses when a definition is saved."""

from __future__ import annotations

import socket

import pytest

from executions import work
from executions.errors import InvalidInput
from executions.work import WorkContext, WorkFailed, WorkTimeout


def request(**unit) -> work.Outcome:
    return work.run(unit, WorkContext())


def refused(**unit) -> WorkFailed:
    with pytest.raises(WorkFailed) as caught:
        request(**unit)
    return caught.value


@pytest.fixture
def server(http_server, settings):
    server = http_server()
    settings.REDRIVE_HTTP_ALLOW = f"*,127.0.0.1:{server.port}"
    return server


def test_a_get_returns_status_headers_and_body(server):
    outcome = request(url=server.url("/json"))
    result = outcome.result
    assert result["status"] == 200
    assert result["headers"]["content-type"] == "application/json"
    assert result["body"] == '{"ok": true}'
    assert result["json"] == {"ok": True}
    assert result["truncated"] is False


def test_a_post_sends_its_json_and_headers(server):
    outcome = request(
        url=server.url("/echo"), method="post", headers={"X-Tenant": "acme"}, json={"full": True}
    )
    seen = server.requests[-1]
    assert seen["method"] == "POST"
    assert seen["headers"]["X-Tenant"] == "acme"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["body"] == '{"full": true}'
    assert outcome.result["json"]["body"] == '{"full": true}'


def test_a_status_outside_expect_status_fails_with_the_status_and_a_bounded_excerpt(server):
    error = refused(url=server.url("/status/502"))
    assert error.error_class == "HTTPStatusError"
    assert error.message.startswith(
        f"HTTP 502 Bad Gateway from GET {server.url('/status/502')}: upstream says no: xxx"
    )
    assert error.message.endswith("…") and len(error.message) < 700
    assert error.result["status"] == 502


@pytest.mark.parametrize(("expect", "ok"), [(404, True), ("4xx", True), ([200, "3xx"], False)])
def test_expect_status_takes_codes_and_classes(server, expect, ok):
    unit = {"url": server.url("/status/404"), "expectStatus": expect}
    if ok:
        assert request(**unit).result["status"] == 404
    else:
        assert refused(**unit).message.startswith("HTTP 404")


def test_the_body_is_bounded(server):
    result = request(url=server.url("/big")).result
    assert result["truncated"] is True
    assert len(result["body"]) == 64 * 1024


def test_loopback_is_refused_unless_allowed(http_server, settings):
    server = http_server()
    settings.REDRIVE_HTTP_ALLOW = "*"
    error = refused(url=server.url("/json"))
    assert (error.error_class, error.message) == ("HostNotAllowed", "host not allowed: 127.0.0.1")
    assert server.requests == []  # refused before connecting


def test_a_name_that_resolves_to_loopback_is_refused(http_server, settings):
    server = http_server()
    settings.REDRIVE_HTTP_ALLOW = "*"
    error = refused(url=f"http://localhost:{server.port}/json")
    assert error.message.startswith("host not allowed: localhost (")
    assert server.requests == []


def test_an_allowed_address_on_another_port_is_refused(http_server, settings):
    allowed, other = http_server(), http_server()
    settings.REDRIVE_HTTP_ALLOW = f"127.0.0.1:{allowed.port}"
    assert refused(url=other.url("/json")).message == "host not allowed: 127.0.0.1"
    assert other.requests == []


def test_a_redirect_to_a_refused_address_is_refused_before_connecting(http_server, settings):
    allowed, private = http_server(), http_server()
    settings.REDRIVE_HTTP_ALLOW = f"*,127.0.0.1:{allowed.port}"
    error = refused(url=allowed.url(f"/redirect?to={private.url('/json')}"))
    assert error.message == "host not allowed: 127.0.0.1"
    assert [r["path"] for r in allowed.requests] == [f"/redirect?to={private.url('/json')}"]
    assert private.requests == []
    error = refused(url=allowed.url("/redirect?to=http://169.254.169.254/latest/meta-data/"))
    assert error.message == "host not allowed: 169.254.169.254"


def test_a_redirect_to_an_allowed_address_is_followed(http_server, settings):
    first, second = http_server(), http_server()
    settings.REDRIVE_HTTP_ALLOW = f"127.0.0.1:{first.port},127.0.0.1:{second.port}"
    outcome = request(
        url=first.url(f"/redirect?to={second.url('/echo')}"),
        headers={"X-Api-Key": {"value": "key-for-first-only", "secret": True}, "X-Plain": "p"},
    )
    assert outcome.result["status"] == 200
    seen = second.requests[-1]["headers"]
    # A secret header stays with the origin it was meant for.
    assert "X-Api-Key" not in seen and seen["X-Plain"] == "p"
    assert first.requests[-1]["headers"]["X-Api-Key"] == "key-for-first-only"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", "host not allowed: 169.254.169.254"),
        ("http://10.0.0.5:8080/", "host not allowed: 10.0.0.5"),
        ("http://[::1]/", "host not allowed: ::1"),
        ("http://[::ffff:127.0.0.1]/", "host not allowed: ::ffff:127.0.0.1"),
        ("http://localhost:8000/", "host not allowed: localhost"),
    ],
)
def test_a_literal_refused_address_is_refused_when_saved(settings, url, message):
    settings.REDRIVE_HTTP_ALLOW = "*"
    with pytest.raises(InvalidInput) as caught:
        work.validate({"url": url}, where="tasks[0]")
    assert (caught.value.field, caught.value.message) == ("tasks[0].url", message)


@pytest.mark.parametrize(
    ("unit", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://user:pw@example.com/"}, "url"),
        ({"url": "https://example.com/", "method": "BREW"}, "method"),
        ({"url": "https://example.com/", "body": "a", "json": {}}, "body"),
        ({"url": "https://example.com/", "timeout": 0}, "timeout"),
        ({"url": "https://example.com/", "expectStatus": "2xxx"}, "expectStatus"),
        ({"url": "https://example.com/", "headers": {"Bad Name": "v"}}, "headers.Bad Name"),
        ({"url": "https://example.com/", "headers": {"A": {"value": 1}}}, "headers.A"),
    ],
)
def test_invalid_definitions_are_refused_naming_the_field(unit, field):
    with pytest.raises(InvalidInput) as caught:
        work.validate(unit)
    assert caught.value.field == field


def test_a_secret_header_is_sent_but_never_shown(server):
    token = "Bearer tok_0123456789abcdefghij"
    unit = {
        "url": server.url("/echo"),
        "headers": {"Authorization": {"value": token, "secret": True}},
    }
    outcome = request(**unit)
    assert server.requests[-1]["headers"]["Authorization"] == token
    assert token not in str(outcome.result)
    assert "********ghij" in outcome.result["json"]["headers"]["Authorization"]
    assert work.secrets.masked(unit)["headers"] == {
        "Authorization": {"secret": True, "value": "********ghij"}
    }


def test_a_request_that_outlasts_its_timeout_times_out(server):
    with pytest.raises(WorkTimeout) as caught:
        request(url=server.url("/slow"), timeout=0.3)
    assert caught.value.message == f"GET {server.url('/slow')}: timed out after 0.3s"


def test_a_connection_error_fails_the_unit(settings):
    settings.REDRIVE_HTTP_ALLOW = "127.0.0.1"
    with socket.socket() as closed:  # a port nothing listens on once this is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    error = refused(url=f"http://127.0.0.1:{port}/")
    assert error.error_class == "ConnectError"
    assert error.message.startswith(f"GET http://127.0.0.1:{port}/: ")
