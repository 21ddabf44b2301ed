#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    # manage.py is the development entry point: DEBUG defaults on here (and only here), so a fresh
    # clone runs without a SECRET_KEY. wsgi.py/asgi.py default to DEBUG off. Set DEBUG=0 for
    # production commands (workers, migrate).
    os.environ.setdefault("DEBUG", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
