"""A model card: what a model is, where it came from, how it did, and what its training images
looked like, so that predict can refuse to auto-decide an image unlike any of them.

A card is JSON: `card.json` beside a `.tflite` model, or the `card` entry of an ONNX model's
metadata (scripts/training/train_local.py writes it).

    {"card": 1, "model": "...", "labels": ["defect", "ok"], "preprocessing": "...",
     "source": {"kind": "train_local" | "vertex-automl-edge", ...},
     "evaluation": {"threshold": 0.9, "auto_accuracy": 1.0, "defects_passed_as_ok": 0, ...},
     "input_stats": {"brightness": [lo, hi], "contrast": [lo, hi], "sharpness": [lo, hi],
                     "width": [lo, hi], "height": [lo, hi]}}

A camera that moved or a lamp that failed makes images outside these ranges; predict then sends
them to a person (`unclear_reason` "unusual_input", with the measure that failed) instead of
auto-deciding them with a confidence the model has no right to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from inspection.errors import ConfigError

CARD_VERSION = 1
MEASURES = ("brightness", "contrast", "sharpness", "width", "height")
UNUSUAL_INPUT = "unusual_input"  # the unclear_reason of an image outside the card's ranges
MARGIN = 0.25  # ranges are widened by this share of their span on each side: room for normal drift


def measure(image) -> dict[str, float]:
    """Brightness (mean grey level), contrast (its standard deviation), sharpness (variance of the
    Laplacian) and size of a PIL image."""
    import numpy as np

    from inspection.model.images import grayscale

    grey = grayscale(image)
    small = grey.resize((256, 256)) if max(grey.size) > 256 else grey  # the same scale for every image
    pixels = np.asarray(small, dtype=np.float32)
    laplacian = (
        pixels[:-2, 1:-1] + pixels[2:, 1:-1] + pixels[1:-1, :-2] + pixels[1:-1, 2:] - 4 * pixels[1:-1, 1:-1]
    )
    return {
        "brightness": round(float(pixels.mean()), 3),
        "contrast": round(float(pixels.std()), 3),
        "sharpness": round(float(laplacian.var()), 3),
        "width": float(image.size[0]),
        "height": float(image.size[1]),
    }


def ranges(measured: list[dict[str, float]]) -> dict[str, list[float]]:
    """The input_stats of a card, from the measures of the training images."""
    return {
        name: widened([m[name] for m in measured], 1e-6 if name not in ("width", "height") else 0.0)
        for name in MEASURES
    }


def widened(values: list[float], least: float, digits: int = 3) -> list[float]:
    """[low, high] of `values`, widened by MARGIN of their span (at least `least`) on each side."""
    low, high = min(values), max(values)
    margin = max((high - low) * MARGIN, least)
    return [round(max(0.0, low - margin), digits), round(high + margin, digits)]


@dataclass(frozen=True)
class ModelCard:
    model: str
    labels: tuple[str, ...]
    preprocessing: str
    source: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    input_stats: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | bytes, where: str) -> ModelCard:
        """Validate a card; a ConfigError names the file and what is wrong with it."""

        def bad(problem: str) -> ConfigError:
            return ConfigError(f"model card {where}: {problem}")

        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad(f"not JSON ({exc})") from None
        if not isinstance(body, dict) or body.get("card") != CARD_VERSION:
            raise bad(f'expected a JSON object with "card": {CARD_VERSION}')
        labels = body.get("labels")
        if (
            not isinstance(labels, list)
            or len(labels) < 2
            or not all(isinstance(x, str) and x for x in labels)
        ):
            raise bad("labels must list the model's class names, at least two")
        stats = body.get("input_stats") or {}
        if not isinstance(stats, dict):
            raise bad("input_stats must be an object")
        parsed = {}
        for name, bounds in stats.items():
            if name not in MEASURES:
                raise bad(f"input_stats.{name} is not one of {', '.join(MEASURES)}")
            if (
                not isinstance(bounds, list)
                or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
                or bounds[0] > bounds[1]
            ):
                raise bad(f"input_stats.{name} must be [low, high] with low <= high")
            parsed[name] = (float(bounds[0]), float(bounds[1]))
        for key in ("source", "evaluation"):
            if not isinstance(body.get(key, {}), dict):
                raise bad(f"{key} must be an object")
        return cls(
            model=str(body.get("model") or ""),
            labels=tuple(labels),
            preprocessing=str(body.get("preprocessing") or ""),
            source=body.get("source", {}),
            evaluation=body.get("evaluation", {}),
            input_stats=parsed,
        )

    def to_json(self) -> str:
        body = {
            "card": CARD_VERSION,
            "model": self.model,
            "labels": list(self.labels),
            "preprocessing": self.preprocessing,
            "source": self.source,
            "evaluation": self.evaluation,
            "input_stats": {name: list(bounds) for name, bounds in self.input_stats.items()},
        }
        return json.dumps(body, indent=2, sort_keys=True)

    def unusual(self, measured: dict[str, float]) -> str:
        """Why an image is unlike the training images ("" when it is not): the first measure outside."""
        for name in MEASURES:
            if name in self.input_stats and name in measured:
                low, high = self.input_stats[name]
                if not low <= measured[name] <= high:
                    return f"{name} {measured[name]:g} is outside the training range [{low:g}, {high:g}]"
        return ""
