"""The README and docs/ as a new user reads them: every code block closed and holding something, and
every file they link to there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
pytestmark = pytest.mark.unit


def blocks(text: str) -> tuple[list[list[str]], bool]:
    """The fenced code blocks (their lines), and whether the last fence was closed (CommonMark: a
    fence closes at the next fence line of the same marker, so one missing turns prose into code)."""
    found, current = [], None
    for line in text.splitlines():
        if re.match(r"^\s{0,3}```", line):
            if current is None:
                current = []
            else:
                found.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return found, current is None


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_code_block_is_closed_and_not_empty(document):
    found, closed = blocks(document.read_text())
    assert closed, f"{document.name}: a code block is never closed"
    assert all(any(line.strip() for line in block) for block in found), f"{document.name}: an empty block"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_file_a_document_links_to_is_there(document):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (document.parent / target).exists(), f"{document.name} links to {target}, which is not there"
