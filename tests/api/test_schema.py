"""The OpenAPI schema documents every endpoint with its errors, Swagger UI works offline, and
schemathesis, fuzzing every operation with bounded examples, finds no 500 and no status code,
content type or body the schema does not document."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db


def test_the_schema_lists_every_api_route_with_its_errors(client):
    r = client.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    schema = r.json()
    documented = {path for path in schema["paths"]}
    routes = {
        "/" + str(p.pattern).replace("<str:", "{").replace(">", "}")
        for p in get_resolver("executions.api.urls").url_patterns
        if not str(p.pattern).startswith("api/schema") and not str(p.pattern).startswith("api/docs")
    }
    assert routes == documented
    retry = schema["paths"][
        "/api/functions/projects/{projectId}/functions/{functionId}/retry/{executionIndex}"
    ]["post"]
    assert set(retry["responses"]) >= {"200", "400", "401", "403", "404", "500"}
    run_retry = schema["paths"]["/v1/runs/{id}/retry"]["post"]
    assert set(run_retry["responses"]) >= {"200", "404", "409"}
    assert run_retry["responses"]["409"]["content"]["application/json"]["examples"]
    assert {"ApiKeyAuth", "BearerAuth"} <= set(schema["components"]["securitySchemes"])


def test_swagger_ui_is_served_from_our_own_static_files(client):
    r = client.get("/api/docs/")
    assert r.status_code == 200
    page = r.content.decode()
    assert "swagger-ui" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page


def _load_schema() -> schemathesis.schemas.BaseSchema:
    """The schema exactly as /api/schema/ serves it, called against the WSGI app in-process (so
    requests see each test's database transaction)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    raw = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    loaded = schemathesis.openapi.from_dict(raw)
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()


@pytest.fixture
def keep_test_connection():
    """The WSGI handler closes "old" connections around each request; inside a test's
    transaction that would close it, so do what Django's own test client does."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzing_finds_no_500_and_nothing_undocumented(case, manifest, keep_test_connection):
    case.call_and_validate(
        headers={"X-API-Key": manifest["api_keys"]["alice"]},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
