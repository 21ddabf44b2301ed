"""`manage.py up`: everything a developer needs, in one command.

Migrates, seeds the demo data when the database has no tenant yet, then runs the web server and a
worker side by side as child processes, prints where to go and how to log in, and stops both on
Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from executions.models import Tenant

# How long a child gets to stop by itself (a worker finishes its current task) before SIGKILL;
# an attempt cut short that way is failed as "worker lost" by the next worker's reaper.
STOP_GRACE_SECONDS = 10


DEMO_HANDLERS = "executions.demo.handlers"


def _with_demo() -> str:
    """REDRIVE_HANDLER_MODULES plus the demo's handlers: the demo data runs them."""
    return ",".join(dict.fromkeys([*settings.REDRIVE_HANDLER_MODULES, DEMO_HANDLERS]))


class Command(BaseCommand):
    help = "Migrate, seed demo data if empty, and run the web server and a worker together."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Web server port (8000).")
        parser.add_argument(
            "--manifest",
            default=str(settings.BASE_DIR / "var" / "demo-manifest.json"),
            help="Where seed_demo writes the demo logins (var/demo-manifest.json).",
        )

    def handle(self, *args, port: int, manifest: str, **options) -> None:
        manifest_path = Path(manifest)
        self.stdout.write("Migrating the database ...")
        call_command("migrate", interactive=False, verbosity=0)
        if not Tenant.objects.exists():
            self.stdout.write(f"Empty database: seeding demo data (manifest: {manifest_path}) ...")
            manifest_path.parent.mkdir(parents=True, exist_ok=True)
            call_command("seed_demo", "--manifest", str(manifest_path))

        self._stopping = False
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        children = {
            "web server": self._start("runserver", f"127.0.0.1:{port}", "--noreload"),
            "worker": self._start("worker"),
        }
        try:
            if self._wait_for_port(port, children):
                self._banner(port, manifest_path)
            while not self._stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        raise CommandError(f"the {name} exited with code {child.returncode}")
                time.sleep(0.2)
        finally:
            self.stdout.write("Stopping the web server and the worker ...")
            self._shutdown(list(children.values()))
        self.stdout.write("Stopped.")

    def _stop(self, signum: int, frame) -> None:
        self._stopping = True

    def _start(self, *command: str) -> subprocess.Popen:
        # Each child leads its own process group: the terminal's Ctrl-C reaches only us, and we
        # stop each group in order (and everything in it).
        return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py, fixed arguments
            [sys.executable, str(settings.BASE_DIR / "manage.py"), *command],
            cwd=settings.BASE_DIR,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "REDRIVE_HANDLER_MODULES": _with_demo()},
            start_new_session=True,
        )

    def _wait_for_port(self, port: int, children: dict[str, subprocess.Popen]) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._stopping:
            if any(child.poll() is not None for child in children.values()):
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.2)
        return False

    def _shutdown(self, children: list[subprocess.Popen]) -> None:
        for child in children:
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self._signal(child, signal.SIGKILL)
                child.wait()

    @staticmethod
    def _signal(child: subprocess.Popen, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)

    def _banner(self, port: int, manifest_path: Path) -> None:
        lines = ["", f"Redrive is running at http://127.0.0.1:{port}", ""]
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            manifest = None
        if manifest:
            lines.append("Demo logins (username / password, role in tenant):")
            for username, user in manifest["users"].items():
                lines.append(
                    f"  {username:<6} / {user['password']:<20} {user['role']} in {user['tenant']}"
                )
            username, key = next(iter(manifest["api_keys"].items()))
            lines += [
                "",
                f"API key of {username}: {key}",
                f"All demo credentials and ids: {manifest_path}",
            ]
        else:
            lines.append(f"(No demo manifest at {manifest_path}: the database was not empty.)")
        lines += ["", "A worker is running beside the web server. Press Ctrl-C to stop both.", ""]
        self.stdout.write("\n".join(lines))
