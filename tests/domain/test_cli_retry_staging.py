"""`manage.py retry --filter` with the staging the console and the API offer (a canary, a rate, a
stop rule): the bulk is queued for the workers with those options, not run at full speed in the
shell; a bad option names itself and starts nothing; `--reason` reaches the audit."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from executions.models import AuditEvent, AutomationExecution, BulkRetry
from tests.audit import retried_in

pytestmark = pytest.mark.django_db(transaction=True)


def retry(admin, *args: str) -> str:
    out = io.StringIO()
    call_command(
        "retry",
        *args,
        tenant=admin.tenant.slug,
        user=admin.user.username,
        stdout=out,
        stderr=io.StringIO(),
    )
    return out.getvalue()


def test_a_staged_bulk_is_queued_for_the_workers_with_its_options(items, admin):
    for _ in range(6):
        items.failed("automation", "fail")
    out = retry(
        admin,
        "--filter",
        "kind=automation",
        "--canary",
        "2",
        "--canary-min-success-rate",
        "0.5",
        "--rate",
        "3",
        "--reason",
        "upstream fixed",
    )
    bulk = BulkRetry.objects.get()
    assert f"staged bulk retry {bulk.pk} queued" in out
    assert f"/bulk/{bulk.pk}/" in out
    assert bulk.options == {
        "reason": "upstream fixed",
        "canary": {"size": 2, "minSuccessRate": 0.5},
        "ratePerSecond": 3.0,
    }
    assert (bulk.stage, bulk.status) == ("canary", "pending")
    # Nothing was retried in the shell: the canary is a worker's first step.
    assert AutomationExecution.objects.filter(status="failed").count() == 6
    assert DBTaskResult.objects.filter(status="READY").exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--rate", "0"], "ratePerSecond"),
        (["--canary", "0"], "canary.size"),
        (["--canary-min-success-rate", "0.5"], "canary.size"),
        (["--stop-when-failed-again-rate", "2"], "stopWhenFailedAgainRate"),
    ],
)
def test_a_bad_staging_option_names_itself_and_starts_nothing(items, admin, args, named):
    items.failed("automation", "fail")
    with pytest.raises(CommandError, match=named):
        retry(admin, "--filter", "kind=automation", *args)
    assert not BulkRetry.objects.exists()
    assert AutomationExecution.objects.filter(status="failed").count() == 1


def test_staging_needs_a_filter(items, admin):
    execution = items.failed("automation", "fail")
    with pytest.raises(CommandError, match="apply to a bulk"):
        retry(admin, "automation", execution, "--rate", "2")
    assert AutomationExecution.objects.get(pk=execution).status == "failed"


def test_the_reason_of_an_unstaged_bulk_and_of_single_retries_is_audited(items, admin):
    first, second = (items.failed("automation", "fail") for _ in range(2))
    out = retry(admin, "--filter", "kind=automation", "--reason", "dns fixed")
    assert "retried 2" in out
    retried = retried_in(BulkRetry.objects.get())
    assert {e.target_id for e in retried} == {first, second}
    assert {e.details.get("reason") for e in retried} == {"dns fixed"}

    third = items.failed("automation", "fail")
    retry(admin, "automation", third, "--reason", "one more")
    assert AuditEvent.objects.get(action="retry", target_id=third).details == {"reason": "one more"}
