"""docs/gcp-rules.md is true to the rules the program relies on: generated from scripts/program/gcp_rules.py,
every rule cites a public source and names tests that exist, and every address the program's code
cites as a source is one of the rules'."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from scripts.program import gcp_rules

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(
    r"https://(?:cloud\.google\.com|github\.com|www\.pulumi\.com|support\.google\.com)/[^\s)\"'>,]+"
)


def test_the_doc_is_generated_from_the_rules():
    assert (ROOT / "docs" / "gcp-rules.md").read_text() == gcp_rules.render(), "stale: run `make docs`"


def test_every_rule_has_a_public_source_and_tests_that_exist():
    defined: dict[str, set[str]] = {}
    for rule in gcp_rules.RULES:
        assert rule.sources and all(s.startswith("https://") for s in rule.sources), rule.rule
        assert rule.tests, rule.rule
        for test in rule.tests:
            path, name = test.split("::")
            if path not in defined:
                tree = ast.parse((ROOT / path).read_text())
                defined[path] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            assert name in defined[path], f"{test} (named by a rule) does not exist"


# Addresses that are values the code compares with, not sources it cites.
VALUES = {"https://cloud.google.com/iap"}  # the issuer of IAP's signed headers


def test_every_source_the_program_cites_is_a_rule():
    listed = {s.rstrip(".") for rule in gcp_rules.RULES for s in rule.sources}
    code = [
        path
        for folder in ("infra", "inspection", "functions", "review_app", "scripts")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "gcp_rules.py"
    ]
    cited = {
        (path.relative_to(ROOT).as_posix(), url.rstrip(".;:"))
        for path in code
        for url in CITED.findall(path.read_text())
    }
    assert sorted((where, url) for where, url in cited if url not in listed | VALUES) == []
