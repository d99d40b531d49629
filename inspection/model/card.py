"""A model card: what a model is, where it came from and how it did.

A card is JSON: `card.json` beside a `.tflite` model, the `card` entry of an ONNX model's metadata
(scripts/training/train_local.py writes it), or inside an anomaly model's file.

    {"card": 1, "model": "...", "labels": ["defect", "ok"], "preprocessing": "...",
     "source": {"kind": "train_local" | "vertex-automl-edge", ...},
     "evaluation": {"threshold": 0.9, "auto_accuracy": 1.0, "defects_passed_as_ok": 0, ...}}

What the training photos looked like is the input guard's (guard.py, `<model>.guard.json` beside the
model), whatever the backend. Cards written before it had `input_stats`, five ranges of the same
kind; they are read and ignored, since a model serves with its guard or, on purpose, without one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from inspection.errors import ConfigError

CARD_VERSION = 1


def document(raw: str | bytes, key: str, version: int, bad) -> dict:
    """A versioned JSON object (a card, a guard): `{key: version, ...}`; `bad(problem)` makes the
    error that names the file."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get(key) != version:
        raise bad(f'expected a JSON object with "{key}": {version}')
    return body


@dataclass(frozen=True)
class ModelCard:
    model: str
    labels: tuple[str, ...]
    preprocessing: str
    source: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | bytes, where: str) -> ModelCard:
        """Validate a card; a ConfigError names the file and what is wrong with it."""

        def bad(problem: str) -> ConfigError:
            return ConfigError(f"model card {where}: {problem}")

        body = document(raw, "card", CARD_VERSION, bad)
        labels = body.get("labels")
        if (
            not isinstance(labels, list)
            or len(labels) < 2
            or not all(isinstance(x, str) and x for x in labels)
        ):
            raise bad("labels must list the model's class names, at least two")
        for key in ("source", "evaluation"):
            if not isinstance(body.get(key, {}), dict):
                raise bad(f"{key} must be an object")
        return cls(
            model=str(body.get("model") or ""),
            labels=tuple(labels),
            preprocessing=str(body.get("preprocessing") or ""),
            source=body.get("source", {}),
            evaluation=body.get("evaluation", {}),
        )

    def to_json(self) -> str:
        body = {
            "card": CARD_VERSION,
            "model": self.model,
            "labels": list(self.labels),
            "preprocessing": self.preprocessing,
            "source": self.source,
            "evaluation": self.evaluation,
        }
        return json.dumps(body, indent=2, sort_keys=True)
