"""`manage.py handlers`: the registered handlers, one line each: its name and `module:function`."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from executions import handlers


class Command(BaseCommand):
    help = "List the registered handlers (name and module:function)."

    def handle(self, *args, **options) -> None:
        names = handlers.names()
        width = max((len(n) for n in names), default=0)
        for name in names:
            self.stdout.write(f"{name.ljust(width)}  {handlers.location(handlers.get(name))}")
