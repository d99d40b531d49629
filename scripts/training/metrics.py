"""Every quality figure, computed one way: from (truth, label, score) outcomes, or from a confusion.

The local trainer, `evaluate`, `train_vertex` and the demo all report through here, so "accuracy
among auto-decided images" and "defects passed as ok" mean the same everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from inspection import routing
from inspection.layout import DEFECT, LABELS, OK
from inspection.model.guard import UNUSUAL_INPUT

THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99)


@dataclass(frozen=True)
class Outcome:
    """What the model said about one labelled image."""

    truth: str
    label: str
    score: float
    unclear_reason: str = ""  # predict would send it to a person whatever the score (unusual input)


def confusion(pairs: Iterable[tuple[str, str]]) -> Counter:
    """(truth, predicted) → count."""
    return Counter(pairs)


def per_label(counts: Counter, labels: Sequence[str] = LABELS) -> dict[str, dict[str, float]]:
    """Precision, recall and support of each label, from a confusion."""
    found = {}
    for label in labels:
        hits = counts[(label, label)]
        predicted = sum(counts[(truth, label)] for truth in labels)
        actual = sum(counts[(label, other)] for other in labels)
        found[label] = {
            "precision": hits / predicted if predicted else 1.0,
            "recall": hits / actual if actual else 1.0,
            "support": actual,
        }
    return found


def accuracy(counts: Counter, labels: Sequence[str] = LABELS) -> float:
    total = sum(counts.values())
    return sum(counts[(x, x)] for x in labels) / total if total else 1.0


def decided(pairs: Iterable[tuple[str, str | None]]) -> dict:
    """The figures that matter for routing, from (truth, the label decided automatically, or None
    when the image went to a person)."""
    pairs = list(pairs)
    auto = [(truth, label) for truth, label in pairs if label is not None]
    errors = sum(1 for truth, label in auto if truth != label)
    return {
        "unclear_share": 1 - len(auto) / len(pairs) if pairs else 0.0,
        "auto_decided": len(auto),
        "errors": errors,
        "auto_accuracy": 1 - errors / len(auto) if auto else 1.0,
        "defects_passed_as_ok": sum(1 for truth, label in auto if truth == DEFECT and label == OK),
    }


def at_threshold(outcomes: Sequence[Outcome], threshold: float) -> dict:
    """`decided` under the routing rule move applies."""
    return {
        "threshold": threshold,
        **decided(
            (o.truth, routing.decided_label(o.label, o.score, o.unclear_reason, threshold)) for o in outcomes
        ),
    }


def choose_threshold(outcomes: Sequence[Outcome], thresholds: Sequence[float] = THRESHOLDS) -> float:
    """The lowest threshold at which these images (a validation split, never the split a gate
    judges on) have no defect passed as ok: the most images decided automatically, with none of the
    error a plant cannot afford. The highest threshold when none is clean."""
    clean = [row["threshold"] for row in sweep(outcomes, thresholds) if row["defects_passed_as_ok"] == 0]
    return min(clean) if clean else max(thresholds)


def sweep(outcomes: Sequence[Outcome], thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    return [at_threshold(outcomes, threshold) for threshold in thresholds]


def card_evaluation(outcomes: Sequence[Outcome], threshold: float) -> dict:
    """What a model card records of a model's test: every model's card says it the same way."""
    counts = confusion((o.truth, o.label) for o in outcomes)
    found = at_threshold(outcomes, threshold)
    return {
        "test_images": len(outcomes),
        "accuracy": round(accuracy(counts), 4),
        "threshold": threshold,
        "auto_accuracy": round(found["auto_accuracy"], 4),
        "unclear_share": round(found["unclear_share"], 4),
        "defects_passed_as_ok": found["defects_passed_as_ok"],
        "unusual": unusual(outcomes),
    }


def unusual(outcomes: Sequence[Outcome]) -> int:
    """How many images the model card sends to a person as unlike the training images."""
    return sum(1 for o in outcomes if o.unclear_reason == UNUSUAL_INPUT)


def auroc(truth: Sequence[bool], scores: Sequence[float]) -> float:
    """The area under the ROC curve: the chance that a defect scores above a good part (ties count
    half), by the Mann-Whitney rank sum."""
    import numpy as np
    from scipy.stats import rankdata

    truth_array = np.asarray(truth, bool)
    positives, negatives = int(truth_array.sum()), int((~truth_array).sum())
    if not positives or not negatives:
        raise ValueError("AUROC needs both defects and good parts")
    ranks = rankdata(np.asarray(scores, float))
    return float((ranks[truth_array].sum() - positives * (positives + 1) / 2) / (positives * negatives))
