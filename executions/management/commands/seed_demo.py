"""`manage.py seed_demo [--manifest FILE] [--scale N]`: the demo data (executions/demo/).

On an empty database it creates the tenants acme and globex, the demo users and a week of varied
failures. Run again, it keeps all of that, issues fresh API keys and JWTs and adds a fresh set of
the manifest's items (the earlier ones may have been retried since), so the manifest it writes is
always true. --scale N adds N failed items of each kind, set-based.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from executions import demo


def non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise CommandError(f"--scale must be an integer; got {value!r}") from None
    if number < 0:
        raise CommandError(f"--scale must be >= 0; got {number}")
    return number


class Command(BaseCommand):
    help = "Create demo tenants, users and failures; --scale N adds N failures of each kind."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--manifest", metavar="FILE", help="Write the manifest (ids, keys, JWTs) as JSON here."
        )
        parser.add_argument(
            "--scale",
            metavar="N",
            type=non_negative,
            default=0,
            help="Also add N failed items of each of the five kinds (split across the tenants).",
        )

    def handle(self, *args, manifest: str | None, scale: int, **options) -> None:
        started = time.monotonic()
        existed = demo.demo_tenants_exist()
        data = demo.seed()
        seeded = time.monotonic()
        counts = demo.scale(scale) if scale else {}
        finished = time.monotonic()
        if manifest:
            path = Path(manifest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2) + "\n")
        parts = [
            "base kept, fresh keys and manifest items" if existed else "base data created",
            f"seed {seeded - started:.2f} s",
        ]
        if scale:
            parts.append(
                f"scale +{scale} failed x {len(counts)} kinds in {finished - seeded:.2f} s"
            )
        if manifest:
            parts.append(f"manifest {manifest}")
        self.stdout.write(
            f"seed_demo: {'; '.join(parts)}; total {finished - started:.2f} s "
            f"(logins: {', '.join(f'{u}/{demo.demo_password(u)}' for u in demo.USERS)})"
        )
