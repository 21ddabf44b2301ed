"""The demo data, seeded once for this package and committed (each test's own changes roll back):
the tests here only read the manifest, and seeding per test would cost more than the tests."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.fixture(scope="package")
def manifest(django_db_setup, django_db_blocker) -> dict:
    from executions.demo import seed

    with django_db_blocker.unblock():
        manifest = seed()
    yield manifest
    with django_db_blocker.unblock():
        # Leave the test database as pytest-django's other tests expect it: empty.
        call_command("flush", interactive=False, verbosity=0)
