"""The Django admin: every model is registered and browsable, errors show in <pre>, and "Retry
selected" goes through the domain (permission-checked, confirmation above a few items). Superusers
see every tenant; a tenant's admins (not staff) see that tenant's rows only; nobody else gets in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from executions import failure_counts
from executions.models import (
    AuditEvent,
    AutomationExecution,
    FunctionExecution,
    Membership,
    Tenant,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

from .conftest import (
    PASSWORD,
    failed_automation,
    failed_function,
    failed_job,
    failed_run,
    failed_workflow,
)

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


def test_not_retryable_items_are_counted_as_skipped(root, cast, sync_worker, wait_until) -> None:
    root.post(
        changelist(FunctionExecution),
        {"action": "retry_selected", ACTION_CHECKBOX_NAME: [str(cast.function.pk)]},
    )
    new = FunctionExecution.objects.get(retry_of=cast.function)
    wait_until(  # queued: the worker runs it
        lambda: FunctionExecution.objects.get(pk=new.pk).status == "success",
        message="the worker to run the retry",
    )
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


def test_a_tenant_admins_retry_is_scoped_to_their_tenants(login, cast) -> None:
    client = login("alice")  # admin of acme, not staff
    response = client.post(
        changelist(AutomationExecution),
        {
            "action": "retry_selected",
            ACTION_CHECKBOX_NAME: [str(cast.automation.pk), str(cast.foreign.pk)],
        },
        follow=True,
    )
    assert "Retried 1 executions; 0 skipped (not retryable)" in response.content.decode()
    cast.foreign.refresh_from_db()
    assert cast.foreign.status == "failed"  # globex's: not even in alice's queryset
    audit = AuditEvent.objects.get(source="admin")
    assert (audit.actor, audit.tenant, audit.target_id) == (
        "user:alice",
        cast.acme,
        str(cast.automation.pk),
    )


@pytest.mark.parametrize("who", ["dave", "bob"])
def test_only_superusers_and_tenant_admins_get_in_staff_or_not(client, cast, who) -> None:
    from django.contrib.auth.models import Permission

    user = cast.users[who]  # operator / viewer of acme
    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(codename="view_automationexecution"))
    client.force_login(user)
    response = client.get(changelist(AutomationExecution))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.post(
        changelist(AutomationExecution),
        {"action": "retry_selected", ACTION_CHECKBOX_NAME: [str(cast.automation.pk)]},
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.exists()
    cast.automation.refresh_from_db()
    assert cast.automation.status == "failed"


def test_a_tenant_admin_signs_in_without_being_staff(client, cast) -> None:
    assert not cast.users["alice"].is_staff
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    index = client.get("/admin/").content.decode()
    assert "Automation executions" in index
    assert "Users" not in index  # Django's own models stay with the superusers


@pytest.mark.parametrize("who", ["dave", "bob", "maria"])
def test_users_who_administer_no_tenant_cannot_sign_in(client, cast, who) -> None:
    response = client.post("/admin/login/", {"username": who, "password": PASSWORD})
    assert response.status_code == 200
    assert "Please enter the correct username and password of a tenant admin." in (
        response.content.decode()
    )
    assert "_auth_user_id" not in client.session


def test_the_demo_admins_open_the_admin_and_the_others_do_not(client, manifest) -> None:
    for username, user in manifest["users"].items():
        client.logout()
        response = client.post(
            "/admin/login/?next=/admin/", {"username": username, "password": user["password"]}
        )
        if user["role"] == "admin":
            assert response.status_code == 302, username
            assert client.get("/admin/").status_code == 200, username
        else:
            assert response.status_code == 200, username
            assert client.get("/admin/").status_code == 302, username


def test_every_list_shows_only_the_tenant_admins_tenants(login, manifest) -> None:
    """alice administers acme: in every list of the demo data (both tenants, every kind), only
    acme's rows; models shared by every tenant, and Django's own, are for superusers."""
    acme = Tenant.objects.get(slug="acme")
    if connection.vendor == "postgresql":
        failure_counts.fold()  # the seed's counts into FailureCount; the retries below add deltas
    # Evidence in globex of every sort: a retry (audit, attempt, outbox), a bulk retry, an
    # Idempotency-Key's record, a workflow session and a saved workflow, through the API as carol.
    carol = Client(headers={"X-API-Key": manifest["api_keys"]["carol"]})
    items = manifest["globex"]
    items_tenant = Tenant.objects.get(slug="globex")
    assert carol.post(
        f"/api/v1/automation/executions/{items['automations']['failed']}/retry",
        content_type="application/json",
        headers={"Idempotency-Key": "admin-scope-test"},
    ).status_code in (200, 201, 202)
    bulk = carol.post(
        "/api/failures/retry",
        {"ids": {"run": [items["runs"]["failure"]]}},
        content_type="application/json",
    )
    assert bulk.status_code == 202
    session = carol.post(
        f"/api/v1/projects/{items['workflows']['project']}/sessions",
        {"items": [{"tokenExchange": True}]},
        content_type="application/json",
    )
    assert session.status_code == 200, session.content
    saved = carol.post(
        "/v1/workflows",
        {"name": "g", "definition": {"nodes": {"root": {}}, "triggerNodeIds": ["root"]}},
        content_type="application/json",
    )
    assert saved.status_code == 201, saved.content
    workflow = carol.post(
        f"/api/v1/projects/{items['workflows']['project']}/workflows",
        {"items": [{"externalId": "globex-etl"}]},
        content_type="application/json",
    )
    assert workflow.status_code == 201, workflow.content
    defined = carol.post(  # a function's versions
        f"/api/functions/projects/{items['functions']['project_id']}/functions",
        {"name": "globex-fn", "code": "return 1;", "trigger": {"type": "http"}},
        content_type="application/json",
    )
    assert defined.status_code == 201, defined.content
    hook = WebhookSubscription.objects.create(  # a webhook, a delivery and its attempt
        tenant=items_tenant, url="https://hooks.example.com/g", events=["retry.finished"]
    )
    sent = WebhookDelivery.objects.create(
        tenant=items_tenant,
        subscription=hook,
        event_type="retry.finished",
        message_id="msg_globex",
        payload={},
        url=hook.url,
        status="failed",
    )
    WebhookAttempt.objects.create(
        tenant=items_tenant, subscription=hook, delivery=sent, number=1, response_status=500
    )
    client = login("alice")
    with_foreign_rows = []
    for model in apps.get_app_config("executions").get_models():
        path = admin.site.get_model_admin(model).tenant_path
        response = client.get(changelist(model))
        if path is None:
            assert response.status_code == 403, model  # shared by every tenant: superusers only
            continue
        assert response.status_code == 200, model
        rows = response.context["cl"].queryset
        assert not rows.exclude(**{path: acme.pk}).exists(), model
        assert "globex" not in response.content.decode().lower(), model
        if model.objects.exclude(**{path: acme.pk}).exists():
            with_foreign_rows.append(model._meta.model_name)
    scoped = {
        m._meta.model_name
        for m in apps.get_app_config("executions").get_models()
        if admin.site.get_model_admin(m).tenant_path is not None
    }
    if connection.vendor != "postgresql":
        scoped -= {"failurecount", "failurecountdelta"}  # kept by PostgreSQL's triggers only
    assert scoped <= set(with_foreign_rows)  # the test saw another tenant's rows in every list
    for url in ("/admin/auth/user/", "/admin/auth/group/", "/admin/axes/accessattempt/"):
        assert client.get(url).status_code == 403, url


def test_another_tenants_page_is_not_found(login, cast) -> None:
    client = login("alice")
    url = reverse("admin:executions_automationexecution_change", args=[cast.foreign.pk])
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = client.get("/admin/").content.decode()
    assert "doesn’t exist. Perhaps it was deleted?" in page
    own = reverse("admin:executions_automationexecution_change", args=[cast.automation.pk])
    assert client.get(own).status_code == 200


def test_related_choices_are_the_admins_tenants_and_their_members(login, cast) -> None:
    client = login("alice")
    form = client.get(reverse("admin:executions_membership_add")).context["adminform"].form
    assert list(form.fields["tenant"].queryset) == [cast.acme]
    assert sorted(u.username for u in form.fields["user"].queryset) == [
        "alice",
        "bob",
        "dave",
        "maria",
    ]
    response = client.post(
        reverse("admin:executions_membership_add"),
        {"user": cast.users["carol"].pk, "tenant": cast.globex.pk, "role": "admin"},
    )
    assert response.status_code == 200  # the form refuses both choices
    assert not Membership.objects.filter(user=cast.users["carol"], tenant=cast.acme).exists()
    assert Membership.objects.filter(user=cast.users["carol"]).count() == 1


def test_tenants_are_read_only_for_tenant_admins(login, cast) -> None:
    client = login("alice")
    url = reverse("admin:executions_tenant_change", args=[cast.acme.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"slug": "renamed", "name": "Renamed"})
    cast.acme.refresh_from_db()
    assert cast.acme.slug == "acme"
    assert client.get(reverse("admin:executions_tenant_add")).status_code == 403


def test_labels_say_bulk_retries_and_api_keys_once(root) -> None:
    page = root.get("/admin/").content.decode()
    assert "Bulk retries" in page and "Bulk retrys" not in page
    assert page.count(">API keys<") == 1


@pytest.mark.parametrize("kind", ["function", "automation", "job", "workflow", "run"])
def test_lists_are_newest_first(root, cast, kind) -> None:
    another = {
        "function": lambda: failed_function(cast.acme, "another-fn"),
        "automation": lambda: failed_automation(cast.acme, "Another rule"),
        "job": lambda: failed_job(cast.acme),
        "workflow": lambda: failed_workflow(cast.globex),  # acme has this workflow already
        "run": lambda: failed_run(cast.acme),
    }[kind]()
    time_field = {
        "function": "executed_at",
        "automation": "started_at",
        "job": "created_at",
        "workflow": "created_time",
        "run": "started_at",
    }[kind]
    model = type(another)
    # The newer one is the one whose id sorts first, so an order by id cannot pass.
    newer, older = sorted([cast.item(kind), another], key=lambda o: str(o.pk))
    model.objects.filter(pk=older.pk).update(**{time_field: timezone.now() - timedelta(days=2)})
    model.objects.filter(pk=newer.pk).update(**{time_field: timezone.now()})
    ids = [str(o.pk) for o in root.get(changelist(model)).context["cl"].result_list]
    assert ids.index(str(newer.pk)) < ids.index(str(older.pk))


def test_jobs_filter_by_operation_type_without_reading_the_table(root, cast) -> None:
    from executions.models import Job

    page = root.get(changelist(Job), {"operation_type": "command.exec"}).content.decode()
    assert str(cast.command_job.pk) in page
    assert str(cast.job.pk) not in page
