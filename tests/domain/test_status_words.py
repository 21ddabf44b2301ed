"""The console's one status vocabulary (issue 20 §2): every kind maps each of its statuses onto
it, and the failure filter takes its words for each kind's failed statuses they name."""

from __future__ import annotations

import pytest

from executions import filters, kinds
from executions.errors import InvalidInput
from executions.templatetags.console import status_badge


def test_every_status_of_every_kind_has_a_word_and_failures_map_to_the_vocabulary() -> None:
    for kind in kinds.KINDS:
        assert set(kind.status_words) == set(kind.all_statuses), kind.name
        for status in kind.failed_statuses:
            assert kind.status_words[status] in kinds.WORDS, (kind.name, status)


def test_a_word_filters_each_kinds_failed_statuses_it_names() -> None:
    assert set(filters.parse({"status": "timed out"}).statuses) == {"timeout", "TIMED_OUT"}
    # (a webhook delivery whose retries ran out is "dead": failed too)
    assert set(filters.parse({"status": "failed"}).statuses) == {
        "failed",
        "failure",
        "FAILED",
        "dead",
    }
    assert filters.parse({"status": "terminated"}).statuses == ("TERMINATED",)
    # a kind's own status still works, alone or beside a word
    assert set(filters.parse({"status": "TIMED_OUT,partial"}).statuses) == {"TIMED_OUT", "partial"}
    with pytest.raises(InvalidInput) as caught:
        filters.parse({"status": "exploded"})
    assert caught.value.field == "status"
    assert "failed, timed out, cancelled, terminated, partial" in caught.value.message


def test_a_badge_says_the_word_and_the_kinds_own_status_small_beside_it() -> None:
    assert status_badge("TIMED_OUT", "workflow") == (
        '<span class="badge bad">timed out</span>'
        '<small class="native" title="Its own status">TIMED_OUT</small>'
    )
    assert status_badge("failed", "job") == '<span class="badge bad">failed</span>'
    assert status_badge("success", "run").startswith('<span class="badge good">succeeded</span>')
    assert status_badge("unprocessed", "job").startswith('<span class="badge busy">queued</span>')
