"""Seeds 001, 002 and 004 publish no Python SDK: their own example requests, as the seeds write
them, sent with `requests` to a live Redrive, and the retried work then really runs in a worker.

  001  POST /api/v1/automation/executions/{id}/retry   header `x-api-key` (lower case)
  002  POST /job/{id}/retry   body {"target_hostname": ...}
  004  requests.post(f"{base}/v1/runs/{id}/retry", headers={"Authorization": "Bearer ..."})
"""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 30


def test_001_retry_with_a_lower_case_x_api_key(base, manifest, run_worker):
    pk = manifest["acme"]["automations"]["failed"]
    headers = {"x-api-key": manifest["api_keys"]["dave"]}

    r = requests.post(
        f"{base}/api/v1/automation/executions/{pk}/retry", headers=headers, timeout=TIMEOUT
    )

    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["execution_id"] == pk and data["status"] == "pending"
    assert data["_links"]["self"]["href"] == f"/api/v1/automation/executions/{pk}"

    run_worker()

    after = requests.get(
        f"{base}{data['_links']['self']['href']}", headers=headers, timeout=TIMEOUT
    )
    assert after.status_code == 200
    assert after.json()["data"]["status"] == "completed"  # the flaky action succeeds this time

    # The seed's state error, in its shape.
    again = requests.post(
        f"{base}/api/v1/automation/executions/{pk}/retry", headers=headers, timeout=TIMEOUT
    )
    assert again.status_code == 400
    assert again.json() == {
        "error": {
            "code": "NOT_RETRYABLE",
            "message": "Only failed executions can be retried (status is completed)",
        }
    }


def test_002_retry_with_a_target_hostname(base, manifest, run_worker):
    pk = manifest["acme"]["jobs"]["failed"]
    headers = {"X-API-Key": manifest["api_keys"]["dave"]}

    r = requests.post(
        f"{base}/job/{pk}/retry",
        json={"target_hostname": "web-01"},
        headers=headers,
        timeout=TIMEOUT,
    )

    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"job_id", "status", "revision", "timestamp"}
    assert body["status"] == "unprocessed" and body["revision"] == 1 and body["job_id"] != pk

    run_worker(hostname="web-01")

    clone = requests.get(f"{base}/job/{body['job_id']}", headers=headers, timeout=TIMEOUT).json()
    assert clone["status"] == "completed" and clone["retry_of"] == pk
    assert clone["target_hostname"] == "web-01"

    bad = requests.post(
        f"{base}/job/{pk}/retry",
        json={"target_hostname": "not a host"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "target_hostname must be a valid hostname",
        "details": "invalid field: target_hostname",
        "code": 400,
    }


def test_004_retry_with_a_bearer_token(base, manifest, login, run_worker):
    pk = manifest["acme"]["runs"]["failure"]
    headers = {"Authorization": f"Bearer {login('dave')}"}

    response = requests.post(f"{base}/v1/runs/{pk}/retry", headers=headers, timeout=TIMEOUT)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 200 and body["message"] == "success"
    assert body["requestId"] == response.headers["X-Request-ID"]
    new = body["data"]
    assert new["sourceRunId"] == pk and new["id"] != pk and new["status"] == "running"

    run_worker()

    after = requests.get(f"{base}/v1/runs/{new['id']}", headers=headers, timeout=TIMEOUT)
    assert after.json()["data"]["status"] == "success"

    again = requests.post(f"{base}/v1/runs/{pk}/retry", headers=headers, timeout=TIMEOUT)
    assert again.status_code == 409
    assert again.json() == {
        "code": 409,
        "message": f"Run {pk} was already retried by run {new['id']}",
        "requestId": again.headers["X-Request-ID"],
    }
