"""A bulk retry is one operator action: one audit row for the bulk, and each item it resets in
place (automations, workflows) names that row in its attempt history instead of an audit row of
its own. What users see is unchanged: the audit page, its filters and the item's detail page show
each item "retried by alice in bulk <id>"; the admin lists the bulk's row."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from executions import selectors, services
from executions.models import Attempt, AuditEvent, AutomationExecution, BulkRetry
from executions.tenancy import Actor

pytestmark = pytest.mark.django_db


def bulk_retry(client, picked: list[str]) -> BulkRetry:
    """Alice's bulk retry of `picked` ("kind:id") from the console, run as its worker runs it."""
    client.post(reverse("bulk_start"), {"mode": "ids", "sel": picked})
    bulk = BulkRetry.objects.get()
    services.run_bulk_retry(str(bulk.pk))
    bulk.refresh_from_db()
    return bulk


def rows(page: str) -> list[str]:
    return re.findall(r"<tr>\s*<td data-label=\"When\">.*?</tr>", page, re.S)


def test_a_bulk_writes_one_audit_row_and_the_audit_still_shows_every_item(login, cast) -> None:
    client = login("alice")
    items = {kind: str(cast.item(kind).pk) for kind in ("automation", "workflow", "job", "run")}
    bulk = bulk_retry(client, [f"{kind}:{pk}" for kind, pk in items.items()])
    assert (bulk.status, bulk.done) == ("finished", 4)

    # The evidence: the bulk's row, and audit rows only for the kinds that clone (their clone is
    # a row of its own, with no history row to name the bulk).
    bulk_row = AuditEvent.objects.get(action="bulk retry")
    assert (bulk_row.actor, bulk_row.source, bulk_row.bulk_id) == ("user:alice", "console", bulk.pk)
    assert bulk_row.details["total"] == 4
    assert bulk_row.details["selection"] == bulk.selection
    assert set(AuditEvent.objects.filter(action="retry").values_list("kind", flat=True)) == {
        "job",
        "run",
    }
    in_place = Attempt.objects.filter(bulk_audit=bulk_row)
    assert sorted(in_place.values_list("kind", "object_id")) == sorted(
        [("automation", items["automation"]), ("workflow", items["workflow"])]
    )

    # What users see: the bulk's items on the audit page filtered by the bulk, each as before.
    page = client.get(reverse("audit"), {"bulk": str(bulk.pk)}).content.decode()
    shown = rows(page)
    assert len(shown) == 5  # the bulk's own row and its four items
    bulk_link = f'<a class="tag" href="{reverse("bulk", kwargs={"bulk_id": bulk.pk})}">bulk</a>'
    for kind, pk in items.items():
        (row,) = [r for r in shown if reverse("detail", args=[kind, pk]) in r]
        assert '<td data-label="Who" class="mono">user:alice</td>' in row
        assert '<td data-label="From">console' in row and bulk_link in row
    (automation,) = [r for r in shown if items["automation"][:12] in r]
    assert "failed → pending" in automation and "same record" in automation
    (workflow,) = [r for r in shown if items["workflow"][:12] in r]
    assert "FAILED → RUNNING" in workflow

    # By item, by kind, by who.
    by_target = client.get(reverse("audit"), {"target": items["automation"]}).content.decode()
    assert len(rows(by_target)) == 1 and bulk_link in by_target
    by_kind = client.get(reverse("audit"), {"kind": "workflow"}).content.decode()
    assert items["workflow"][:12] in by_kind and items["automation"][:12] not in by_kind
    assert len(rows(client.get(reverse("audit"), {"actor": "user:alice"}).content.decode())) == 5
    assert not rows(client.get(reverse("audit"), {"actor": "user:dave"}).content.decode())
    assert not rows(client.get(reverse("audit"), {"source": "api"}).content.decode())

    # The item's detail page: retried by alice, in a bulk.
    detail = client.get(reverse("detail", args=["automation", items["automation"]])).content
    audit = detail.decode().split('id="h-audit"')[1]
    assert '<td data-label="Who" class="mono">user:alice</td>' in audit
    assert '<span class="tag">bulk</span>' in audit
    assert 'retry <span class="muted small">(failed → pending)</span>' in audit

    # Another tenant sees none of it.
    assert not rows(login("carol").get(reverse("audit")).content.decode())


def test_the_admins_audit_list_shows_the_bulk_retry(client, login, cast) -> None:
    bulk = bulk_retry(login("alice"), [f"automation:{cast.automation.pk}"])
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    client.force_login(root)
    page = client.get(reverse("admin:executions_auditevent_changelist")).content.decode()
    assert "bulk retry" in page
    assert str(bulk.pk) in page


def failed_automations(tenant, n: int) -> list[str]:
    rule = AutomationExecution.objects.filter(tenant=tenant).first().automation_rule
    now = timezone.now()
    made = AutomationExecution.objects.bulk_create(
        AutomationExecution(
            tenant=tenant,
            automation_rule=rule,
            status="failed",
            updated_at=now,
            error_message="boom",
            execution_context={"actions": rule.actions},
        )
        for _ in range(n)
    )
    return [str(e.pk) for e in made]


def test_the_audit_pages_through_a_bulks_items_and_the_rows_around_it(login, cast) -> None:
    client = login("alice")
    retried = failed_automations(cast.acme, 59)
    bulk = bulk_retry(client, [f"automation:{pk}" for pk in retried])
    assert bulk.done == 59
    client.post(reverse("retry", kwargs={"kind": "run", "object_id": cast.run.pk}))  # after it

    first = client.get(reverse("audit")).content.decode()
    more = re.search(r'href="\?before=(\d+)&amp;item=(\d+)">Older entries', first)
    assert more, "the next page starts inside the bulk"
    second = client.get(reverse("audit"), {"before": more[1], "item": more[2]}).content.decode()
    assert "Older entries" not in second
    # The single retry, the bulk's row, then its 59 items newest first, each once.
    shown = rows(first) + rows(second)
    assert len(shown) == 1 + 1 + 59
    assert str(cast.run.pk)[:12] in shown[0]
    assert "bulk retry" in shown[1]
    seen = [pk for r in shown[2:] for pk in retried if pk[:12] in r]
    assert sorted(seen) == sorted(retried)


def test_the_selector_pages_any_mix_of_rows_and_items_in_one_order(login, cast) -> None:
    """Small pages over two bulks and single retries between them: every entry once, newest
    first, whatever page boundary falls inside a bulk."""
    client = login("alice")
    first_batch = failed_automations(cast.acme, 7)
    alice = Actor.for_user(cast.users["alice"], cast.acme, source="cli")
    services.retry_many(alice, {"ids": {"automation": first_batch}})
    client.post(reverse("retry", kwargs={"kind": "job", "object_id": cast.job.pk}))
    second_batch = failed_automations(cast.acme, 5)
    services.retry_many(alice, {"ids": {"automation": second_batch}})
    everything, more = selectors.audit_events(cast.acme, limit=100)
    assert more is None
    assert len(everything) == 2 + 7 + 1 + 5
    for limit in (1, 2, 3, 4, 6):
        paged, cursor = [], None
        while True:
            page, cursor = selectors.audit_events(
                cast.acme,
                limit=limit,
                before=cursor.before if cursor else None,
                item=cursor.item if cursor else None,
            )
            paged += page
            if cursor is None:
                break
        key = [(e.action, e.kind, e.target_id) for e in everything]
        assert [(e.action, e.kind, e.target_id) for e in paged] == key, limit
    # Newest first: the second bulk and its items, the single retry, the first bulk and its.
    assert [e.action for e in everything[:7]] == ["bulk retry"] + ["retry"] * 5 + ["retry"]
    assert everything[6].kind == "job"
    assert {e.target_id for e in everything[8:]} == set(first_batch)
