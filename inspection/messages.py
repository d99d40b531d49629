"""The prediction message that predict publishes and move consumes (JSON, UTF-8).

    {"bucket": "…-inbound", "name": "line-3/part 17.jpg", "generation": "1716…",
     "label": "defect", "score": 0.93, "scores": {"defect": 0.93, "ok": 0.07},
     "model": "projects/…/endpoints/…", "predicted_at": "2026-11-25T10:00:00+00:00"}

`generation` is a decimal string, as in the GCS JSON API, because it does not fit a JSON double.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime

from inspection import events
from inspection.errors import MessageError
from inspection.layout import HEATMAP_NAME, LABELS, line_of

SCHEMA_VERSION = 1
FINALIZED = "google.cloud.storage.object.v1.finalized"  # the storage event predict is triggered by
MAX_NAME_BYTES = 1024  # GCS object-name limit

# The log lines of messages move cannot route: each is dead-lettered for a person
# (docs/operations.md, "Runbook").
DEAD_LETTERED_MALFORMED, DEAD_LETTERED_HELD = events.DEAD_LETTERED_MALFORMED, events.DEAD_LETTERED_HELD


@dataclass(frozen=True)
class Prediction:
    """What the model said about one object generation."""

    bucket: str
    name: str
    generation: int
    label: str
    score: float
    scores: dict[str, float]
    model: str
    predicted_at: str
    schema: int = field(default=SCHEMA_VERSION)
    # Why a person must decide whatever the score: "no_model" on day zero, "unusual_input" when the
    # image is unlike the model's training images (unclear_detail says how). Empty otherwise.
    unclear_reason: str = ""
    unclear_detail: str = ""
    heatmap: str = ""  # the anomaly map predict kept in the prediction bucket (layout.heatmap), if any
    # The input guard that checked the photo (inspection/model/guard.py: "sha256:<12 hex>" of its
    # file); "" when none did: day zero, or a model served unguarded on purpose.
    guard: str = ""

    def log_fields(self, line_segment: int = 1) -> dict:
        """The fields every log line about this prediction carries (docs/pipeline.md, "The log schema")."""
        return {
            "image": self.name,
            "line": line_of(self.name, line_segment),
            "generation": self.generation,
            "label": self.label,
            "score": self.score,
            "model": self.model,
            "unclear_reason": self.unclear_reason or None,
            "unclear_detail": self.unclear_detail or None,
        }

    def to_json(self) -> bytes:
        body = asdict(self)
        body["generation"] = str(self.generation)
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Prediction:
        """Parse and validate; a MessageError says exactly what is wrong."""
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise MessageError(f"not JSON: {type(exc).__name__}: {exc}") from None
        if not isinstance(body, dict):
            raise MessageError("not a JSON object")
        return cls(
            bucket=_text(body, "bucket"),
            name=validate_object_name(_text(body, "name")),
            generation=_generation(body.get("generation")),
            label=_label(body.get("label")),
            score=_probability(body.get("score"), "score"),
            scores=_scores(body.get("scores")),
            model=_text(body, "model"),
            predicted_at=_timestamp(body.get("predicted_at")),
            schema=_schema(body.get("schema", SCHEMA_VERSION)),
            unclear_reason=_reason(body.get("unclear_reason", "")),
            unclear_detail=_detail(body.get("unclear_detail", "")),
            heatmap=_heatmap(body.get("heatmap", "")),
            guard=_guard(body.get("guard", "")),
        )._consistent()

    def _consistent(self) -> Prediction:
        if self.label not in self.scores:
            raise MessageError(f"scores has no entry for label {self.label!r}")
        if not math.isclose(self.scores[self.label], self.score, abs_tol=1e-6):
            raise MessageError("score differs from scores[label]")
        return self


def validate_object_name(name: str) -> str:
    """GCS's own rules; anything else (spaces, unicode, '#', '?', '..') is a legal name."""
    if len(name.encode()) > MAX_NAME_BYTES:
        raise MessageError("name longer than 1024 bytes")
    if "\r" in name or "\n" in name:
        raise MessageError("name contains a line break")
    return name


def _text(body: dict, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise MessageError(f"{key} must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") that JSON allows and UTF-8 does not
        raise MessageError(f"{key} is not valid UTF-8: no Cloud Storage name or bucket can hold it") from None
    return value


def _generation(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MessageError("generation must be a decimal string")
    text = str(value)
    # isdigit() alone admits "٣" (an Arabic-Indic three), which int() reads as 3: another generation
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise MessageError("generation must be a positive decimal string")
    return int(text)


def _label(value: object) -> str:
    if value not in LABELS:
        raise MessageError(f"label must be one of {', '.join(LABELS)}")
    return str(value)


def _probability(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MessageError(f"{key} must be a number")
    if not 0.0 <= float(value) <= 1.0:
        raise MessageError(f"{key} must be within [0, 1]")
    return float(value)


def _scores(value: object) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise MessageError("scores must be a non-empty object")
    return {_label(label): _probability(score, f"scores.{label}") for label, score in value.items()}


def _schema(value: object) -> int:
    if value != SCHEMA_VERSION or isinstance(value, bool):
        raise MessageError(f"schema must be {SCHEMA_VERSION}")
    return SCHEMA_VERSION


def _reason(value: object) -> str:
    if not isinstance(value, str) or len(value) > 64 or not all(ch.islower() or ch == "_" for ch in value):
        raise MessageError("unclear_reason must be a short lowercase code")
    return value


def _detail(value: object) -> str:
    if not isinstance(value, str) or len(value) > 300:
        raise MessageError("unclear_detail must be a short string")
    return value


def _heatmap(value: object) -> str:
    if value != "" and not (isinstance(value, str) and HEATMAP_NAME.match(value)):
        raise MessageError("heatmap must be empty or heatmaps/<40 hex digits>.png")
    return value


GUARD_DIGEST = re.compile(r"^sha256:[0-9a-f]{12}$")


def _guard(value: object) -> str:
    if value != "" and not (isinstance(value, str) and GUARD_DIGEST.match(value)):
        raise MessageError("guard must be empty or sha256:<12 hex digits>")
    return value


def _timestamp(value: object) -> str:
    if not isinstance(value, str):
        raise MessageError("predicted_at must be an ISO 8601 string")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise MessageError("predicted_at must be an ISO 8601 string") from None
    return value


@dataclass(frozen=True)
class StorageObject:
    """The object resource of a storage `finalized` event: the fields predict relies on, checked."""

    bucket: str
    name: str
    generation: int
    size: int

    @classmethod
    def from_event(cls, data: object) -> StorageObject:
        """Validate the event's data; a MessageError says what is wrong."""
        if not isinstance(data, dict):
            raise MessageError("event data is not a JSON object")
        size = data.get("size", "0")
        if (
            isinstance(size, bool)
            or not isinstance(size, (str, int))
            or not (str(size or "0").isascii() and str(size or "0").isdigit())
        ):
            raise MessageError("size must be a decimal string")
        return cls(
            bucket=_text(data, "bucket"),
            name=validate_object_name(_text(data, "name")),
            generation=_generation(data.get("generation")),
            size=int(size or 0),
        )
