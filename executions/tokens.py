"""JWTs for `Authorization: Bearer`: HS256 only (pinned), `exp` required, carrying the user and the
tenant they act in. Permissions are not in the token: they come from the user's role at use time,
so a demoted user loses them at once."""

from __future__ import annotations

from datetime import timedelta

import jwt
from django.conf import settings
from django.utils import timezone

ALGORITHM = "HS256"
ISSUER = "redrive"


def issue(user, tenant, lifetime: int | None = None) -> str:
    now = timezone.now()
    claims = {
        "sub": str(user.pk),
        "username": user.get_username(),
        "tenant": str(tenant.pk),
        "iat": int(now.timestamp()),
        "exp": int(
            (now + timedelta(seconds=lifetime or settings.JWT_LIFETIME_SECONDS)).timestamp()
        ),
        "iss": ISSUER,
    }
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)


def decode(token: str) -> dict:
    """Raises jwt.InvalidTokenError (expired, bad signature, wrong algorithm, missing claims)."""
    return jwt.decode(
        token,
        settings.SECRET_KEY,
        algorithms=[ALGORITHM],
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "tenant", "iss"]},
    )
