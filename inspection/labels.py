"""Mapping the model's class names onto our two labels, using every class's score."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from inspection.errors import ConfigError
from inspection.layout import DEFECT, LABELS, OK

# Names models commonly use: Vertex display names, the Kaggle casting folders, the original showcase.
DEFAULT_ALIASES = {
    "ok": OK,
    "ok_front": OK,
    "good": OK,
    "pass": OK,
    "defect": DEFECT,
    "def_front": DEFECT,
    "defective": DEFECT,
    "fail": DEFECT,
}


@dataclass(frozen=True)
class LabelMap:
    """Display name (case-insensitive) → our label. Configured entries win over the defaults."""

    entries: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALIASES))

    @classmethod
    def parse(cls, raw: str, key: str) -> LabelMap:
        """Parse `Name=label,Other=label`; labels must be ok or defect."""
        entries = dict(DEFAULT_ALIASES)
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name, sep, label = item.partition("=")
            label = label.strip().lower()
            if not sep or not name.strip() or label not in LABELS:
                raise ConfigError(
                    f"{key} entry {item!r} is not valid: expected DisplayName=ok or DisplayName=defect"
                )
            entries[name.strip().lower()] = label
        return cls(entries)

    def label_of(self, name: str) -> str:
        """Our label for one class name; an unknown class is a configuration error."""
        label = self.entries.get(name.strip().lower())
        if label is None:
            raise ConfigError(
                f"the model returned class {name!r}, which LABEL_MAP does not map: "
                f"add {name}=ok or {name}=defect"
            )
        return label

    def normalise(self, confidences: Mapping[str, float]) -> dict[str, float]:
        """Sum each class's confidence into our labels."""
        scores = dict.fromkeys(LABELS, 0.0)
        for name, confidence in confidences.items():
            scores[self.label_of(name)] += float(confidence)
        return {label: round(min(score, 1.0), 6) for label, score in scores.items()}
