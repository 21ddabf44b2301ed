"""`manage.py create_api_key --tenant T --name N (--permissions a,b | --role R) [--user U]
[--expires-days D]`: create an API key and print it, once. Only its hash is stored.

The key alone goes to stdout (so `KEY=$(manage.py create_api_key ...)` works); what it may do goes
to stderr.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from executions import permissions as known
from executions import services
from executions.models import Membership, Role, Tenant


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it (shown once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--name", required=True, help="What the key is for (max 50).")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--permissions", help="Comma-separated permission names.")
        group.add_argument("--role", choices=Role.values, help="All permissions of a role.")
        parser.add_argument("--user", help="Username the key acts for (must be in the tenant).")
        parser.add_argument("--expires-days", type=int, help="Expire after this many days.")

    def handle(
        self,
        *args,
        tenant: str,
        name: str,
        permissions: str | None,
        role: str | None,
        user: str | None,
        expires_days: int | None,
        **options,
    ) -> None:
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant {tenant!r}")
        if not name.strip() or len(name) > 50:
            raise CommandError("--name must be 1 to 50 characters")
        if role:
            perms = sorted(known.of_role(role))
        else:
            perms = sorted({p.strip() for p in (permissions or "").split(",") if p.strip()})
            unknown = [p for p in perms if p not in known.every()]
            if unknown or not perms:
                problem = f"Unknown permission {unknown[0]!r}" if unknown else "No permissions"
                raise CommandError(f"{problem}; known: {', '.join(known.every())}")
        owner = None
        if user:
            owner = get_user_model().objects.filter(username=user).first()
            if owner is None or not Membership.objects.filter(user=owner, tenant=found).exists():
                raise CommandError(f"No user {user!r} in tenant {tenant!r}")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        key_row, key = services.create_api_key(
            found,
            name=name,
            user=owner,
            permissions=perms,
            expiry_date=(timezone.now() + timedelta(days=expires_days) if expires_days else None),
        )
        self.stderr.write(
            f"API key {key_row.prefix} for tenant {found.slug}: {', '.join(perms)}. "
            "Store it now: it is not shown again."
        )
        self.stdout.write(key)
