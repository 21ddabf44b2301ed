"""An unknown URL under an API prefix answers JSON in that prefix's seed shape (what an SDK or
script can parse); anywhere else the console's HTML page. project/urls.py handler404/handler500.
"""

from __future__ import annotations

import pytest
import requests
from django.test import RequestFactory

from project.urls import api_seed, server_error

pytestmark = pytest.mark.django_db(transaction=True)


def test_unknown_api_paths_are_json_404s_in_each_seeds_shape(base):
    def miss(method: str, path: str) -> tuple[requests.Response, str]:
        r = requests.request(method, f"{base}{path}", timeout=30)
        assert r.status_code == 404, path
        assert r.headers["Content-Type"] == "application/json", path
        return r, f"No API endpoint at {method} {path}"

    r, message = miss("POST", "/api/functions/projects/p1/functions/f1/rerun/0")
    assert r.json() == {"success": False, "error": message}
    r, message = miss("GET", "/api/v1/automation/nope")
    assert r.json() == {"error": {"code": "NOT_FOUND", "message": message}}
    r, message = miss("GET", "/job/1/2/3")
    assert r.json() == {"error": message, "details": message, "code": 404}
    r, message = miss("POST", "/api/v1/projects/acme-prod/workflows/executions/x/rerun")
    assert r.json() == {"error": {"code": 404, "message": message}}
    r, message = miss("GET", "/api/v1/token/inspect")
    assert r.json() == {"error": {"code": 404, "message": message}}
    r, message = miss("GET", "/v1/nope")
    assert r.json() == {"code": 404, "message": message, "requestId": r.headers["X-Request-ID"]}
    r, message = miss("DELETE", "/api/nope")
    assert r.json() == {
        "error": {"code": "NOT_FOUND", "message": message, "requestId": r.headers["X-Request-ID"]}
    }


def test_unknown_console_paths_keep_the_html_page(base):
    for path in ("/nope/", "/jobs", "/v1runs", "/apis/x"):
        r = requests.get(f"{base}{path}", timeout=30)
        assert r.status_code == 404, path
        assert r.headers["Content-Type"].startswith("text/html"), path
        assert "There is nothing at this address" in r.text


def test_the_seed_of_a_path():
    assert api_seed("/api/functions/projects/p/functions/f/logs") == "000"
    assert api_seed("/api/v1/automation") == "001"
    assert api_seed("/api/v1/automation/executions/x") == "001"
    assert api_seed("/job") == "002" and api_seed("/job/x") == "002"
    assert api_seed("/api/v1/projects/p/sessions") == "003"
    assert api_seed("/v1/runs/x") == "004" and api_seed("/v1") == "004"
    assert api_seed("/api/failures/x") == "redrive"
    assert api_seed("/jobs") is None and api_seed("/") is None and api_seed("/admin/") is None


def test_a_server_fault_outside_a_view_is_json_on_api_paths_and_html_elsewhere():
    factory = RequestFactory()
    request = factory.post("/v1/runs/x/retry")
    request.request_id = "req-0123456789"
    r = server_error(request)
    assert r.status_code == 500 and r["Content-Type"] == "application/json"
    assert r.content == (
        b'{"code": 500, "message": "Internal server error (request id req-0123456789)", '
        b'"requestId": "req-0123456789"}'
    )

    page = server_error(factory.get("/executions/job/x/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
