"""The routing rule: which folder a prediction goes to."""

from __future__ import annotations

from inspection.errors import ConfigError
from inspection.layout import UNCLEAR
from inspection.messages import Prediction

THRESHOLD_RANGE = "a number in (0.5, 1]"


def folder_for(prediction: Prediction, threshold: float) -> str:
    """The label's folder when its score reaches the threshold, else unclear; a reason to ask a
    person (no model yet, unusual input) always means unclear."""
    if prediction.unclear_reason:
        return UNCLEAR
    return prediction.label if prediction.score >= threshold else UNCLEAR


def parse_threshold(raw: object, key: str) -> float:
    """Validate a threshold wherever it enters: at or below 0.5 every two-class guess would pass."""
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={raw!r} is not valid: expected {THRESHOLD_RANGE}") from None
    if not 0.5 < value <= 1.0:
        raise ConfigError(f"{key}={raw!r} is out of range: expected {THRESHOLD_RANGE}")
    return value
