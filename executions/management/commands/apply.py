"""`manage.py apply redrive.toml --tenant acme [--check] [--user NAME]`: a tenant's definitions
made to match a file (executions/definitions_file.py; the format is in the README).

Prints one line per definition (created / updated / unchanged, then each changed field).
`--check` applies nothing and exits 1 when the database differs from the file (0 when it
matches), like `ruff format --check`; a bad file exits with an error naming the entry and field.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from executions import definitions_file, permissions
from executions.errors import RedriveError
from executions.models import Role, Tenant
from executions.tenancy import Actor


class Command(BaseCommand):
    help = "Create or update a tenant's definitions from a TOML file (--check: show the diff)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="the definitions file, e.g. redrive.toml")
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument(
            "--user", default=None, help="apply as this member (their role applies; default: admin)"
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="apply nothing; exit 1 if the database differs from the file",
        )

    def handle(self, *args, file, tenant, user, check, **options) -> None:
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"unknown tenant {tenant!r}")
        try:
            if user is None:
                actor = Actor(
                    tenant=tenant_obj, permissions=permissions.of_role(Role.ADMIN), source="cli"
                )
            else:
                user_obj = get_user_model().objects.filter(username=user).first()
                if user_obj is None:
                    raise CommandError(f"unknown user {user!r}")
                actor = Actor.for_user(user_obj, tenant_obj, source="cli")
            changes = definitions_file.apply(actor, definitions_file.load(file), check=check)
        except (definitions_file.FileError, RedriveError) as exc:
            raise CommandError(f"{exc}; nothing applied") from None
        for change in changes:
            for line in change.lines():
                self.stdout.write(line)
        counts = {
            a: sum(c.action == a for c in changes) for a in ("created", "updated", "unchanged")
        }
        summary = ", ".join(f"{n} {a}" for a, n in counts.items())
        differs = counts["created"] or counts["updated"]
        if check:
            self.stdout.write(f"{summary} (check: nothing applied)")
            if differs:
                raise SystemExit(1)
        else:
            self.stdout.write(summary)
