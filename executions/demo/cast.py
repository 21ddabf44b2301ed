"""The demo's cast: its two tenants (organisations) and four users, with their passwords."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.hashers import identify_hasher, make_password

from executions.models import Role

# --- the cast -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    slug: str
    name: str
    workflows_project: str
    domain: str
    db_host: str
    backup_host: str
    api_url: str
    amount: int
    hosts: tuple[str, str, str]  # web, second web, database


ORGS: dict[str, Org] = {
    "acme": Org(
        slug="acme",
        name="Acme Corporation",
        workflows_project="acme-prod",
        domain="acme.example",
        db_host="10.0.4.17",
        backup_host="10.0.9.4",
        api_url="https://api.rates.example.com/v2/latest",
        amount=7250,
        hosts=("web-01", "web-02", "db-01"),
    ),
    "globex": Org(
        slug="globex",
        name="Globex Corporation",
        workflows_project="globex-prod",
        domain="globex.example",
        db_host="10.8.2.31",
        backup_host="10.8.7.12",
        api_url="https://erp.globex.example/api/v1/sync",
        amount=12900,
        hosts=("app-01", "app-02", "db-02"),
    ),
}

# username -> (tenant, role, first name, last name)
USERS: dict[str, tuple[str, str, str, str]] = {
    "alice": ("acme", Role.ADMIN, "Alice", "Archer"),
    "dave": ("acme", Role.OPERATOR, "Dave", "Dalton"),
    "bob": ("acme", Role.VIEWER, "Bob", "Baker"),
    "carol": ("globex", Role.ADMIN, "Carol", "Chen"),
}


def demo_password(username: str) -> str:
    return f"{username}-demo-2026"


# PBKDF2 at Django's default cost is slow by design, and tests seed per test: these
# are make_password(demo_password(name), salt=f"redrive-demo-{name}"), computed once. Django
# verifies them at the cost they carry and upgrades them on first login if its default changes.
_PASSWORD_HASHES = {
    "alice": "pbkdf2_sha256$1500000$redrive-demo-alice$Eo+61IfMunkCtelG213TgMhZN7n9wzK23k5w3/AvBcs=",  # noqa: E501
    "dave": "pbkdf2_sha256$1500000$redrive-demo-dave$Up5vhTljO+uBDQwl9/PacMMwpK5P8fm6wr8BW9zudwc=",
    "bob": "pbkdf2_sha256$1500000$redrive-demo-bob$gSmle0hU1GC17/2nDjRd3s/y5+bxbm5oQh/Niye8RoQ=",
    "carol": "pbkdf2_sha256$1500000$redrive-demo-carol$zJFhyQDrwJRRej342rHFqmeftNXwyruVppaAbDD/Jc8=",  # noqa: E501
}


def _password_hash(username: str) -> str:
    encoded = _PASSWORD_HASHES[username]
    try:
        identify_hasher(encoded)  # still one of the configured PASSWORD_HASHERS?
    except ValueError:
        return make_password(demo_password(username))
    return encoded
