"""Seed 003's sessions: a single-use nonce authorises one workflow retry, as its session's user
or key."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from ...errors import InvalidInput
from ...models import WorkflowSession

if TYPE_CHECKING:
    from ...tenancy import Actor

SESSION_LIFETIME = timedelta(hours=1)


def create_session(actor: Actor, session_type: str = "TOKEN_EXCHANGE") -> WorkflowSession:
    """A single-use nonce, valid one hour, that authorises one workflow retry as `actor`."""
    user = actor.user if actor.api_key is None else None
    return WorkflowSession.objects.create(
        tenant=actor.tenant,
        type=session_type,
        user=user,
        api_key=actor.api_key,
        nonce=secrets.token_urlsafe(24),
        expires_at=timezone.now() + SESSION_LIFETIME,
    )


def authorise(actor: Actor, options: dict[str, Any]) -> None:
    """Inside the retry's transaction: use up its nonce (`options["nonce"]`), and say as whom
    its tasks run."""
    options.update(_consume_nonce(actor, options.pop("nonce", None)))


def _consume_nonce(actor: Actor, nonce: str | None) -> dict[str, Any]:
    if nonce is None and actor.source in ("console", "admin", "cli"):
        nonce = create_session(actor).nonce  # the operator's own session, made on their behalf
    if not isinstance(nonce, str) or not nonce:
        raise InvalidInput("authentication.nonce is required", field="authentication.nonce")
    session = (
        WorkflowSession.objects.select_for_update(of=("self",))
        .select_related("user", "api_key")  # run_as names one: no query more per run
        .filter(
            nonce=nonce, tenant=actor.tenant, used_at__isnull=True, expires_at__gt=timezone.now()
        )
        .first()
    )
    if session is None:
        raise InvalidInput(
            "authentication.nonce is not a valid, unused session nonce",
            field="authentication.nonce",
        )
    WorkflowSession.objects.filter(pk=session.pk).update(used_at=timezone.now())
    run_as = (
        f"user:{session.user.get_username()}"
        if session.user is not None
        else f"key:{session.api_key.prefix}"
        if session.api_key is not None
        else actor.label
    )
    return {"run_as": run_as, "nonce_session": session.pk}
