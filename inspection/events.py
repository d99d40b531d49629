"""The names of what the product logs: its records and the operational lines that Monitoring counts.

The vocabulary alone (cosmicpython's `domain/events.py`): it imports nothing, so the Pulumi program
declares its log-based metrics and the records sink from these names without loading the code that
writes the lines. The record types themselves (their fields, their queue changes) are in
inspection/outcomes.py; the lines are written by predict (inspection/predicting.py), move
(functions/move/main.py) and the sweep (inspection/sweep.py).
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_SCHEMA = 1  # the version of the record lines' fields; readers select lines by it
RECORD_FIELD = "record"  # the field that carries it: a line is a record if and only if it has one


@dataclass(frozen=True)
class Record:
    """One kind of record line: its log message, and the fields its log-based metric keeps as labels."""

    message: str
    metric_labels: tuple[str, ...]


ROUTED = Record("routed", ("line", "folder", "label"))
REJECTED = Record("rejected", ("line", "reason"))
DECIDED = Record("decided", ("line", "agreement", "label"))
UNDONE = Record("undone", ("line",))
RECORDS = (ROUTED, REJECTED, DECIDED, UNDONE)

# Operational lines
PREDICTED = "predicted"  # predict, one per published prediction; it carries latency_ms
DEAD_LETTERED_MALFORMED = "malformed prediction message; sent to dead letter"  # move
DEAD_LETTERED_HELD = "move held for a person; sent to dead letter"  # move
SWEPT = "sweep"  # the sweep, one per pass, with what it found
STRANDED = "stranded in inbound; re-driving"  # the sweep
REPLAYED = "dead-lettered prediction; publishing it again"  # the sweep

# The unclear_reason of a part the classifier calls ok and the anomaly model does not
ANOMALOUS = "anomalous"
