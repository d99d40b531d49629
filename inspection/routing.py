"""The routing rule: which folder a prediction goes to."""

from __future__ import annotations

from inspection.errors import ConfigError
from inspection.layout import UNCLEAR
from inspection.messages import Prediction

THRESHOLD_RANGE = "a number in (0.5, 1]"
# until a model's evaluation says otherwise (docs/training.md, "Choosing predictionThreshold")
DEFAULT_THRESHOLD = 0.9


def folder_for(prediction: Prediction, threshold: float) -> str:
    """The label's folder when it is decided automatically, else unclear."""
    decided = decided_label(prediction.label, prediction.score, prediction.unclear_reason, threshold)
    return decided or UNCLEAR


def decided_label(label: str, score: float, unclear_reason: str, threshold: float) -> str | None:
    """The label when its score reaches the threshold, else None (a person decides). A reason to
    ask a person (no model yet, unusual input) always means None. Evaluation counts by this too."""
    if unclear_reason:
        return None
    return label if score >= threshold else None


def parse_threshold(raw: object, key: str) -> float:
    """Validate a threshold wherever it enters: at or below 0.5 every two-class guess would pass."""
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={raw!r} is not valid: expected {THRESHOLD_RANGE}") from None
    if not 0.5 < value <= 1.0:
        raise ConfigError(f"{key}={raw!r} is out of range: expected {THRESHOLD_RANGE}")
    return value
