"""A no-op django.tasks task: what the stock db_worker drains in bench/drain.py."""

from django.tasks import task


@task()
def noop() -> None:
    return None
