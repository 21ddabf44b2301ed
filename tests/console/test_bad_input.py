"""Bad query values on console pages (issue 16.8): each is a 400 page that names the field, never a
500. Dates at the ends of the calendar used to overflow when converted to UTC or when a page
widened them into a window; a superscript digit passed isdigit() and then broke int(); a bulk id
that is not a UUID broke a link on the audit page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from executions import filters
from executions.models import AuditEvent

pytestmark = pytest.mark.django_db

RANGE = "between 0001-01-02T00:00:00Z and 9999-12-30T00:00:00Z"
SINCE = f"since must be an ISO 8601 date-time {RANGE}"
UNTIL = f"until must be an ISO 8601 date-time {RANGE}"


@pytest.mark.parametrize(
    ("url_name", "query", "message"),
    [
        # +14:00 on the first day of year 1 is a moment of year 0 in UTC
        ("inbox", {"since": "0001-01-01T00:00:00+14:00"}, SINCE),
        # the last half hour of year 9999 has no next hour to round up to
        ("inbox", {"since": "9999-12-31T23:30:00Z"}, SINCE),
        ("groups", {"since": "0001-01-01T00:00:00+14:00"}, SINCE),
        ("inbox", {"until": "0001-01-01T00:30:00Z"}, UNTIL),
        ("inbox", {"since": "2025-01-01T00:00:00+99:00"}, "since must be an ISO 8601 date-time"),
        ("inbox", {"q": "refused\x00"}, "q must not contain NUL characters"),
    ],
)
def test_out_of_range_dates_are_a_400_page_naming_the_field(
    login, cast, url_name, query, message
) -> None:
    response = login("alice").get(reverse(url_name), query)
    assert response.status_code == 400
    assert f"Filter not applied: {message}" in response.content.decode()


def test_the_chart_answers_a_bad_filter_with_a_400_naming_the_field(login, cast) -> None:
    # until at the very start of year 1: the chart's default window (the 24 hours before until)
    # would begin before the calendar does.
    response = login("alice").get(reverse("chart"), {"until": "0001-01-01T00:30:00Z"})
    assert response.status_code == 400
    page = response.content.decode()
    assert page.lstrip().startswith('<figure id="chart"')
    assert f"Filter not applied: until must be an ISO 8601 date-time {RANGE}" in page


def test_dates_at_the_edges_of_the_range_still_work_everywhere(login, cast) -> None:
    client = login("alice")
    for query in (
        {"since": "0001-01-02T00:00:00Z"},
        {"until": "0001-01-02T00:00:00Z"},
        {"since": "9999-12-30T00:00:00Z"},
        {"until": "9999-12-30T00:00:00Z"},
        {"since": "0001-01-02T00:00:00Z", "until": "9999-12-30T00:00:00Z"},
    ):
        for url_name in ("inbox", "groups", "chart"):
            response = client.get(reverse(url_name), query)
            assert response.status_code == 200, (url_name, query, response.content[:300])


def test_an_offset_is_read_as_the_same_moment_in_utc() -> None:
    flt = filters.parse({"since": "2025-06-01T02:00:00+02:00"})
    assert flt.since.isoformat() == "2025-06-01T00:00:00+00:00"


def test_a_search_text_with_a_comma_is_one_search(login, cast) -> None:
    from executions.models import AutomationExecution

    AutomationExecution.objects.filter(pk=cast.automation.pk).update(
        error_message="connection refused, retry later"
    )
    response = login("alice").get(reverse("inbox"), {"q": "refused, retry"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Filter not applied" not in page
    assert f'id="row-automation-{cast.automation.pk}"' in page
    assert "<strong>1</strong> failure match" in page
    assert filters.parse({"q": "refused, retry"}).q == "refused, retry"
    # the list filters still take comma lists
    assert filters.parse({"kind": "job,run"}).kinds == ("job", "run")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"before": "²"}, "before must be a positive integer"),
        ({"before": "99999999999999999999"}, "before must be a positive integer"),
        ({"bulk": "not-a-uuid"}, "bulk must be a UUID"),
        ({"actor": "user:\x00"}, "actor must not contain NUL characters"),
        ({"target": "x\x00"}, "target must not contain NUL characters"),
        ({"source": "carrier-pigeon"}, "source must be one of"),
    ],
)
def test_bad_audit_filters_are_a_400_page_naming_the_field(login, cast, query, message) -> None:
    response = login("alice").get(reverse("audit"), query)
    assert response.status_code == 400
    page = response.content.decode()
    assert "<title>Audit · Redrive</title>" in page
    assert message in page


def test_the_audit_still_filters_by_a_bulk_retry_and_pages_by_id(login, cast) -> None:
    import uuid

    client = login("alice")
    client.post(reverse("retry", kwargs={"kind": "automation", "object_id": cast.automation.pk}))
    event = AuditEvent.objects.get()
    bulk = uuid.uuid4()
    AuditEvent.objects.filter(pk=event.pk).update(bulk_id=bulk)
    page = client.get(reverse("audit"), {"bulk": str(bulk)}).content.decode()
    assert f'href="{reverse("bulk", kwargs={"bulk_id": bulk})}"' in page
    assert str(cast.automation.pk)[:12] in page
    older = client.get(reverse("audit"), {"before": str(event.pk)})
    assert older.status_code == 200
    assert str(cast.automation.pk)[:12] not in older.content.decode()


def test_an_id_with_nul_is_not_found_not_a_500(login, cast) -> None:
    # PostgreSQL refuses NUL in a query: the tenant-scoped accessor answers "not found" first.
    client = login("alice")
    assert client.post("/keys/%00/revoke/").status_code == 404
    assert client.get("/bulk/00000000-0000-0000-0000-000000000000/").status_code == 404


@pytest.mark.parametrize(
    "raw",
    [
        "0001-01-01T00:00:00+14:00|job|updated_at|9f3c1c52-8f43-4c40-9a52-0d4b4f7c2e11",
        "9999-12-31T23:59:59-14:00|job|updated_at|9f3c1c52-8f43-4c40-9a52-0d4b4f7c2e11",
        "2025-01-01T00:00:00+00:00|run|started_at|run_\x00",
    ],
)
def test_an_inbox_cursor_edited_by_hand_is_a_400(login, cast, raw) -> None:
    import base64

    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    response = login("alice").get(reverse("inbox"), {"cursor": cursor})
    assert response.status_code == 400
    assert "Filter not applied: cursor is not a cursor this server gave out" in (
        response.content.decode()
    )
