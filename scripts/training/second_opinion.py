"""What a second opinion earns: of the defects a classifier passes as ok on its own, how many the
anomaly model beside it sends to a person, at a fraction of the sample's defect depth (how much
darker a pit or crack is, how deep a chip bites, how far a burr sticks out: sample_data.py); and
what it costs, the good parts it sends to a person too. Both models are run as predict runs them
(predicting.assess, routing.decided_label), so the figures are the pipeline's.

    python -m scripts.training.second_opinion CLASSIFIER.onnx ANOMALY.npz [--photos 100]

The bench prints the same at half, a third and a quarter of the depth (bench/anomaly.py).
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass

import numpy as np

from inspection import predicting, routing
from inspection.labels import LabelMap
from inspection.model import classifiers, images
from scripts.training import sample_data

DEPTHS = {"half": 1 / 2, "third": 1 / 3, "quarter": 1 / 4}


@dataclass(frozen=True)
class AtDepth:
    defects: int
    escapes_alone: int  # defects the classifier alone decides ok
    caught: int  # of those, sent to a person by the second opinion
    anomaly_alone_escapes: int  # defects the anomaly model, served alone at its threshold, decides ok

    @property
    def escapes_with(self) -> int:
        return self.escapes_alone - self.caught


def _photo(seed: int, index: int, defect: str | None, strength: float) -> images.LoadedImage:
    picture = sample_data.draw_part(np.random.default_rng([seed, index]), defect, False, strength)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=92)
    return images.load(out.getvalue())


def _decided(classifier, loaded, threshold: float) -> str | None:
    found = predicting.assess(loaded, classifier, LabelMap())
    return routing.decided_label(found.label, found.score, found.unclear_reason, threshold)


def at_depth(classifier: str, anomaly: str, strength: float, photos: int = 100, seed: int = 77) -> AtDepth:
    """`photos` defects of every kind in turn, each `strength` of the sample's depth."""
    alone = classifiers.open_model("onnx", classifier)
    beside = classifiers.open_model("onnx", classifier, second_opinion=anomaly)
    served_alone = classifiers.open_model("anomaly", anomaly)
    threshold = float(alone.card.evaluation.get("threshold", 0.9)) if alone.card else 0.9
    anomaly_threshold = float(served_alone.card.evaluation["threshold"])
    escapes = caught = anomaly_escapes = 0
    for index in range(photos):
        kind = sample_data.DEFECT_KINDS[index % len(sample_data.DEFECT_KINDS)]
        loaded = _photo(seed, index, kind, strength)
        if _decided(alone, loaded, threshold) == "ok":
            escapes += 1
            caught += _decided(beside, loaded, threshold) != "ok"
        anomaly_escapes += _decided(served_alone, loaded, anomaly_threshold) == "ok"
    return AtDepth(photos, escapes, caught, anomaly_escapes)


def good_parts_sent(classifier: str, anomaly: str, photos: int = 200, seed: int = 78) -> tuple[int, int]:
    """(good parts the classifier alone decides, of those the second opinion sends to a person)."""
    alone = classifiers.open_model("onnx", classifier)
    beside = classifiers.open_model("onnx", classifier, second_opinion=anomaly)
    threshold = float(alone.card.evaluation.get("threshold", 0.9)) if alone.card else 0.9
    decided = sent = 0
    for index in range(photos):
        loaded = _photo(seed, index, None, 1.0)
        if _decided(alone, loaded, threshold) == "ok":
            decided += 1
            sent += _decided(beside, loaded, threshold) is None
    return decided, sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("classifier", help="an .onnx model from train_local")
    parser.add_argument("anomaly", help="an .npz model from train_anomaly")
    parser.add_argument("--photos", type=int, default=100)
    args = parser.parse_args(argv)
    for name, strength in DEPTHS.items():
        found = at_depth(args.classifier, args.anomaly, strength, args.photos)
        print(
            f"{name} depth: the classifier alone passes {found.escapes_alone} of {found.defects} defects "
            f"as ok; the second opinion sends {found.caught} of them to a person; the anomaly model "
            f"alone passes {found.anomaly_alone_escapes}"
        )
    decided, sent = good_parts_sent(args.classifier, args.anomaly)
    print(f"good parts: of {decided} the classifier decides ok, the second opinion sends {sent} to a person")
    return 0


if __name__ == "__main__":
    sys.exit(main())
