"""Evaluate a model on labelled images, and choose predictionThreshold from data.

    python -m scripts.training.evaluate --onnx .demo/model.onnx --folder .demo/sample --split test
    python -m scripts.training.evaluate --tflite gs://…/model.tflite --import-file gs://…/import.csv
    python -m scripts.training.evaluate --endpoint projects/P/locations/R/endpoints/ID --import-file gs://…/import.csv

The images go through the same code the predict function runs (decode, size checks, the backend,
the label map, and the model card: an image unlike the training images counts as sent to a
person, as predict would send it). It prints per-label precision and recall, the confusion
matrix, and the threshold sweep: for each threshold, the share of images sent to unclear/ and the
errors among the images decided automatically. --plot writes the sweep as a PNG.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from inspection import predicting
from inspection.errors import ConfigError
from inspection.labels import LabelMap
from inspection.layout import DEFECT, OK
from inspection.model import images
from scripts.training import metrics
from scripts.training.datasets import read_bytes, read_import_file, read_text, scan
from scripts.training.models import ModelRef


@dataclass(frozen=True)
class Scored:
    uri: str
    truth: str
    label: str
    score: float
    unclear_reason: str = ""
    defect_score: float | None = None  # the model's score for defect, whatever it decided


def labelled(folder: str | None, import_file: str | None, split: str | None) -> list[tuple[str, str]]:
    if folder:
        found, _ = scan(folder)
        return [(i.uri, i.label) for i in found if split is None or (split == "test") == i.in_test_folder]
    rows = read_import_file(read_text(import_file))
    return [(uri, label) for s, uri, label in rows if split is None or s == split]


def score_all(items, classifier, label_map: LabelMap, progress: bool = True) -> list[Scored]:
    from tqdm import tqdm

    out = []
    for uri, truth in tqdm(items, desc="classify", unit="img", disable=not progress):
        found = predicting.assess(images.load(read_bytes(uri)), classifier, label_map)
        out.append(
            Scored(
                uri,
                label_map.label_of(truth),
                found.label,
                found.score,
                found.unclear_reason,
                found.scores.get(DEFECT),
            )
        )
    return out


def summarise(scored: list[Scored]) -> dict:
    counts = metrics.confusion((s.truth, s.label) for s in scored)
    return {
        "confusion": counts,
        "per_label": metrics.per_label(counts),
        "accuracy": metrics.accuracy(counts),
        "unusual": metrics.unusual(outcomes(scored)),
        "auroc": _auroc(scored),
    }


def _auroc(scored: list[Scored]) -> float | None:
    """How well the defect score ranks defects above good parts, whatever the threshold; None when
    the split lacks either."""
    ranked = [s for s in scored if s.defect_score is not None and s.truth in (OK, DEFECT)]
    truth = [s.truth == DEFECT for s in ranked]
    if not any(truth) or all(truth):
        return None
    return metrics.auroc(truth, [s.defect_score for s in ranked])


def sweep(scored: list[Scored], thresholds=metrics.THRESHOLDS) -> list[dict]:
    return metrics.sweep(outcomes(scored), thresholds)


def outcomes(scored: list[Scored]) -> list[metrics.Outcome]:
    return [metrics.Outcome(s.truth, s.label, s.score, s.unclear_reason) for s in scored]


def report(result: dict, table: list[dict]) -> str:
    lines = [f"accuracy (top label, no threshold): {result['accuracy']:.1%}"]
    if result.get("auroc") is not None:
        lines.append(f"image AUROC (the defect score, whatever the threshold): {result['auroc']:.4f}")
    if result.get("unusual"):
        lines.append(f"unusual input (always sent to a person): {result['unusual']} images")
    for label, m in result["per_label"].items():
        lines.append(
            f"  {label:7s} precision {m['precision']:.1%}  recall {m['recall']:.1%}  ({m['support']} images)"
        )
    c = result["confusion"]
    lines += [
        "confusion (rows: truth)   pred ok  pred defect",
        f"  ok                      {c[(OK, OK)]:7d}  {c[(OK, DEFECT)]:11d}",
        f"  defect                  {c[(DEFECT, OK)]:7d}  {c[(DEFECT, DEFECT)]:11d}",
        "",
        "threshold  unclear  auto-decided  errors  accuracy(auto)  defects passed as ok",
    ]
    for row in table:
        lines.append(
            f"{row['threshold']:9.2f}  {row['unclear_share']:6.1%}  {row['auto_decided']:12d}"
            f"  {row['errors']:6d}  {row['auto_accuracy']:14.1%}  {row['defects_passed_as_ok']:20d}"
        )
    return "\n".join(lines)


def plot(table: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["threshold"] for r in table]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(x, [100 * r["unclear_share"] for r in table], marker="o", label="sent to a person (unclear) %")
    ax.plot(
        x, [100 * (1 - r["auto_accuracy"]) for r in table], marker="s", label="errors among auto-decided %"
    )
    ax.plot(x, [r["defects_passed_as_ok"] for r in table], marker="^", label="defects passed as ok (count)")
    ax.set_xlabel("predictionThreshold")
    ax.set_title("Choosing the threshold")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--onnx", help="a .onnx model from scripts.training.train_local (path or gs://)")
    model.add_argument("--tflite", help="a Vertex AI Edge model.tflite, labels inside it (path or gs://)")
    model.add_argument("--endpoint", help="projects/P/locations/R/endpoints/ID of a deployed Vertex model")
    model.add_argument(
        "--anomaly", help="a .npz from scripts.training.train_anomaly, or an anomalib export's .onnx"
    )
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--folder", help="a folder in the casting layout")
    data.add_argument("--import-file", help="an import file (gs:// or local)")
    parser.add_argument(
        "--split", default="test", help="which split to use (default test; 'all' for every row)"
    )
    parser.add_argument("--label-map", default="", help="as the LABEL_MAP setting")
    parser.add_argument("--plot", help="write the threshold sweep as a PNG here")
    parser.add_argument("--guard", help="the model's input guard (default: <model>.guard.json beside it)")
    parser.add_argument("--unguarded", action="store_true", help="evaluate without an input guard")
    args = parser.parse_args(argv)

    try:
        ref = (
            ModelRef("anomaly", args.anomaly)
            if args.anomaly
            else ModelRef.parse(args.onnx or args.tflite or args.endpoint)
        ).guarded(args.guard, args.unguarded)
        classifier = ref.open()
    except ConfigError as exc:
        parser.error(str(exc))
    items = labelled(args.folder, args.import_file, None if args.split == "all" else args.split)
    if not items:
        raise SystemExit("no labelled images found for that split")
    label_map = LabelMap.parse(args.label_map, key="--label-map")
    scored = score_all(items, classifier, label_map)
    table = sweep(scored)
    print(report(summarise(scored), table))
    if args.plot:
        plot(table, args.plot)
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
