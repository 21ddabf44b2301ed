"""The Django admin: every model is registered and browsable, errors show in <pre>, and "Retry
selected" goes through the domain (permission-checked, confirmation above a few items)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.urls import reverse

from executions.models import AuditEvent, AutomationExecution, FunctionExecution

from .conftest import failed_automation

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client, cast):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    client.force_login(user)
    return client


def changelist(model) -> str:
    return reverse(f"admin:executions_{model._meta.model_name}_changelist")


def test_every_model_is_registered_and_its_list_renders(root) -> None:
    for model in apps.get_app_config("executions").get_models():
        assert admin.site.is_registered(model), model
        response = root.get(changelist(model))
        assert response.status_code == 200, model


def test_an_execution_page_shows_error_and_stack_read_only_in_pre(root, cast) -> None:
    url = reverse("admin:executions_automationexecution_change", args=[cast.automation.pk])
    page = root.get(url).content.decode()
    assert "<pre>connection reset by peer" in page
    assert "Traceback (most recent call last)" in page
    assert 'name="error_stack"' not in page  # not an editable field
    assert root.post(url, {}).status_code == 403  # executions are changed by retrying only


def test_retry_selected_retries_through_the_domain(root, cast) -> None:
    second = failed_automation(cast.acme, "Second rule")
    response = root.post(
        changelist(AutomationExecution),
        {
            "action": "retry_selected",
            ACTION_CHECKBOX_NAME: [str(cast.automation.pk), str(second.pk), str(cast.foreign.pk)],
        },
        follow=True,
    )
    assert "Retried 3 executions; 0 skipped (not retryable)" in response.content.decode()
    assert AutomationExecution.objects.filter(status="pending").count() == 3
    audit = AuditEvent.objects.filter(source="admin")
    assert audit.count() == 3
    assert {e.actor for e in audit} == {"user:root"}
    # each audit row is in the item's own tenant (a superuser acts as admin of each)
    assert {e.tenant.slug for e in audit} == {"acme", "globex"}


def test_not_retryable_items_are_counted_as_skipped(root, cast) -> None:
    root.post(
        changelist(FunctionExecution),
        {"action": "retry_selected", ACTION_CHECKBOX_NAME: [str(cast.function.pk)]},
    )
    new = FunctionExecution.objects.get(retry_of=cast.function)
    response = root.post(
        changelist(FunctionExecution),
        {"action": "retry_selected", ACTION_CHECKBOX_NAME: [str(cast.function.pk), str(new.pk)]},
        follow=True,
    )
    # The retry succeeded: it is not retryable, the original (its retry final) is, again.
    assert "Retried 1 executions; 1 skipped (not retryable)" in response.content.decode()
    assert FunctionExecution.objects.filter(retry_of=cast.function).count() == 2


def test_more_than_a_few_items_ask_for_confirmation_first(root, cast) -> None:
    ids = [str(failed_automation(cast.acme, f"rule {i}").pk) for i in range(6)]
    asked = root.post(
        changelist(AutomationExecution), {"action": "retry_selected", ACTION_CHECKBOX_NAME: ids}
    )
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Retry these 6 automation executions?" in page
    assert not AuditEvent.objects.exists()
    confirmed = root.post(
        changelist(AutomationExecution),
        {"action": "retry_selected", ACTION_CHECKBOX_NAME: ids, "confirm": "yes"},
        follow=True,
    )
    assert "Retried 6 executions; 0 skipped (not retryable)" in confirmed.content.decode()


def test_staff_retry_with_their_membership_and_are_refused_elsewhere(client, cast) -> None:
    from django.contrib.auth.models import Permission

    dave = cast.users["dave"]  # operator of acme only, no command:execute
    dave.is_staff = True
    dave.save()
    dave.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_automationexecution", "view_job"])
    )
    client.force_login(dave)
    response = client.post(
        changelist(AutomationExecution),
        {
            "action": "retry_selected",
            ACTION_CHECKBOX_NAME: [str(cast.automation.pk), str(cast.foreign.pk)],
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Retried 1 executions; 0 skipped (not retryable)" in page
    assert "Refused: 1 (not a member of globex)" in page
    cast.foreign.refresh_from_db()
    assert cast.foreign.status == "failed"
    from executions.models import Job

    response = client.post(
        changelist(Job),
        {"action": "retry_selected", ACTION_CHECKBOX_NAME: [str(cast.command_job.pk)]},
        follow=True,
    )
    assert "Refused: 1 (missing permission command:execute)" in response.content.decode()


def test_the_action_is_hidden_from_staff_without_a_retry_role(client, cast) -> None:
    from django.contrib.auth.models import Permission

    bob = cast.users["bob"]  # viewer
    bob.is_staff = True
    bob.save()
    bob.user_permissions.add(Permission.objects.get(codename="view_automationexecution"))
    client.force_login(bob)
    page = client.get(changelist(AutomationExecution)).content.decode()
    assert "retry_selected" not in page
    response = client.post(
        changelist(AutomationExecution),
        {"action": "retry_selected", ACTION_CHECKBOX_NAME: [str(cast.automation.pk)]},
        follow=True,
    )
    assert response.status_code == 200  # the action does not exist for bob: nothing happens
    assert not AuditEvent.objects.exists()
    cast.automation.refresh_from_db()
    assert cast.automation.status == "failed"


def test_jobs_filter_by_operation_type_without_reading_the_table(root, cast) -> None:
    from executions.models import Job

    page = root.get(changelist(Job), {"operation_type": "command.exec"}).content.decode()
    assert str(cast.command_job.pk) in page
    assert str(cast.job.pk) not in page
