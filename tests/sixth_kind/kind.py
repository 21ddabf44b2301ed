"""A sixth kind, whole, as a deployer would add one: its model (models.py, with its migration),
its retry rule and its runner (below) and its KIND. Registered by one line in
executions/kinds/__init__.py's KINDS (the tests put it there with monkeypatch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from executions import leases
from executions.kinds.base import KindSpec, Retried, Rule, by_status, failure, worker_lost
from executions.kinds.shown import Shown
from executions.queueing import enqueue_on_commit, worker_task

from .models import Ticket

if TYPE_CHECKING:
    from executions.tenancy import Actor

NAME = "ticket"
RETRYABLE = ("failed",)


# --- the retry rule: the same ticket goes back to the queue ---------------------------------


def reason(obj: Ticket) -> str | None:
    return None if obj.status in RETRYABLE else f"Ticket is {obj.status}"


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE)


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    return by_status(qs, RETRYABLE)


def retry(actor: Actor, ids: list, **options) -> list[Retried]:
    locked = list(
        Ticket.objects.select_for_update()
        .filter(pk__in=ids, tenant=actor.tenant, status__in=RETRYABLE)
        .values_list("pk", flat=True)
    )
    Ticket.objects.filter(pk__in=locked).update(
        status="open", attempt=F("attempt") + 1, error_message=None, updated_at=timezone.now()
    )
    for pk in locked:
        enqueue_on_commit(process_ticket, pk)
    return [Retried(pk, pk, "failed", "open") for pk in locked]


# --- the runner ---------------------------------------------------------------------------------


def execute(ticket_id: int) -> None:
    won = leases.claim(
        Ticket.objects.filter(pk=ticket_id, status="open"),
        to_status="running",
        owner=leases.new_owner(),
    )
    if str(ticket_id) not in won:
        return
    ticket = Ticket.objects.get(pk=ticket_id)
    values = {"status": "done"}
    if ticket.fails:
        values = {"status": "failed", **failure(NAME, ticket.queue, RuntimeError("queue is down"))}
    leases.finish(
        Ticket,
        ticket_id,
        won[str(ticket_id)],
        running_status="running",
        updated_at=timezone.now(),
        **values,
    )


@worker_task
def process_ticket(ticket_id: int) -> None:
    execute(ticket_id)


def reap(now) -> int:
    return leases.fail_lost(
        Ticket,
        Q(lease_expires_at__lt=now, status="running"),
        status="failed",
        updated_at=now,
        **worker_lost(NAME),
    )


# --- what it shows: its inbox row, its detail page (templates/console/kinds/ticket.html) -------


class TicketShown(Shown):
    short = "Ticket"
    row_fields = ("id", "updated_at", "queue", "attempt")
    started_field, finished_field = "created_at", "updated_at"
    input_field = "queue"
    retried_text = "Retry queued: the ticket is {outcome.obj.status}"

    def attempts(self, obj: Ticket) -> int:
        return obj.attempt

    def api_urls(self, tenant, obj: Ticket) -> tuple[str, str]:
        # No API of its own: its console page, and the API's retry of any kind.
        return reverse("detail", args=[NAME, obj.pk]), reverse("api-failures-retry")


KIND = KindSpec(
    name=NAME,
    label="Ticket",
    model=Ticket,
    failed_statuses=("failed",),
    retryable_statuses=RETRYABLE,
    in_flight=("open", "running"),
    success_statuses=("done",),
    time_field="updated_at",
    name_field="queue",
    name_label="queue",
    count_source="queue",
    permission="tickets:retry",
    read_permission="tickets:read",
    not_found="Ticket not found",
    rule=Rule(reason, retryable, not_retryable, retry),
    shown=TicketShown(),
    reap=reap,
)
