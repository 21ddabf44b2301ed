"""The project's settings plus an app that has a redrive_handlers.py."""

from project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.work.deployer_app"]  # noqa: F405
