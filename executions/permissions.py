"""Who may do what. Each kind brings its own read and retry permissions (its KIND); the roles'
permissions are made of them, so a new kind's are in the roles as soon as it is registered."""

from __future__ import annotations

from . import kinds
from .models import ApiKey, Role

COMMAND_PERMISSION = "command:execute"  # re-running a command.exec job (executions/work)
# Defining and starting seed 000's functions: operators hold them, as they hold retry.
FUNCTION_PERMISSIONS = ("functions:write", "functions:execute")
ADMIN_PERMISSIONS = ("apikeys:manage", "audit:read", "webhooks:manage")
# Defining work (automation rules): an admin's, like managing keys; starting work is the kinds'
# retry permission (jobs:write, automation:execute), which operators hold.
DEFINE_PERMISSIONS = ("automation:write",)


def read() -> tuple[str, ...]:
    return tuple(kind.read_permission for kind in kinds.KINDS)


def retry() -> tuple[str, ...]:
    return tuple(kind.permission for kind in kinds.KINDS)


def every() -> tuple[str, ...]:
    """Every permission there is, in the order the console lists them."""
    return (
        read()
        + retry()
        + FUNCTION_PERMISSIONS
        + (COMMAND_PERMISSION,)
        + DEFINE_PERMISSIONS
        + ADMIN_PERMISSIONS
    )


def of_role(role: str) -> frozenset[str]:
    """A role's permissions; none for a role that is not one (any more)."""
    if role == Role.ADMIN:
        return frozenset(every())
    if role == Role.OPERATOR:
        return frozenset((*read(), *retry(), *FUNCTION_PERMISSIONS, "audit:read"))
    if role == Role.VIEWER:
        return frozenset(read())
    return frozenset()


def of_key(key: ApiKey) -> frozenset[str]:
    """A key's permissions, cut down to its user's current role (none if they left)."""
    own = frozenset(key.permissions)
    if key.user_id is None:
        return own
    return own & of_role(key.owner_membership_role())
