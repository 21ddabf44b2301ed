"""The project's settings plus the sixth kind's app (for makemigrations; the tests install it with
pytest-django's `settings`)."""

from project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.sixth_kind"]  # noqa: F405
