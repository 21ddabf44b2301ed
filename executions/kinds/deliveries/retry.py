"""When a webhook delivery may be retried, and what a retry does: a failed or dead delivery goes
back to `pending` (ahead of its subscription's later ones: order is by event) and the
subscription's worker is woken. Not while its subscription is disabled: enable it first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.utils import timezone

from ...models import WebhookDelivery
from ..base import Retried, Rule, by_status

if TYPE_CHECKING:
    from ...tenancy import Actor

RETRYABLE = ("failed", "dead")
DISABLED = "Its webhook is disabled: enable it first"


def reason(obj: WebhookDelivery) -> str | None:
    if obj.status not in RETRYABLE:
        return f"Delivery is {obj.status}"
    if not obj.subscription.enabled:
        return DISABLED
    return None


def retryable(qs: QuerySet, actor: Actor) -> QuerySet:
    return qs.filter(status__in=RETRYABLE, subscription__enabled=True)


def not_retryable(qs: QuerySet, actor: Actor) -> dict[str, int]:
    counts = by_status(qs, RETRYABLE)
    disabled = qs.filter(status__in=RETRYABLE, subscription__enabled=False).count()
    if disabled:
        counts[DISABLED] = disabled
    return counts


def retry(actor: Actor, ids: list, **options) -> list[Retried]:
    from ...webhooks.delivery import kick

    locked = list(
        WebhookDelivery.objects.select_for_update(of=("self",))
        .filter(pk__in=ids, tenant=actor.tenant, status__in=RETRYABLE, subscription__enabled=True)
        .order_by("pk")
        .values_list("pk", "status", "subscription_id")
    )
    WebhookDelivery.objects.filter(pk__in=[pk for pk, _, _ in locked]).update(
        status="pending", next_attempt_at=None, updated_at=timezone.now()
    )
    for sub_id in dict.fromkeys(sub for _, _, sub in locked):
        kick(sub_id)
    return [Retried(pk, pk, status, "pending") for pk, status, _ in locked]


RULE = Rule(reason, retryable, not_retryable, retry)
