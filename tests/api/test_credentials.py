"""Credentials (issue 16, points 5, 6, 8 and 11): a key made for a user follows that user; the
token endpoint's throttle and lockout key on the real client address; odd input to the token
endpoint and odd JWT claims are 4xx; a console session acts in the tenant chosen in the console."""

from __future__ import annotations

from io import StringIO

import jwt
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from executions import permissions as roles
from executions import tokens
from executions.models import ApiKey, AuditEvent, Membership, Role, Tenant

from .test_contract import assert_shape

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-ins; try again in 15 minutes."


# --- point 5: a key made for a user follows that user --------------------------------------------


@pytest.fixture
def frank(manifest):
    """frank, operator of acme, and an API key made for him with an admin's permissions."""
    user = get_user_model().objects.create_user("frank", password="frank-pw-2026")
    Membership.objects.create(user=user, tenant=Tenant.objects.get(slug="acme"), role="operator")
    out = StringIO()
    call_command(
        "create_api_key",
        tenant="acme",
        name="frank's scripts",
        role="admin",
        user="frank",
        stdout=out,
        stderr=StringIO(),
    )
    return user, out.getvalue().strip()


def post(client: Client, path: str, key: str | None = None):
    headers = {"X-API-Key": key} if key else {}
    return client.generic("POST", path, b"", content_type="application/json", headers=headers)


def retry_run(client: Client, manifest: dict, key: str):
    return post(client, f"/v1/runs/{manifest['acme']['runs']['failure']}/retry", key)


def test_a_key_made_for_a_user_dies_with_the_user(manifest, frank) -> None:
    user, key = frank
    client = Client()
    assert client.get("/v1/runs", headers={"X-API-Key": key}).status_code == 200
    user.delete()
    assert not ApiKey.objects.filter(prefix=key.split(".")[0]).exists()
    assert_shape("004", client.get("/v1/runs", headers={"X-API-Key": key}), 401, "Invalid API key.")
    assert_shape("004", retry_run(client, manifest, key), 401, "Invalid API key.")


def test_a_key_of_a_user_removed_from_its_tenant_is_refused(manifest, frank) -> None:
    user, key = frank
    Membership.objects.filter(user=user).delete()
    message = "The user of this API key is no longer a member of its tenant."
    assert_shape("004", Client().get("/v1/runs", headers={"X-API-Key": key}), 401, message)
    assert_shape("004", retry_run(Client(), manifest, key), 401, message)


def test_a_key_of_an_inactive_user_is_refused(manifest, frank) -> None:
    user, key = frank
    user.is_active = False
    user.save()
    r = Client().get("/v1/runs", headers={"X-API-Key": key})
    assert_shape("004", r, 401, "The user of this API key is inactive.")


def test_a_users_key_never_has_more_than_the_users_role_now(manifest, frank) -> None:
    user, key = frank  # an admin's permissions on the key, but frank is an operator
    job = manifest["acme"]["jobs"]["failed_command"]
    r = post(Client(), f"/job/{job}/retry", key)
    assert_shape("002", r, 403)
    assert "command:execute" in r.json()["error"]
    Membership.objects.filter(user=user).update(role=Role.VIEWER)
    assert Client().get("/v1/runs", headers={"X-API-Key": key}).status_code == 200
    assert_shape("004", retry_run(Client(), manifest, key), 403, "Missing permission runs:write")
    Membership.objects.filter(user=user).update(role=Role.OPERATOR)
    assert retry_run(Client(), manifest, key).status_code == 200


def test_a_key_without_a_user_keeps_exactly_its_permissions(manifest) -> None:
    out = StringIO()
    call_command(
        "create_api_key", tenant="acme", name="ci", role="admin", stdout=out, stderr=StringIO()
    )
    key = out.getvalue().strip()
    job = manifest["acme"]["jobs"]["failed_command"]
    assert post(Client(), f"/job/{job}/retry", key).status_code == 201


def test_the_key_lookup_reads_the_users_role_in_the_same_statement(
    manifest, frank, django_assert_num_queries
) -> None:
    user, key = frank
    with django_assert_num_queries(1):
        found = ApiKey.objects.usable_with_owner(key.split(".")[0])
        permissions = roles.of_key(found)
    assert found.user == user and found.owner_role == "operator"
    assert "command:execute" not in permissions and "runs:write" in permissions


# --- point 6: the token endpoint's throttle and lockout ------------------------------------------


def token(username: str, password: str, **extra):
    return Client().post(
        "/api/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
        **extra,
    )


def test_a_forged_forwarded_for_does_not_reset_the_token_throttle(manifest, settings) -> None:
    settings.REDRIVE_TOKEN_RATE = "5/min"
    for attempt in range(5):
        r = token("nobody", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.{attempt}.1")
        assert r.status_code == 401, attempt
    r = token("nobody", "wrong", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert r.status_code == 429
    assert r.json()["error"]["message"].startswith("Rate limit exceeded; retry in ")


def test_a_trusted_proxys_forwarded_for_names_the_client(manifest, settings) -> None:
    settings.REDRIVE_TOKEN_RATE = "5/min"
    settings.REDRIVE_TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's REMOTE_ADDR
    # (A new username each time: this is about addresses, not the per-user lockout.)
    for attempt in range(6):
        r = token(f"guess{attempt}", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}")
        assert r.status_code == 401, attempt
    # A client's own X-Forwarded-For before the proxy's entry changes nothing.
    for attempt in range(5):
        forwarded = f"10.0.0.{attempt}, 198.51.100.99"
        r = token(f"other{attempt}", "wrong", HTTP_X_FORWARDED_FOR=forwarded)
        assert r.status_code == 401, attempt
    r = token("last", "wrong", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.99")
    assert r.status_code == 429
    assert r.json()["error"]["message"].startswith("Rate limit exceeded; retry in ")


def test_wrong_passwords_at_the_token_endpoint_lock_the_user_out(manifest) -> None:
    password = manifest["users"]["dave"]["password"]
    for attempt in range(9):
        r = token("dave", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.{attempt}.1")
        assert_shape("redrive", r, 401, "Invalid username or password.")
    r = token("dave", "wrong")
    assert_shape("redrive", r, 429, LOCKED)
    assert r["Retry-After"] == "900"
    assert_shape("redrive", token("dave", password), 429, LOCKED)
    # ... and on the console: the lockout is the user's, wherever they sign in.
    console = Client().post("/login/", {"username": "dave", "password": password})
    assert console.status_code == 429 and LOCKED in console.content.decode()
    row = AuditEvent.objects.get(action="login_locked")
    assert (row.tenant.slug, row.source, row.target_id) == ("acme", "api", "dave")


def test_the_console_s_failures_count_at_the_token_endpoint_too(manifest) -> None:
    for attempt in range(10):
        Client().post("/login/", {"username": f"guess{attempt}", "password": "wrong"})
    r = token("alice", manifest["users"]["alice"]["password"])
    assert_shape("redrive", r, 429, LOCKED)  # this address is locked out


# --- point 8: odd input is a 4xx ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_nul_character_in_the_credentials_is_a_400(manifest, field) -> None:
    body = {"username": "alice", "password": "x", field: "a\u0000"}
    r = Client().post("/api/auth/token", body, content_type="application/json")
    assert_shape("redrive", r, 400, f"{field} must not contain NUL characters")
    assert r.json()["error"]["field"] == field


def signed(**overrides) -> str:
    user = get_user_model().objects.get(username="alice")
    claims = jwt.decode(
        tokens.issue(user, user.memberships.get().tenant), options={"verify_signature": False}
    )
    claims.update(overrides)
    return jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        {"tenant": "acme"},
        {"tenant": "not-a-uuid"},
        {"tenant": 42},
        {"tenant": ["x"]},
        {"tenant": None},
        {"sub": "alice"},
        {"sub": ["1"]},
        {"sub": "1" * 40},
    ],
    ids=repr,
)
def test_a_signed_jwt_with_odd_claims_is_401(manifest, claims) -> None:
    r = Client().get("/v1/runs", headers={"Authorization": f"Bearer {signed(**claims)}"})
    assert_shape("004", r, 401, "Invalid token.")


# --- point 11: a console session acts in the tenant chosen in the console -------------------------


def test_the_api_with_a_console_session_acts_in_the_chosen_tenant(manifest) -> None:
    dave = get_user_model().objects.get(username="dave")  # operator of acme
    Membership.objects.create(user=dave, tenant=Tenant.objects.get(slug="globex"), role="viewer")
    client = Client()
    client.force_login(dave)
    acme_run = manifest["acme"]["runs"]["failure"]
    globex_run = manifest["globex"]["runs"]["failure"]
    assert client.get(f"/v1/runs/{acme_run}").status_code == 200
    switched = client.post("/tenant/", {"tenant": "globex"})
    assert switched.status_code == 302
    assert client.get(f"/v1/runs/{acme_run}").status_code == 404
    assert client.get(f"/v1/runs/{globex_run}").status_code == 200
    # ... with globex's role: a viewer there, so no retry.
    r = post(client, f"/v1/runs/{globex_run}/retry")
    assert_shape("004", r, 403, "Missing permission runs:write")
    client.post("/tenant/", {"tenant": "acme"})
    assert client.get(f"/v1/runs/{acme_run}").status_code == 200
