"""A function's secret environment values reach its JavaScript but are never shown back in full:
the console's detail page and the admin (an execution's page, a function's edit form) show the
name and the mask, and saving the form with the mask keeps the stored secret."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from executions.kinds.functions import run as functions_run
from executions.models import AuditEvent, Function, FunctionExecution
from executions.work import secrets

pytestmark = pytest.mark.django_db

SECRET = "sk_live_0123456789abcdef"
ENVIRONMENT = {"REGION": "eu", "API_KEY": {"value": SECRET, "secret": True}}


@pytest.fixture
def function(cast) -> Function:
    return Function.objects.create(
        tenant=cast.acme,
        name="charge",
        code="console.log(env.API_KEY); throw new Error('no ' + env.API_KEY.length)",
        environment=ENVIRONMENT,
    )


@pytest.fixture
def execution(function) -> FunctionExecution:
    execution = functions_run.invoke_function(function, {}, queued=False)
    assert execution.status == "failed" and execution.error_message == f"no {len(SECRET)}"
    return execution


@pytest.fixture
def root(client, cast):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "x"))
    return client


def test_the_console_detail_shows_the_code_and_masks_secrets(login, execution) -> None:
    url = reverse("detail", kwargs={"kind": "function", "object_id": execution.pk})
    page = login("alice").get(url).content.decode()
    assert "API_KEY" in page and secrets.mask(SECRET) in page and "REGION" in page
    assert "throw new Error" in page
    assert SECRET not in page  # nor in the logs, where the code printed it


def test_the_admin_execution_page_masks_secrets(root, execution) -> None:
    url = reverse("admin:executions_functionexecution_change", args=[execution.pk])
    page = root.get(url).content.decode()
    assert "API_KEY" in page and secrets.mask(SECRET) in page
    assert SECRET not in page


def test_the_admin_function_form_masks_secrets_and_keeps_them_when_saved_masked(
    root, function
) -> None:
    url = reverse("admin:executions_function_change", args=[function.pk])
    page = root.get(url).content.decode()
    assert "API_KEY" in page and secrets.mask(SECRET) in page
    assert SECRET not in page

    form = {
        "tenant": function.tenant_id,
        "name": "charge",
        "handler": "",
        "params": "{}",
        "code": "return env.API_KEY.length",
        "environment": json.dumps(
            {"REGION": "us", "API_KEY": {"value": secrets.mask(SECRET), "secret": True}}
        ),
        "memory_mb": "",
        "timeout_ms": "1000",
        "version": "2",
        "created_at_0": "2026-12-01",
        "created_at_1": "10:00:00",
    }
    response = root.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    function.refresh_from_db()
    assert function.environment == {"REGION": "us", "API_KEY": {"value": SECRET, "secret": True}}

    form["environment"] = '{"API_KEY": {"value": "new-secret-value", "secret": true}}'
    assert root.post(url, form).status_code == 302
    function.refresh_from_db()
    assert function.environment == {"API_KEY": {"value": "new-secret-value", "secret": True}}

    # The audit names what changed, secrets by name only.
    audits = list(
        AuditEvent.objects.filter(action="function_changed", target_id=function.pk).order_by("id")
    )
    assert [a.details["secrets"] for a in audits] == [[], ["env.API_KEY"]]
    assert "environment" in audits[0].details["fields"]
    assert SECRET not in str([a.details for a in audits])
    assert "new-secret-value" not in str([a.details for a in audits])
