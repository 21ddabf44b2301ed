"""Sign-in lockout (django-axes): repeated wrong passwords lock a username (from any address) and
an address (whatever the usernames), on the console's login page and /admin/login/ alike, with a
clear message and an audit row. Forwarded addresses count only from trusted proxies.

The attempts are axes' database rows, rolled back with each test like everything else."""

from __future__ import annotations

import pytest
from django.test import Client

from executions.models import AuditEvent

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = 10  # REDRIVE_LOGIN_FAILURE_LIMIT's default
MESSAGE = "Too many failed sign-ins; try again in 15 minutes."
PAGES = {"console": "/login/", "admin": "/admin/login/"}


def sign_in(client: Client, page: str, username: str, password: str, **extra):
    return client.post(PAGES[page], {"username": username, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("page", list(PAGES))
def test_wrong_passwords_lock_the_username_even_with_the_right_one(client, cast, page) -> None:
    for attempt in range(1, LIMIT):
        response = sign_in(client, page, "alice", f"wrong-{attempt}")
        assert response.status_code == 200, attempt  # the form again, with its usual error
        assert MESSAGE not in response.content.decode()
    locking = sign_in(client, page, "alice", "wrong-again")
    assert locking.status_code == 429
    assert MESSAGE in locking.content.decode()
    assert locking["Retry-After"] == "900"
    right = sign_in(client, page, "alice", PASSWORD)
    assert right.status_code == 429
    page_html = right.content.decode()
    assert MESSAGE in page_html
    assert 'name="password"' in page_html  # the sign-in form is still there, for later
    assert not signed_in(client)


@pytest.mark.parametrize("page", list(PAGES))
def test_the_lockout_leaves_one_audit_row_in_the_users_tenants(client, cast, page) -> None:
    for attempt in range(LIMIT + 5):  # attempts while locked out add no rows
        sign_in(client, page, "maria", f"wrong-{attempt}", REMOTE_ADDR="198.51.100.7")
    rows = AuditEvent.objects.filter(action="login_locked").order_by("tenant__slug")
    assert [(r.tenant.slug, r.kind, r.target_id) for r in rows] == [
        ("acme", "user", "maria"),
        ("globex", "user", "maria"),
    ]
    row = rows[0]
    assert (row.actor, row.source, row.ip, row.status_after) == (
        "anonymous",
        page,
        "198.51.100.7",
        "locked",
    )
    assert row.details["failure_limit"] == LIMIT


def test_an_unknown_names_lockout_is_audited_without_a_tenant(client, cast) -> None:
    for attempt in range(LIMIT):
        sign_in(client, "console", "nobody-here", f"wrong-{attempt}")
    row = AuditEvent.objects.get(action="login_locked")
    assert (row.tenant, row.target_id) == (None, "nobody-here")


def test_the_username_stays_locked_from_every_address(client, cast) -> None:
    for attempt in range(LIMIT):
        sign_in(client, "console", "alice", "wrong", REMOTE_ADDR=f"203.0.113.{attempt + 1}")
    response = sign_in(client, "admin", "alice", PASSWORD, REMOTE_ADDR="192.0.2.200")
    assert response.status_code == 429 and MESSAGE in response.content.decode()
    other = Client()
    assert sign_in(other, "console", "dave", PASSWORD, REMOTE_ADDR="192.0.2.200").status_code == 302
    assert signed_in(other)


def test_an_address_that_tries_many_names_is_locked_for_every_name(client, cast) -> None:
    for attempt in range(LIMIT):
        sign_in(client, "console", f"guess{attempt}", "wrong", REMOTE_ADDR="203.0.113.9")
    response = sign_in(client, "console", "alice", PASSWORD, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 429 and MESSAGE in response.content.decode()
    elsewhere = Client()
    ok = sign_in(elsewhere, "console", "alice", PASSWORD, REMOTE_ADDR="203.0.113.10")
    assert ok.status_code == 302 and signed_in(elsewhere)


def test_a_forged_forwarded_for_does_not_reset_the_address(client, cast) -> None:
    # The peer is not a trusted proxy: its X-Forwarded-For is anyone's to write.
    for attempt in range(LIMIT):
        sign_in(
            client,
            "console",
            f"guess{attempt}",
            "wrong",
            REMOTE_ADDR="203.0.113.9",
            HTTP_X_FORWARDED_FOR=f"10.1.1.{attempt}",
        )
    response = sign_in(
        client,
        "console",
        "alice",
        PASSWORD,
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="10.9.9.9",
    )
    assert response.status_code == 429
    assert not signed_in(client)


def test_a_trusted_proxys_forwarded_for_is_the_client(client, cast, settings) -> None:
    settings.REDRIVE_TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for attempt in range(LIMIT):
        sign_in(
            client,
            "console",
            f"guess{attempt}",
            "wrong",
            HTTP_X_FORWARDED_FOR="203.0.113.66",
            **proxy,
        )
    locked = sign_in(
        client, "console", "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.66", **proxy
    )
    assert locked.status_code == 429
    # Another client behind the same proxy is not that address.
    other = Client()
    ok = sign_in(other, "console", "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.67", **proxy)
    assert ok.status_code == 302 and signed_in(other)
    row = AuditEvent.objects.get(action="login_locked")
    assert row.ip == "203.0.113.66"


def test_the_tenants_audit_page_shows_the_lockout(client, cast, login) -> None:
    for attempt in range(LIMIT):
        sign_in(client, "console", "bob", f"wrong-{attempt}", REMOTE_ADDR="198.51.100.8")
    page = login("alice").get("/audit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "login_locked" in html and ">bob<" in html and "198.51.100.8" in html
    assert "login_locked" not in login("carol").get("/audit/").content.decode()  # globex's
