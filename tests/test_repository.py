"""The repository stands alone: a fresh clone's tests, scripts and settings read nothing outside
the project folder (a user's clone has nothing beside it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("executions", "project", "tests", "bench", "templates", "static", ".ci")
TOP_FILES = ("manage.py", "pyproject.toml")

# This file holds the patterns (and their examples), so the scan leaves it out.
OUTSIDE = re.compile(
    "|".join(
        [
            r"""["']\.\.[/\\]""",  # "../shared/..." as a string
            r"/\s*[\"']\.\.[\"']",  # path / ".."
            r"""parent\s*/\s*["']shared""",  # ROOT.parent / "shared"
            r"""\.\./shared""",  # ../shared anywhere, comments included
        ]
    )
)


def _files() -> list[Path]:
    found = [ROOT / name for name in TOP_FILES]
    for folder in SCANNED:
        found += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file()
            and p.suffix in {".py", ".toml", ".html", ".js", ".css", ".md", ".sh", ""}
            and "__pycache__" not in p.parts
            and p != Path(__file__).resolve()
        ]
    return found


def test_nothing_reads_a_path_outside_the_project() -> None:
    offenders = []
    for path in _files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_scan_finds_what_it_looks_for() -> None:
    """The patterns above catch the ways a path out of the project is written."""
    for line in (
        'SCHEMA = ROOT.parent / "' + 'shared" / "contracts"',
        'open("' + "../" + 'shared/contracts/x.json")',
        'BASE_DIR / "' + '.." / "seeds"',
    ):
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search('SCHEMA = ROOT / "docs" / "seed_demo_manifest.schema.json"')


def test_the_manifest_contract_is_in_the_repository_and_the_readme_names_it() -> None:
    schema = ROOT / "docs" / "seed_demo_manifest.schema.json"
    assert schema.is_file()
    assert "docs/seed_demo_manifest.schema.json" in (ROOT / "README.md").read_text()
