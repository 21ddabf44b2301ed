"""A sixth kind is its own package plus one line in the registry: tests/sixth_kind/ (a model with
its migration, a retry rule, a runner and its KIND), put in kinds.KINDS, works end to end with
nothing else changed: the console's inbox, detail page and Retry button, GET /api/failures and
its bulk retry, the filter, a single and a bulk retry (and the audit), the CLI, the reaper and,
on PostgreSQL, the failure counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from executions import failure_counts, filters, kinds, reaper, services
from executions.errors import NotFound, NotRetryable
from executions.fingerprints import fingerprint
from executions.models import ApiKey, AuditEvent, FailureCount, Membership, Tenant
from executions.tenancy import Actor
from tests.audit import retried_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tickets(settings, monkeypatch, transactional_db):
    """The sixth kind, installed and migrated, and in the registry."""
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.sixth_kind"]
    from tests.sixth_kind import kind as tickets

    monkeypatch.setattr(kinds, "KINDS", (*kinds.KINDS, tickets.KIND))  # the one line
    call_command("migrate", "sixth_kind", verbosity=0)  # and its failures are counted from now on
    yield tickets
    with connection.cursor() as cursor:
        if failure_counts.enabled():
            failure_counts.drop(cursor, failure_counts.counted(tickets.KIND))
    call_command("migrate", "sixth_kind", "zero", verbosity=0)


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme")


@pytest.fixture
def operator(tenant) -> Actor:
    """An operator: their role has the sixth kind's permissions as the five others'."""
    user = get_user_model().objects.create_user("olivia", password="olivia-pass-2026")
    Membership.objects.create(user=user, tenant=tenant, role="operator")
    actor = Actor.for_user(user, tenant, source="cli")
    assert {"tickets:read", "tickets:retry"} <= actor.permissions
    return actor


def failed_ticket(tickets, tenant: Tenant, queue: str = "billing", *, fails: bool = False):
    message = f"{queue} is down"
    return tickets.Ticket.objects.create(
        tenant=tenant,
        queue=queue,
        status="failed",
        fails=fails,
        error_message=message,
        fingerprint=fingerprint("ticket", queue, "RuntimeError", message),
    )


def test_the_filter_finds_a_sixth_kinds_failures_by_kind_status_name_and_text(tickets, tenant):
    billing, mail = failed_ticket(tickets, tenant), failed_ticket(tickets, tenant, "mail")
    tickets.Ticket.objects.create(tenant=tenant, queue="billing", status="done")

    assert "ticket" in filters.parse({}).kinds
    flt = filters.parse({"kind": "ticket"})
    assert set(flt.queryset("ticket", tenant)) == {billing, mail}
    assert list(filters.parse({"kind": "ticket", "name": "mail"}).queryset("ticket", tenant)) == [
        mail
    ]
    by_text = filters.parse({"kind": "ticket", "q": "billing is"})
    assert list(by_text.queryset("ticket", tenant)) == [billing]
    assert filters.parse({"status": "done", "kind": "ticket"}).queryset("ticket", tenant).count()


def test_a_sixth_kind_is_retried_one_by_one_audited_and_run_by_its_task(tickets, operator):
    ticket = failed_ticket(tickets, operator.tenant)

    outcome = services.retry_one(operator, "ticket", str(ticket.pk))

    ticket.refresh_from_db()
    assert (outcome.kind, outcome.new_id, ticket.status, ticket.attempt) == (
        "ticket",
        str(ticket.pk),
        "open",
        2,
    )
    audit = AuditEvent.objects.get(kind="ticket")
    assert (audit.target_id, audit.status_before, audit.status_after) == (
        str(ticket.pk),
        "failed",
        "open",
    )
    # Its task was queued with the retry, and runs the ticket.
    tickets.process_ticket.call(ticket.pk)
    ticket.refresh_from_db()
    assert ticket.status == "done"
    # A ticket that is no longer failed is not retried, and says why.
    with pytest.raises(NotRetryable, match="Ticket is done"):
        services.retry_one(operator, "ticket", str(ticket.pk))
    with pytest.raises(NotFound, match="Ticket not found"):
        services.retry_one(operator, "ticket", "999999")


def test_a_sixth_kind_is_retried_in_bulk_with_the_others(tickets, operator):
    failing = [failed_ticket(tickets, operator.tenant, fails=True) for _ in range(3)]
    done = tickets.Ticket.objects.create(tenant=operator.tenant, queue="billing", status="done")

    selection = {"filter": filters.parse({"kind": "ticket,job", "status": "failed,done"})}
    preview = services.preview_retry(operator, selection)
    assert preview["kinds"]["ticket"] == {"will_retry": 3, "not_retryable": {"status is done": 1}}
    bulk = services.start_bulk_retry(operator, selection)
    services.run_bulk_retry(str(bulk.pk))  # what its task does in a worker

    bulk.refresh_from_db()
    assert (bulk.status, bulk.done, bulk.failed) == ("finished", 3, 0)
    assert bulk.summary["kinds"]["ticket"] == {"retried": 3, "failed": 0}
    assert {e.target_id for e in retried_in(bulk)} == {str(t.pk) for t in failing}
    for ticket in failing:
        tickets.execute(ticket.pk)
    assert set(tickets.Ticket.objects.values_list("status", flat=True)) == {"failed", "done"}
    done.refresh_from_db()
    assert done.attempt == 1


def test_the_cli_retries_a_sixth_kind(tickets, operator, capsys):
    ticket = failed_ticket(tickets, operator.tenant)
    call_command("retry", "ticket", str(ticket.pk), tenant="acme", user="olivia")
    assert f"ticket {ticket.pk}: retried as {ticket.pk} (open)" in capsys.readouterr().out


def test_the_reaper_fails_a_sixth_kinds_lost_attempts(tickets, tenant):
    lost = tickets.Ticket.objects.create(
        tenant=tenant,
        queue="billing",
        status="running",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert reaper.reap()["ticket"] == 1
    lost.refresh_from_db()
    assert lost.status == "failed" and lost.error_message.startswith("worker lost")


@pytest.mark.pg_only
def test_a_sixth_kinds_failures_are_counted_from_its_first_migrate(tickets, tenant):
    for queue in ("billing", "billing", "mail"):
        failed_ticket(tickets, tenant, queue)
    failure_counts.fold()
    counts = dict(
        FailureCount.objects.filter(kind="ticket")
        .values_list("source")
        .annotate(n=__import__("django.db.models", fromlist=["Sum"]).Sum("n"))
    )
    assert counts == {"billing": 2, "mail": 1}


def test_the_console_and_the_api_show_and_retry_a_sixth_kind(tickets, operator, client):
    ticket = failed_ticket(tickets, operator.tenant)
    client.force_login(operator.user)

    inbox = client.get("/", {"kind": "ticket"})
    assert inbox.status_code == 200
    assert f"/executions/ticket/{ticket.pk}/" in inbox.content.decode()
    detail = client.get(f"/executions/ticket/{ticket.pk}/")
    assert detail.status_code == 200
    page = detail.content.decode()
    assert f"Ticket {ticket.pk}" in page and "billing is down" in page
    retried = client.post(f"/executions/ticket/{ticket.pk}/retry/", {"idempotency_key": "k-1"})
    assert retried.status_code in (200, 302)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.attempt) == ("open", 2)

    _, key = ApiKey.objects.create_key(
        name="tickets", tenant=operator.tenant, permissions=["tickets:read", "tickets:retry"]
    )
    again = failed_ticket(tickets, operator.tenant, "mail")
    listed = client.get("/api/failures", {"kind": "ticket"}, headers={"X-API-Key": key})
    assert listed.status_code == 200, listed.content
    [item] = listed.json()["items"]
    assert (item["kind"], item["id"], item["name"]) == ("ticket", str(again.pk), "mail")
    bulk = client.post(
        "/api/failures/retry",
        {"ids": {"ticket": [str(again.pk)]}},
        content_type="application/json",
        headers={"X-API-Key": key},
    )
    assert bulk.status_code == 202, bulk.content
    services.run_bulk_retry(bulk.json()["id"])  # what its task does in a worker
    again.refresh_from_db()
    assert (again.status, again.attempt) == ("open", 2)


def test_a_sixth_kinds_ignore_until_a_date_ends_on_time(tickets, operator):
    """The reaper round's sweep reads the sixth kind's table by its own index (its migration
    0003) and opens its failures ignored until a date once the date passes."""
    from executions import triage

    ticket = failed_ticket(tickets, operator.tenant)
    until = timezone.now() + timedelta(hours=1)
    triage.ignore(operator, "ticket", ticket.pk, until=until)
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, tickets.Ticket._meta.db_table)
    assert "ticket_ignored_until" in indexes

    assert triage.lapse_ignores(now=until - timedelta(seconds=1)) == 0
    assert triage.lapse_ignores(now=until + timedelta(seconds=1)) == 1

    ticket.refresh_from_db()
    assert (ticket.triage, ticket.triage_until) == ("open", None)
    audit = AuditEvent.objects.get(action="reopen", kind="ticket")
    assert (audit.actor, audit.target_id, audit.status_after) == ("redrive", str(ticket.pk), "open")
