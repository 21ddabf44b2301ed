"""What every kind's retry shares: it really re-runs, refuses what it must without changing
anything, lets exactly one of two racing retries win, leaves lineage, audit and events, does
nothing when rolled back, and honours idempotency keys."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django_tasks_db.models import DBTaskResult

from executions import kinds, services
from executions.errors import IdempotencyKeyReused, NotRetryable
from executions.events import published
from executions.models import Attempt, AuditEvent, OutboxEvent

from .conftest import KINDS, MODELS, options

FINAL_SUCCESS = {
    "function": "success",
    "automation": "completed",
    "job": "completed",
    "workflow": "COMPLETED",
    "run": "success",
}


def retry_events():
    """The outbox rows a retry writes (a failure made for a test writes failure.new_group)."""
    return OutboxEvent.objects.exclude(name__startswith="failure.")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_a_retried_item_really_runs_again_and_succeeds(kind, items, admin, run_worker):
    item = items.failed(kind)
    assert MODELS[kind].objects.get(pk=item).status in kinds.get(kind).retryable_statuses

    outcome = services.retry_one(admin, kind, item, **options(admin, kind))
    run_worker()

    new = MODELS[kind].objects.get(pk=outcome.new_id)
    assert new.status == FINAL_SUCCESS[kind]
    if kind in ("function", "job", "run"):
        assert outcome.new_id != outcome.target_id  # appended, the original kept as it was
        assert MODELS[kind].objects.get(pk=item).status in kinds.get(kind).retryable_statuses
    else:
        assert outcome.new_id == outcome.target_id  # the same execution, resumed


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_a_non_retryable_item_gives_the_state_error_and_changes_nothing(kind, items, admin):
    item = items.not_retryable(kind)
    before = model_to_dict(MODELS[kind].objects.get(pk=item))

    with pytest.raises(NotRetryable):
        services.retry_one(admin, kind, item, **options(admin, kind))

    assert model_to_dict(MODELS[kind].objects.get(pk=item)) == before
    assert MODELS[kind].objects.count() == 1
    assert not AuditEvent.objects.exists()
    assert not retry_events().exists()


@pytest.mark.pg_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_two_racing_retries_from_two_connections_make_exactly_one_retry(
    kind, items, admin, monkeypatch
):
    item = items.failed(kind)
    count_before = MODELS[kind].objects.count()
    results: list[object] = []

    # Racing means both callers looked the item up before either retried it: each waits here,
    # past its look-up and inside its transaction, for the other. (Without it, a function's
    # retry could end before the other caller even looked, and retrying it again is then right.)
    looked_up = threading.Barrier(2, timeout=10)
    spec = kinds.get(kind)

    def retry_once_both_looked(*args, **kwargs):
        looked_up.wait()
        return spec.rule.retry(*args, **kwargs)

    racing = dataclasses.replace(spec, rule=spec.rule._replace(retry=retry_once_both_looked))
    monkeypatch.setattr(kinds, "KINDS", tuple(racing if k is spec else k for k in kinds.KINDS))

    opts = [options(admin, kind), options(admin, kind)]  # two callers, two sessions

    def attempt(i: int) -> None:
        try:
            results.append(services.retry_one(admin, kind, item, **opts[i]))
        except NotRetryable as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    successes = [r for r in results if isinstance(r, services.RetryOutcome)]
    errors = [r for r in results if isinstance(r, NotRetryable)]
    assert (len(successes), len(errors)) == (1, 1), results
    assert AuditEvent.objects.filter(target_id=item).count() == 1
    new_rows = MODELS[kind].objects.count() - count_before
    assert new_rows == (1 if kind in ("function", "job", "run") else 0)
    if kind in ("automation", "workflow"):
        assert Attempt.objects.filter(object_id=item).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_a_retry_leaves_lineage_an_audit_row_and_its_event(kind, items, admin):
    item = items.failed(kind)
    original = MODELS[kind].objects.get(pk=item)
    received: list[dict] = []

    def on_event(sender, name, payload, **kwargs):
        received.append({"name": name, **payload})

    published.connect(on_event)
    try:
        outcome = services.retry_one(admin, kind, item, **options(admin, kind))
    finally:
        published.disconnect(on_event)

    audit = AuditEvent.objects.get(target_id=item)
    assert (audit.kind, audit.actor, audit.source, audit.user_id) == (
        kind,
        "user:alice",
        "api",
        admin.user.pk,
    )
    assert (audit.request_id, audit.ip, audit.new_target_id) == (
        "req-test-1",
        "127.0.0.1",
        outcome.new_id,
    )
    assert audit.status_before == original.status

    new = MODELS[kind].objects.get(pk=outcome.new_id)
    if kind == "function":
        assert new.retry_of_id == item and new.retry_count == original.retry_count + 1
        assert MODELS[kind].objects.get(pk=item).retried_by == new
        assert new.payload == original.payload
    elif kind == "job":
        assert (
            new.retry_of_id == original.pk and MODELS[kind].objects.get(pk=item).retried_by == new
        )
        assert original.events.filter(type="retried", data__new_job_id=outcome.new_id).exists()
    elif kind == "run":
        assert new.source_run_id == item and MODELS[kind].objects.get(pk=item).retried_by == new
    else:
        # Retried in place: the failed attempt's evidence is kept in the history.
        history = Attempt.objects.get(kind=kind, object_id=item)
        assert history.error_message == original.error_message
        assert history.error_stack == original.error_stack
        assert history.error_message

    if kind == "automation":
        assert received == [
            {
                "name": "automation.execution.retried",
                "executionId": item,
                "tenantId": str(admin.tenant.pk),
                "userId": str(admin.user.pk),
            }
        ]
        assert OutboxEvent.objects.get(name="automation.execution.retried").published_at is not None
    else:
        assert received == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_a_rolled_back_retry_queues_nothing_and_publishes_nothing(kind, items, admin):
    item = items.failed(kind)
    before = model_to_dict(MODELS[kind].objects.get(pk=item))
    tasks_before = DBTaskResult.objects.count()
    received: list[str] = []
    published.connect(
        lambda sender, name, **kw: received.append(name), weak=False, dispatch_uid="rollback-test"
    )

    class Boom(Exception):
        pass

    try:
        with pytest.raises(Boom), transaction.atomic():
            retried = kinds.get(kind).rule.retry(admin, [item])  # inside an outer transaction
            assert len(retried) == 1
            raise Boom
    finally:
        published.disconnect(dispatch_uid="rollback-test")

    assert DBTaskResult.objects.count() == tasks_before
    assert not retry_events().exists() and received == []
    assert model_to_dict(MODELS[kind].objects.get(pk=item)) == before


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_an_idempotency_key_returns_the_first_result_instead_of_retrying_twice(kind, items, admin):
    item = items.failed(kind)

    first = services.retry_one(admin, kind, item, idempotency_key="key-123", **options(admin, kind))
    again = services.retry_one(admin, kind, item, idempotency_key="key-123", **options(admin, kind))

    assert (first.replayed, again.replayed) == (False, True)
    assert again.new_id == first.new_id
    assert AuditEvent.objects.filter(target_id=item).count() == 1


@pytest.mark.django_db
def test_an_idempotency_key_used_for_another_retry_is_refused_and_changes_nothing(items, admin):
    first, other = items.failed("run"), items.failed("run")
    services.retry_one(admin, "run", first, idempotency_key="key-9")

    with pytest.raises(IdempotencyKeyReused, match='Idempotency-Key "key-9" was already used'):
        services.retry_one(admin, "run", other, idempotency_key="key-9")

    assert not AuditEvent.objects.filter(target_id=other).exists()
    assert MODELS["run"].objects.get(pk=other).status == "failure"


@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_or_a_tenant_keeps_the_evidence_consistent(items, admin, tenant):
    """Audit, attempt and event rows have no database foreign-key checks (see models.py); Django
    still nulls and cascades them on delete."""
    item = items.failed("automation")
    services.retry_one(admin, "automation", item)
    assert AuditEvent.objects.filter(target_id=item, user=admin.user).count() == 1
    admin.user.delete()
    assert AuditEvent.objects.get(target_id=item).user_id is None
    assert Attempt.objects.filter(object_id=item).exists()
    assert OutboxEvent.objects.filter(tenant=tenant).exists()
    tenant.delete()
    assert not AuditEvent.objects.filter(target_id=item).exists()
    assert not Attempt.objects.filter(object_id=item).exists()
    assert not retry_events().filter(tenant_id=tenant.pk).exists()
