"""`manage.py retry`: retry from a shell, through the same domain code as the API and console.

manage.py retry --tenant acme --user alice automation 0b5c…  [more ids]
manage.py retry --tenant acme --user alice --filter kind=job --filter q=timeout [--dry-run]
manage.py retry --tenant acme --user alice --filter kind=function --canary 20 --rate 5
    [--canary-min-success-rate 0.9] [--stop-when-failed-again-rate 0.2] [--reason "…"]

A bulk with staging (canary, rate, stop rule) is queued for the workers, as the console's and
the API's are: it takes as long as its rate says, so the command prints where to follow it.
"""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from executions import filters, kinds, services, staged
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
        parser.add_argument("--reason", default=None, help="why: kept in the audit")
        staging = parser.add_argument_group("staging (a bulk over --filter; run by the workers)")
        staging.add_argument("--canary", type=int, default=None, metavar="N", help="retry N first")
        staging.add_argument(
            "--canary-min-success-rate",
            type=float,
            default=None,
            metavar="RATE",
            help="go on past the canary only if this share of it succeeded (default 1.0)",
        )
        staging.add_argument(
            "--rate", type=float, default=None, metavar="PER_SECOND", help="retries per second"
        )
        staging.add_argument(
            "--stop-when-failed-again-rate",
            type=float,
            default=None,
            metavar="RATE",
            help="stop when this share of the retried failed again",
        )

    def handle(
        self, *args, kind, ids, tenant, user, filter, target_hostname, dry_run, **options
    ) -> None:
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        user_obj = get_user_model().objects.filter(username=user).first()
        if tenant_obj is None or user_obj is None:
            raise CommandError("unknown tenant or user")
        try:
            actor = Actor.for_user(user_obj, tenant_obj, source="cli")
            # Checked as the API checks its body: a bad value names its option, nothing starts.
            bulk_options = staged.clean_options(_bulk_body(options))
            if filter:
                self._bulk(actor, filter, dry_run, bulk_options)
            elif staged.is_staged(bulk_options):
                raise CommandError("staging options apply to a bulk: give --filter FIELD=VALUE")
            elif kind and ids:
                self._each(actor, kind, ids, target_hostname, bulk_options.get("reason"))
            else:
                raise CommandError("give KIND ID… or --filter FIELD=VALUE")
        except RedriveError as exc:
            raise CommandError(exc.message) from None

    def _each(
        self,
        actor: Actor,
        kind: str,
        ids: list[str],
        target_hostname: str | None,
        reason: str | None,
    ) -> None:
        failures = 0
        # A kind's retry takes the options it knows and ignores the others.
        options = {"target_hostname": target_hostname} if target_hostname else {}
        if reason:
            options["reason"] = reason
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

    def _bulk(self, actor: Actor, pairs: list[str], dry_run: bool, options: dict) -> None:
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
        if staged.is_staged(options):
            bulk = services.start_bulk_retry(actor, selection, options=options)
            self.stdout.write(
                f"staged bulk retry {bulk.pk} queued ({_staging(options)}): the workers run "
                f"it; follow it in the console at /bulk/{bulk.pk}/"
            )
            return
        total = preview["will_retry"]

        def progress(done: int, failed: int) -> None:
            width = 40
            filled = int(width * min(done + failed, total) / max(total, 1))
            sys.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            sys.stdout.flush()

        bulk = services.retry_many(
            actor,
            selection,
            bulk=services.plan_bulk_retry(actor, selection, options),  # its reason, if any
            progress=progress,
        )
        self.stdout.write(
            f"\n{bulk.status}: retried {bulk.done}, skipped {bulk.skipped}, "
            f"failed {bulk.failed} (bulk retry {bulk.pk})"
        )


def _bulk_body(options: dict) -> dict:
    """The command's options as the API's bulk body names them (staged.clean_options)."""
    body: dict = {"reason": options.get("reason")}
    if options.get("canary") is not None or options.get("canary_min_success_rate") is not None:
        body["canary"] = {
            k: v
            for k, v in (
                ("size", options.get("canary")),
                ("minSuccessRate", options.get("canary_min_success_rate")),
            )
            if v is not None
        }
    body["ratePerSecond"] = options.get("rate")
    body["stopWhenFailedAgainRate"] = options.get("stop_when_failed_again_rate")
    return body


def _staging(options: dict) -> str:
    parts = []
    if "canary" in options:
        canary = options["canary"]
        parts.append(f"canary {canary['size']} at >= {canary['minSuccessRate']:.0%} success")
    if "ratePerSecond" in options:
        parts.append(f"{options['ratePerSecond']:g}/s")
    if "stopWhenFailedAgainRate" in options:
        parts.append(f"stop at {options['stopWhenFailedAgainRate']:.0%} failed again")
    return ", ".join(parts)
