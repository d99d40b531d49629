"""What happened to each image, typed: one outcome, one record.

Each outcome is a small frozen dataclass named in the past tense (the shape of cosmicpython's
domain events). It carries its log message, its fields and the labels its log-based metric keeps,
and `record(outcome)` is the one place that turns it into its side effects:

- one structured log line, which is also the plant's record: the Logging sink delivers exactly
  these lines to the analytical store (docs/operations.md, "The plant's records"), and the
  log-based metrics count them;
- the change it makes to the reviewers' arrival-ordered queue, if any (a removal is handed back, to
  go side by side with the claim's done).

`image` always means the inbound object name (`line-1/part-0042.jpeg`), whichever folder the image
is in now; `object` is where it is now. `event_id` is derived from the claim that decided the
outcome, so a record written twice (a process that died between recording and marking its claim
done) is the same record twice, and the store keeps one.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from inspection import events, layout, logs, metadata, review_index

if TYPE_CHECKING:
    from inspection.claims import Moved

RECORD_SCHEMA, RECORD_FIELD = events.RECORD_SCHEMA, events.RECORD_FIELD


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The fields every record has."""

    MESSAGE: ClassVar[str]
    SEVERITY: ClassVar[int] = logging.INFO
    METRIC_LABELS: ClassVar[tuple[str, ...]] = ()  # fields its log-based metric keeps as labels

    event_id: str  # one per outcome: the same however often it is recorded
    occurred_at: str  # when it was decided (ISO 8601, UTC); the record's log line is stamped with it
    image: str  # the inbound object name
    line: str  # the production line (layout.line_of)
    object: str  # where the image is now (an object name in the prediction bucket)

    def fields(self) -> dict:
        """The record's fields, as its log line carries them."""
        found = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        return {RECORD_FIELD: RECORD_SCHEMA, "event": self.MESSAGE, **found}

    def queue_change(self) -> tuple[str, review_index.Entry] | None:
        """("add" or "remove", the queue entry) when this outcome changes the reviewers' queue."""
        return None


def event_id(kind: str, decided_by: str) -> str:
    """The id of the outcome of kind `kind` decided by the claim for `decided_by` (a source URI)."""
    return layout.digest(f"{kind}:{decided_by}")


@dataclass(frozen=True, kw_only=True)
class Routed(Outcome):
    """Move put an image into ok/, defect/ or unclear/."""

    MESSAGE: ClassVar[str] = events.ROUTED.message
    METRIC_LABELS: ClassVar[tuple[str, ...]] = events.ROUTED.metric_labels

    generation: str  # of the inbound object
    folder: str
    label: str  # the model's label
    score: float
    model: str
    threshold: float
    unclear_reason: str = ""
    unclear_detail: str = ""
    guard: str = ""  # the input guard that checked it; "" when none did
    _bucket: str = ""
    _object_generation: int = 0
    _routed_at: str = ""  # the queue orders by it; a decision removes the entry by it
    _in_queue: bool = True  # False once a reviewer already took the image (the claim was pinned)

    def queue_change(self):
        if self.folder != layout.UNCLEAR or not self._in_queue:
            return None
        return "add", review_index.Entry(self._bucket, self.object, self._object_generation, self._routed_at)


@dataclass(frozen=True, kw_only=True)
class Rejected(Outcome):
    """Predict kept a file it cannot classify in rejected/ (or a name it cannot carry in quarantine/)."""

    MESSAGE: ClassVar[str] = events.REJECTED.message
    SEVERITY: ClassVar[int] = logging.ERROR
    METRIC_LABELS: ClassVar[tuple[str, ...]] = events.REJECTED.metric_labels

    generation: str
    folder: str
    reason: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class Decided(Outcome):
    """A reviewer decided an unclear image: ok, defect, or unusable (not a part)."""

    MESSAGE: ClassVar[str] = events.DECIDED.message
    METRIC_LABELS: ClassVar[tuple[str, ...]] = events.DECIDED.metric_labels

    folder: str  # human_decided
    label: str  # the reviewer's answer
    reviewer: str
    agreement: str  # agree, overrule, no_model, or not_judged (an unusable photo)
    model: str
    model_label: str
    model_score: float | None
    threshold: float | None
    waited_s: float | None  # how long the image waited in unclear/ for a person
    unclear_reason: str = ""
    heatmap: str = ""  # the anomaly map the reviewer could see (layout.heatmap), for the audit
    _bucket: str = ""
    _source: str = ""  # the unclear/ object that was decided
    _source_generation: int = 0
    _routed_at: str = ""

    def queue_change(self):
        if not self._routed_at:
            return None
        return "remove", review_index.Entry(
            self._bucket, self._source, self._source_generation, self._routed_at
        )


@dataclass(frozen=True, kw_only=True)
class Undone(Outcome):
    """A reviewer took back their decision; the image is back in unclear/, leased to them."""

    MESSAGE: ClassVar[str] = events.UNDONE.message
    METRIC_LABELS: ClassVar[tuple[str, ...]] = events.UNDONE.metric_labels

    reviewer: str
    label: str  # the answer taken back
    undoes: str  # the event_id of the Decided record it cancels
    _bucket: str = ""
    _object_generation: int = 0
    _routed_at: str = ""

    _tab: str = ""

    def queue_change(self):
        if not self._routed_at:
            return None
        until = datetime.fromisoformat(self.occurred_at) + timedelta(seconds=review_index.RESERVED_S)
        return "add", review_index.Entry(
            self._bucket,
            self.object,
            self._object_generation,
            self._routed_at,
            reserved_for=f"{self.reviewer}\t{self._tab}",
            reserved_until=until.isoformat(),
        )


KINDS: tuple[type[Outcome], ...] = (Routed, Rejected, Decided, Undone)
BY_MESSAGE = {kind.MESSAGE: kind for kind in KINDS}


def record(outcome: Outcome, **log_only: object) -> Callable[[], None] | None:
    """The one writer: the record's log line, then the queue change. Safe to repeat.

    An entry to add is written here, before the caller's claim says done: an image left out of
    the queue waits for the sweep. An entry to remove is returned for the caller to make side by
    side with its claim's done, one round trip for both: if it is lost, the entry is stale, and
    whoever meets it drops it (review_app/unclear_queue.py).

    `log_only` fields (a latency, say) go on the log line but are not part of the record: a record
    written twice must be the same record."""
    # Stamped with the moment it was decided, however late a retry records it: Cloud Logging takes
    # `time` as the entry's timestamp, which is what the store partitions by.
    logs.log(outcome.SEVERITY, outcome.MESSAGE, **log_only, **outcome.fields(), time=outcome.occurred_at)
    change = outcome.queue_change()
    if change is None:
        return None
    action, entry = change
    if action == "remove":
        return functools.partial(review_index.remove, entry)
    review_index.add(entry)
    return None


# --- the outcome of a move, from the claim that decided it -------------------------------------------


def of_move(moved: Moved, line_segment: int) -> Outcome:
    """What a finished move means, from its claim alone: where the claim took the image from and
    to says what happened, so any attempt that finishes it records the same outcome."""
    claim = moved.claim
    to, origin = claim.place, layout.parse(claim.source_ref.name)
    if to.folder in (layout.REJECTED, layout.QUARANTINE):
        return _rejected(moved, line_segment)
    if to.folder == layout.HUMAN_DECIDED:
        return _decided(moved, line_segment)
    if to.folder == layout.UNCLEAR and origin.folder == layout.HUMAN_DECIDED and claim.owner:
        return _undone(moved, line_segment)
    return _routed(moved, line_segment)


def recorder(line_segment: int, started: float | None = None):
    """The `record` of a claimed move: its outcome, recorded (with the attempt's latency)."""

    def write(moved: Moved) -> Callable[[], None] | None:
        extra = {} if started is None else {"latency_ms": round((time.perf_counter() - started) * 1000, 1)}
        return record(of_move(moved, line_segment), **extra)

    return write


def _image(moved: Moved) -> str:
    """The inbound name: kept in metadata through every move, else the name the object carries."""
    name = moved.claim.source_ref.name
    return moved.claim.metadata.get(metadata.SOURCE_NAME) or layout.parse(name).name or name


def _shared(kind: type[Outcome], moved: Moved, image: str, line_segment: int) -> dict:
    """The fields every record has, for the outcome of kind `kind` that `moved` carried out."""
    return {
        "event_id": event_id(kind.MESSAGE, moved.claim.source),
        "occurred_at": moved.claim.claimed_at,
        "image": image,
        "line": layout.line_of(image, line_segment),
        "object": moved.copy.name,
    }


def _routed(moved: Moved, line_segment: int) -> Routed:
    claim, meta = moved.claim, moved.claim.metadata
    source = claim.source_ref
    return Routed(
        **_shared(Routed, moved, source.name, line_segment),
        generation=str(source.generation),
        folder=claim.place.folder,
        label=meta.get(metadata.PREDICTED_LABEL, ""),
        score=number(meta.get(metadata.PREDICTED_SCORE)) or 0.0,
        model=meta.get(metadata.MODEL, ""),
        threshold=number(meta.get(metadata.THRESHOLD)) or 0.0,
        unclear_reason=meta.get(metadata.UNCLEAR_REASON, ""),
        unclear_detail=meta.get(metadata.UNCLEAR_DETAIL, ""),
        guard=meta.get(metadata.INPUT_GUARD, ""),
        _bucket=claim.bucket,
        _object_generation=moved.copy.generation or 0,
        _routed_at=meta.get(metadata.ROUTED_AT, claim.claimed_at),
        _in_queue=not moved.handed_on,
    )


def _rejected(moved: Moved, line_segment: int) -> Rejected:
    claim, meta = moved.claim, moved.claim.metadata
    source = claim.source_ref
    return Rejected(
        **_shared(Rejected, moved, source.name, line_segment),
        generation=str(source.generation),
        folder=claim.place.folder,
        reason=meta.get(metadata.REJECTED_REASON, ""),
        detail=meta.get(metadata.REJECTED_DETAIL, ""),
    )


def _decided(moved: Moved, line_segment: int) -> Decided:
    claim, meta = moved.claim, moved.claim.metadata
    source, image = claim.source_ref, _image(moved)
    label = meta.get(metadata.HUMAN_LABEL) or claim.place.label
    return Decided(
        **_shared(Decided, moved, image, line_segment),
        folder=layout.HUMAN_DECIDED,
        label=label,
        reviewer=claim.owner,
        agreement=agreement(label, meta),
        model=meta.get(metadata.MODEL, ""),
        model_label=meta.get(metadata.MODEL_LABEL, ""),
        model_score=number(meta.get(metadata.MODEL_SCORE)),
        threshold=number(meta.get(metadata.THRESHOLD)),
        waited_s=waited_s(meta, claim.claimed_at),
        unclear_reason=meta.get(metadata.UNCLEAR_REASON, ""),
        heatmap=meta.get(metadata.HEATMAP, ""),
        _bucket=claim.bucket,
        _source=source.name,
        _source_generation=source.generation or 0,
        _routed_at=meta.get(metadata.ROUTED_AT, ""),
    )


def _undone(moved: Moved, line_segment: int) -> Undone:
    claim, meta = moved.claim, moved.claim.metadata
    return Undone(
        **_shared(Undone, moved, _image(moved), line_segment),
        reviewer=claim.owner,
        label=claim.context.get("label", ""),
        undoes=claim.context.get("undoes", ""),
        _bucket=claim.bucket,
        _object_generation=moved.copy.generation or 0,
        _routed_at=meta.get(metadata.ROUTED_AT, "") if not moved.handed_on else "",
        _tab=claim.context.get("tab", ""),
    )


# --- what the claims' metadata says, for the outcomes built from it -----------------------------------


def agreement(human_label: str, meta: dict) -> str:
    """`agree` or `overrule` against the model's label; `no_model` where there was none to agree
    with; `not_judged` when the reviewer said the photo shows no part to judge."""
    if human_label == layout.UNUSABLE:
        return "not_judged"
    if meta.get(metadata.MODEL, "none") == "none" or not meta.get(metadata.PREDICTED_LABEL):
        return "no_model"
    return "agree" if meta[metadata.PREDICTED_LABEL] == human_label else "overrule"


def number(raw: object) -> float | None:
    """A metadata number, or None where there is none."""
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def waited_s(meta: dict, until: str) -> float | None:
    """Seconds an image waited in unclear/ before `until`."""
    try:
        start = datetime.fromisoformat(meta[metadata.ROUTED_AT])
        return round((datetime.fromisoformat(until) - start).total_seconds(), 1)
    except (KeyError, ValueError):
        return None
