"""Train the small local classifier on a casting data set and export it as a self-describing ONNX model.

    python -m scripts.training.train_local DATA_ROOT OUT.onnx [--threshold 0.9]

Features come from inspection.features (the same function the predict function runs); the model
is a standardised logistic regression, whose probabilities are calibrated enough to route on.
The ONNX file carries its labels, input size and preprocessing version in its metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from inspection.layout import DEFECT, LABELS
from inspection.model import features, images
from inspection.model.card import ModelCard
from inspection.routing import DEFAULT_THRESHOLD
from scripts.training import guard as training_guard
from scripts.training import metrics
from scripts.training.datasets import labelled_images

MODEL_NAME = "local-geometry-logreg"


def featurise(
    items: list[tuple[Path, str]], desc: str, reference: list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels; with `reference`, each image is appended to it (for the guard)."""
    from tqdm import tqdm

    rows, labels, skipped = [], [], []
    for path, label in tqdm(items, desc=desc, unit="img", leave=False):
        try:  # the same checks the predict function makes
            loaded = images.load(path.read_bytes())
        except images.ImageRejected as rejected:
            skipped.append(f"{path.name} ({rejected.reason})")
            continue
        rows.append(features.extract(loaded.image))
        labels.append(LABELS.index(label))
        if reference is not None:
            reference.append(loaded.image)
    if skipped:
        print(f"{desc}: skipped {len(skipped)} unusable file(s): {', '.join(skipped[:3])}")
    if len(set(labels)) < len(LABELS):
        raise SystemExit(f"{desc}: need images of both labels (def_front and ok_front) to train and evaluate")
    return np.stack(rows), np.array(labels)


def fit(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)).fit(x, y)


def export(model, path: Path, card: ModelCard | None = None) -> None:
    """Write the ONNX model with the metadata the serving side checks, and its model card."""
    import onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    classifier = model.steps[-1][1]
    proto = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, len(features.FEATURE_NAMES)]))],
        options={id(classifier): {"zipmap": False}},
        target_opset=17,
    )
    meta = {
        "labels": json.dumps(list(LABELS)),
        "preprocessing": features.PREPROCESSING_VERSION,
        "input_size": str(features.INPUT_SIZE),
        "feature_names": json.dumps(list(features.FEATURE_NAMES)),
        "model_name": MODEL_NAME,
        **({"card": card.to_json()} if card else {}),
    }
    onnx.helper.set_model_props(proto, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(proto.SerializeToString())


def outcomes(probabilities: np.ndarray, truth: np.ndarray) -> list[metrics.Outcome]:
    return [
        metrics.Outcome(LABELS[t], LABELS[p], float(row[p]))
        for t, p, row in zip(truth, probabilities.argmax(axis=1), probabilities, strict=True)
    ]


def report(probabilities: np.ndarray, truth: np.ndarray, threshold: float) -> dict:
    """Metrics on a labelled split, overall and among the images the threshold would auto-decide."""
    found = outcomes(probabilities, truth)
    counts = metrics.confusion((o.truth, o.label) for o in found)
    quality = metrics.per_label(counts)[DEFECT]
    return {
        "images": len(found),
        "accuracy": metrics.accuracy(counts),
        "defect_precision": quality["precision"],
        "defect_recall": quality["recall"],
        "confusion": {f"true_{t}": {f"pred_{p}": counts[(t, p)] for p in LABELS} for t in LABELS},
        **metrics.at_threshold(found, threshold),
    }


def train(root: Path, out: Path, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Fit on train/, evaluate on test/, export; returns the test report."""
    started = time.perf_counter()
    reference: list = []
    x_train, y_train = featurise(labelled_images(root, "train"), "features (train)", reference)
    x_test, y_test = featurise(labelled_images(root, "test"), "features (test)")
    model = fit(x_train, y_train)
    probabilities = model.predict_proba(x_test)
    result = report(probabilities, y_test, threshold)
    evaluation = metrics.card_evaluation(outcomes(probabilities, y_test), threshold)
    card = ModelCard(
        model=MODEL_NAME,
        labels=LABELS,
        preprocessing=features.PREPROCESSING_VERSION,
        source={"kind": "train_local", "data": str(root), "training_images": len(reference)},
        evaluation=evaluation,
    )
    export(model, out, card)
    result["guard"] = training_guard.write_beside(str(out), reference, f"{root}/train")
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def describe(result: dict) -> str:
    c = result["confusion"]
    ok, defect = c["true_ok"], c["true_defect"]
    return "\n".join(
        [
            f"test split: {result['images']} images, accuracy {result['accuracy']:.1%}, "
            f"defect precision {result['defect_precision']:.1%}, recall {result['defect_recall']:.1%}",
            "confusion (rows: truth):   pred ok  pred defect",
            f"  ok                      {ok['pred_ok']:7d}  {ok['pred_defect']:11d}",
            f"  defect                  {defect['pred_ok']:7d}  {defect['pred_defect']:11d}",
            f"at threshold {result['threshold']}: {result['unclear_share']:.1%} unclear, "
            f"{result['auto_accuracy']:.1%} accurate among auto-decided, "
            f"{result['defects_passed_as_ok']} defects passed as ok",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="folder in the casting layout (train/ and test/)")
    parser.add_argument("out", type=Path, help="where to write the .onnx model")
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD, help="routing threshold to report at"
    )
    args = parser.parse_args(argv)
    result = train(args.data, args.out, args.threshold)
    print(describe(result))
    print(f"model written to {args.out} in {result['seconds']}s; its input guard to {result['guard']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
