"""Every keyset list of the API pages through selectors.cursor: each page continues the last
without a repeat or a gap, and a cursor edited by hand, or handed to a list it did not come
from, is a 400 naming `cursor` in the list's seed shape, never a 500 or a wrong page."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import wf_base

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class KeysetList:
    path: Callable[[dict], str]
    ids: Callable[[dict], list]
    next: Callable[[dict], str | None]
    message: Callable[[dict], str]
    post: bool = False  # Cognite's POST .../list: filter, limit and cursor in the body


LISTS = {
    "automations": KeysetList(
        lambda m: "/api/v1/automation/executions",
        lambda b: [i["execution_id"] for i in b["data"]],
        lambda b: b["pagination"]["next_cursor"],
        lambda b: b["error"]["message"],
    ),
    "jobs": KeysetList(
        lambda m: "/job",
        lambda b: [j["job_id"] for j in b["jobs"]],
        lambda b: b["next_cursor"],
        lambda b: b["error"],
    ),
    "workflows": KeysetList(
        lambda m: f"{wf_base(m['acme'])}/workflows/executions",
        lambda b: [e["id"] for e in b["items"]],
        lambda b: b["nextCursor"],
        lambda b: b["error"]["message"],
    ),
    "workflows-post": KeysetList(
        lambda m: f"{wf_base(m['acme'])}/workflows/executions/list",
        lambda b: [e["id"] for e in b["items"]],
        lambda b: b["nextCursor"],
        lambda b: b["error"]["message"],
        post=True,
    ),
    "runs": KeysetList(
        lambda m: "/v1/runs",
        lambda b: [r["id"] for r in b["data"]["items"]],
        lambda b: b["data"]["nextCursor"],
        lambda b: b["message"],
    ),
    "failures": KeysetList(
        lambda m: "/api/failures",
        lambda b: [(i["kind"], i["id"]) for i in b["items"]],
        lambda b: b["nextCursor"],
        lambda b: b["error"]["field"],
    ),
}


def fetch(api, manifest, name: str, limit: int, cursor: Any = None):
    lst = LISTS[name]
    params = {"limit": limit, **({"cursor": cursor} if cursor is not None else {})}
    if lst.post:
        return api.post(lst.path(manifest), params)
    return api.get(lst.path(manifest), params)


@pytest.mark.parametrize("name", LISTS)
def test_a_list_pages_through_every_row_once(api, manifest, name):
    lst = LISTS[name]
    everything = fetch(api, manifest, name, 100).json()
    assert lst.next(everything) is None  # one page holds the whole list
    seen, cursor, pages = [], None, 0
    while True:
        r = fetch(api, manifest, name, 3, cursor)
        assert r.status_code == 200, r.content
        seen += lst.ids(r.json())
        pages += 1
        cursor = lst.next(r.json())
        if not cursor:
            break
    assert pages > 1
    assert seen == lst.ids(everything)  # the same rows in the same order, none twice


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parts(cursor: str) -> list[str]:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|", 3)


def _edited(cursor: str, index: int, value: str) -> str:
    parts = _parts(cursor)
    parts[index] = value
    return _b64("|".join(parts))


EDITS = {
    "not base64 of a cursor": lambda c: "bm9wZQ",
    "truncated": lambda c: c[:-3],
    "without its pk": lambda c: _b64("|".join(_parts(c)[:3])),
    "a time out of range": lambda c: _edited(c, 0, "0001-01-01T00:00:00+14:00"),
    "a time that is not one": lambda c: _edited(c, 0, "yesterday"),
    # No list orders runs by updated_at, nor anything else by started_at but runs.
    "another kind": lambda c: _edited(c, 1, "job" if _parts(c)[1] == "run" else "run"),
    "an unknown kind": lambda c: _edited(c, 1, "invoice"),
    "another sort field": lambda c: _edited(c, 2, "id"),
    "a pk with NUL": lambda c: _edited(c, 3, "run_\x00"),
    "a JSON list": lambda c: _b64('["2025-01-01T00:00:00+00:00", "x"]'),
}


@pytest.mark.parametrize("edit", EDITS)
@pytest.mark.parametrize("name", LISTS)
def test_a_cursor_edited_by_hand_is_a_400_naming_cursor(api, manifest, name, edit):
    lst = LISTS[name]
    cursor = lst.next(fetch(api, manifest, name, 1).json())
    assert cursor
    r = fetch(api, manifest, name, 1, EDITS[edit](cursor))
    assert r.status_code == 400, r.content
    assert "cursor" in lst.message(r.json())


@pytest.mark.parametrize("name", ["automations", "jobs", "workflows", "workflows-post"])
def test_a_pk_that_is_not_a_uuid_is_a_400(api, manifest, name):
    lst = LISTS[name]
    cursor = lst.next(fetch(api, manifest, name, 1).json())
    r = fetch(api, manifest, name, 1, _edited(cursor, 3, "not-a-uuid"))
    assert r.status_code == 400, r.content
    assert "cursor" in lst.message(r.json())


@pytest.mark.parametrize(
    ("name", "other", "params"),
    [
        # the same kind in another order: the inbox orders by updated_at, the seeds by creation
        ("automations", "failures", {"kind": "automation"}),
        ("jobs", "failures", {"kind": "job"}),
        ("workflows", "failures", {"kind": "workflow"}),
        ("failures", "jobs", {}),
        # another kind in the same order (started_at)
        ("automations", "runs", {}),
        ("runs", "automations", {}),
    ],
)
def test_a_cursor_of_another_list_is_a_400(api, manifest, name, other, params):
    lst = LISTS[name]
    got = api.get(LISTS[other].path(manifest), {"limit": 1, **params}).json()
    r = fetch(api, manifest, name, 1, LISTS[other].next(got))
    assert r.status_code == 400, r.content
    assert "cursor" in lst.message(r.json())
