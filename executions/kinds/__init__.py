"""The kinds of execution Redrive finds and retries, one package each:

functions/ (seed 000)  automations/ (seed 001)  jobs/ (seed 002)  workflows/ (seed 003)
runs/ (seed 004)  deliveries/ (issue 21: webhook deliveries that failed)

A package holds everything about its kind: retry.py (when an item may be retried and what a retry
does), run.py (how its work runs in a worker, and its task) and its KIND (base.KindSpec: statuses,
time and name fields, permissions, ...). KINDS lists them; everything else (filters, services,
the reaper, the inbox, the API, the console, the failure counts) iterates it. A sixth kind is a
package and one line here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from . import automations, deliveries, functions, jobs, runs, workflows
from .base import ANY, KindSpec, Retried, write_audit

KINDS: tuple[KindSpec, ...] = (
    functions.KIND,
    automations.KIND,
    jobs.KIND,
    workflows.KIND,
    runs.KIND,
    deliveries.KIND,
)

__all__ = [
    "ANY",
    "BY_NAME",
    "KINDS",
    "WORDS",
    "KindSpec",
    "Retried",
    "failed_statuses_for",
    "get",
    "names",
    "status_word",
    "write_audit",
]


class _ByName(Mapping[str, KindSpec]):
    """KINDS by name, in their order. Live: it reads KINDS at each use (a test may put a sixth
    kind in KINDS)."""

    _index: tuple[tuple[KindSpec, ...], dict[str, KindSpec]] = ((), {})

    def _kinds(self) -> dict[str, KindSpec]:
        if self._index[0] is not KINDS:
            self._index = (KINDS, {kind.name: kind for kind in KINDS})
        return self._index[1]

    def __getitem__(self, name: str) -> KindSpec:
        return self._kinds()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds())

    def __len__(self) -> int:
        return len(self._kinds())


BY_NAME: Mapping[str, KindSpec] = _ByName()


def names() -> tuple[str, ...]:
    return tuple(BY_NAME)


def get(name: str) -> KindSpec:
    """The kind called `name`; KeyError if there is none."""
    return BY_NAME[name]


# The console's one status vocabulary for failures, in the order its status filter lists them;
# each kind maps its own statuses onto it (KindSpec.status_words).
WORDS: tuple[str, ...] = ("failed", "timed out", "cancelled", "terminated", "partial")


def status_word(status: str, kind: str | None = None) -> str:
    """`status` in the console's vocabulary: the kind's own mapping, else any kind's (a task's
    or node's status is one of its kind's words), else the status itself, in lower case."""
    found = BY_NAME.get(kind) if kind else None
    if found is not None and status in found.status_words:
        return found.status_words[status]
    for spec in KINDS:
        if status in spec.status_words:
            return spec.status_words[status]
    return status.replace("_", " ").lower()


def failed_statuses_for(word: str) -> set[str]:
    """The kinds' failed statuses that the vocabulary's `word` names (for the status filter)."""
    return {
        status
        for spec in KINDS
        for status in spec.failed_statuses
        if spec.status_words.get(status) == word
    }
