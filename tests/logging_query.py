"""The part of Cloud Logging's query language our metrics use, evaluated on log entries.

    resource.type="cloud_run_revision" AND (resource.labels.service_name="a" OR …)
        AND (jsonPayload.message="x")

Comparisons are `path="value"`, and `path>=number` for a numeric field; AND and OR combine them,
with parentheses
(https://cloud.google.com/logging/docs/view/logging-query-language). Anything else is refused, so a
filter that strays outside this subset fails its test instead of passing unchecked.
"""

from __future__ import annotations

import re

TOKEN = re.compile(
    r'\s*(?:(\()|(\))|(AND\b)|(OR\b)|([A-Za-z_][\w.]*)\s*=\s*"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.]*)\s*>=\s*([0-9]+))'
)


def tokens(query: str) -> list[tuple[str, ...]]:
    found, at = [], 0
    while at < len(query.rstrip()):
        match = TOKEN.match(query, at)
        if not match:
            raise ValueError(f"outside the supported subset at {query[at : at + 30]!r}")
        opened, closed, and_, or_, path, value, at_least_path, at_least = match.groups()
        found.append(
            ("(",)
            if opened
            else (")",)
            if closed
            else ("AND",)
            if and_
            else ("OR",)
            if or_
            else ("=", path, value)
            if path
            else (">=", at_least_path, at_least)
        )
        at = match.end()
    return found


def matches(query: str, entry: dict) -> bool:
    stream = tokens(query)
    position = 0

    def take() -> tuple[str, ...]:
        nonlocal position
        position += 1
        return stream[position - 1]

    def peek() -> str:
        return stream[position][0] if position < len(stream) else ""

    def expression() -> bool:  # explicit parentheses decide; AND and OR left to right otherwise
        result = term()
        while peek() in ("AND", "OR"):
            operator = take()[0]
            right = term()
            result = (result and right) if operator == "AND" else (result or right)
        return result

    def term() -> bool:
        token = take()
        if token[0] == "(":
            result = expression()
            assert take()[0] == ")", "unbalanced parentheses"
            return result
        operator, path, value = token
        found = entry
        for part in path.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if operator == ">=":
            return isinstance(found, (int, float)) and not isinstance(found, bool) and found >= int(value)
        return found is not None and str(found) == value

    result = expression()
    assert position == len(stream), "trailing tokens"
    return result
