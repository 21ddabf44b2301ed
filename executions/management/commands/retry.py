"""`manage.py retry`: retry from a shell, through the same domain code as the API and console.

manage.py retry --tenant acme --user alice automation 0b5c…  [more ids]
manage.py retry --tenant acme --user alice --filter kind=job --filter q=timeout [--dry-run]
"""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from executions import filters, kinds, services
from executions.errors import RedriveError
from executions.models import Tenant
from executions.tenancy import Actor


class Command(BaseCommand):
    help = "Retry executions by id, or every failure matching a filter (with a progress bar)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", nargs="?", choices=kinds.names())
        parser.add_argument("ids", nargs="*")
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--user", required=True, help="who retries (their role applies)")
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="kind, status, range, since, until, q, fingerprint, name",
        )
        parser.add_argument("--target-hostname", default=None, help="for jobs (default _any)")
        parser.add_argument("--dry-run", action="store_true", help="only show the preview")

    def handle(
        self, *args, kind, ids, tenant, user, filter, target_hostname, dry_run, **options
    ) -> None:
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        user_obj = get_user_model().objects.filter(username=user).first()
        if tenant_obj is None or user_obj is None:
            raise CommandError("unknown tenant or user")
        try:
            actor = Actor.for_user(user_obj, tenant_obj, source="cli")
            if filter:
                self._bulk(actor, filter, dry_run)
            elif kind and ids:
                self._each(actor, kind, ids, target_hostname)
            else:
                raise CommandError("give KIND ID… or --filter FIELD=VALUE")
        except RedriveError as exc:
            raise CommandError(exc.message) from None

    def _each(self, actor: Actor, kind: str, ids: list[str], target_hostname: str | None) -> None:
        failures = 0
        # A kind's retry takes the options it knows and ignores the others.
        options = {"target_hostname": target_hostname} if target_hostname else {}
        for object_id in ids:
            try:
                outcome = services.retry_one(actor, kind, object_id, **options)
            except RedriveError as exc:
                failures += 1
                self.stderr.write(f"{kind} {object_id}: {exc.message}")
                continue
            self.stdout.write(
                f"{kind} {object_id}: retried as {outcome.new_id} "
                f"({getattr(outcome.obj, 'status', '')})"
            )
        if failures:
            raise CommandError(f"{failures} of {len(ids)} could not be retried")

    def _bulk(self, actor: Actor, pairs: list[str], dry_run: bool) -> None:
        query = QueryDict(mutable=True)
        for pair in pairs:
            field, sep, value = pair.partition("=")
            if not sep:
                raise CommandError(f"--filter takes FIELD=VALUE; got {pair!r}")
            query.appendlist(field, value)
        selection = {"filter": filters.parse(query)}
        preview = services.preview_retry(actor, selection)
        for kind, entry in preview["kinds"].items():
            reasons = ", ".join(f"{n} {r}" for r, n in entry["not_retryable"].items()) or "none"
            self.stdout.write(f"{kind}: will retry {entry['will_retry']}; not retryable: {reasons}")
        if dry_run or not preview["will_retry"]:
            return
        total = preview["will_retry"]

        def progress(done: int, failed: int) -> None:
            width = 40
            filled = int(width * min(done + failed, total) / max(total, 1))
            sys.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            sys.stdout.flush()

        bulk = services.retry_many(actor, selection, progress=progress)
        self.stdout.write(
            f"\n{bulk.status}: retried {bulk.done}, skipped {bulk.skipped}, "
            f"failed {bulk.failed} (bulk retry {bulk.pk})"
        )
