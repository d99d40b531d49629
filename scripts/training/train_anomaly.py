"""Fit an anomaly model from photos of good parts alone: a new line's first week.

    python -m scripts.training.train_anomaly gs://acme-qi-prediction/human_decided/ok/ \\
        gs://acme-qi-prediction/ok/ gs://acme-qi-training/models/anomaly/model.npz
    python -m scripts.training.train_anomaly data/train/ok_front models/anomaly.npz --test data/test

No labels, no GPU, no torch: PaDiM's per-position Gaussians over a fixed geometric embedding
(inspection/model/anomaly.py says why that suits round, centred cast parts, and where it does not). A
share of the photos is held out: their scores place the edge of normal (0.5), and the card keeps
their distribution; and the photos make the model's input guard (<model>.guard.json beside it), so that
predict sends a photo from a moved camera, a failed lamp or another part to a person.

With --test (a folder with ok_* and def_* subfolders, as the sample and Kaggle's casting data
have), it prints the image AUROC on it. Serve the model with the printed `pulumi config set`
lines after `python -m scripts.training.promote` has judged it.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from inspection.model import anomaly
from inspection.model import card as model_card
from scripts import locations
from scripts.training import guard as training_guard

HELD_OUT = 0.2


def fit(sources: list[str], out: str, seed: int = 7) -> dict:
    started = time.monotonic()
    photos = list(training_guard.photos(training_guard.reference_uris(sources)))
    if len(photos) < 10:
        raise SystemExit(
            f"{len(photos)} photos of good parts under {', '.join(sources)}: at least 10 are needed"
        )
    order = np.random.default_rng(seed).permutation(len(photos))
    held = max(2, int(len(photos) * HELD_OUT))
    embeddings = []
    for image in photos:
        residual, _ = anomaly.aligned_residual(anomaly.gray_of(image))
        embeddings.append(anomaly.embed(residual))
    fitted = [embeddings[i] for i in order[held:]]
    model = anomaly.AnomalyModel.fit(np.stack(fitted))
    model.calibrate([embeddings[i] for i in order[:held]])
    held_scores = np.sort(model.normalise(np.array(model.calibration["good_raw"])))
    name = Path(out).name
    model.card = json.loads(
        model_card.ModelCard(
            model=name,
            labels=("defect", "ok"),
            preprocessing=anomaly.METHOD,
            source={
                "kind": "train_anomaly",
                "sources": sources,
                "good_photos": len(photos),
                "held_out": held,
            },
            evaluation={
                "held_out_good_scores": {
                    "p50": round(float(np.quantile(held_scores, 0.5)), 4),
                    "p99": round(float(np.quantile(held_scores, 0.99)), 4),
                    "max": round(float(held_scores.max()), 4),
                },
                "calibration": "0.5 = held-out good photos' 99.5th percentile × 1.15",
                "threshold": threshold_for(held_scores),
            },
        ).to_json()
    )
    written = _write(model, out)
    guard_at = training_guard.write_beside(out, photos, ", ".join(sources))
    return {
        "photos": len(photos),
        "held_out": held,
        "held_out_scores": model.card["evaluation"]["held_out_good_scores"],
        "threshold": model.card["evaluation"]["threshold"],
        "seconds": round(time.monotonic() - started, 1),
        "bytes": written,
        "guard": guard_at,
    }


def threshold_for(good_scores: np.ndarray) -> float:
    """The predictionThreshold to serve it at, from good photos alone (there are no labelled
    defects yet): the highest that still decides 99% of the held-out good parts ok. An image scored
    s is decided ok when 1 − s reaches it and defect when s does; in between, a person decides."""
    edge = float(np.quantile(good_scores, 0.99))
    return float(min(max(np.floor((1.0 - edge) * 100) / 100, 0.51), 0.99))


def _write(model: anomaly.AnomalyModel, out: str) -> int:
    """The model to a path or a gs:// URI; its size in bytes."""
    buffer = io.BytesIO()
    model.save(buffer)
    data = buffer.getvalue()
    locations.write(out, data)
    return len(data)


def auroc(model_path: str, test: Path) -> float:
    """Image AUROC over a folder of ok_* and def_* subfolders, scored by predict's own backend."""
    from inspection.model import classifiers, images
    from scripts.training import metrics

    classifier = classifiers.open_model("anomaly", model_path)
    scores, truth = [], []
    for path in sorted(test.glob("*/*")):
        if path.parent.name.startswith(("ok", "def")):
            result = classifier.classify(images.load(path.read_bytes()))
            scores.append(result.confidences["defect"])
            truth.append(path.parent.name.startswith("def"))
    return metrics.auroc(truth, scores)


def localisation(model_path: str, test: Path) -> tuple[int, int]:
    """(defects whose anomaly map peaks on the defect, defects with a mask): the peak's map cell
    touches the defect's mask (sample_data.mask_path; MVTec AD's layout). The map is as predict
    keeps it, scored by predict's own backend."""
    from PIL import Image, ImageFilter

    from inspection.model import classifiers, images
    from scripts.training import sample_data

    classifier = classifiers.open_model("anomaly", model_path)
    hits = total = 0
    for path in sorted(test.glob("def*/*")):
        mask_file = sample_data.mask_path(path)
        if not mask_file.exists():
            continue
        loaded = images.load(path.read_bytes())
        heat = classifier.classify(loaded).anomaly.heat
        width, height = loaded.image.size
        cell = max(width / heat.shape[1], height / heat.shape[0])
        # the defect, widened by one map cell: a map of cells cannot point closer than that
        reach = 2 * int(cell) + 1
        mask = np.asarray(Image.open(mask_file).convert("L").filter(ImageFilter.MaxFilter(reach))) > 0
        row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
        y = min(int((row + 0.5) * height / heat.shape[0]), height - 1)
        x = min(int((col + 0.5) * width / heat.shape[1]), width - 1)
        total += 1
        hits += bool(mask[y, x])
    return hits, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("good", nargs="+", help="folders or gs:// prefixes of good photos")
    parser.add_argument("out", help="where to write the model: a .npz path or gs:// URI")
    parser.add_argument("--test", type=Path, help="a folder with ok_* and def_* subfolders, to measure AUROC")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not args.out.endswith(".npz"):
        parser.error(f"out: {args.out!r} must end in .npz")
    result = fit(args.good, args.out, args.seed)
    scores = result["held_out_scores"]
    print(
        f"fitted on {result['photos'] - result['held_out']} good photos in {result['seconds']} s; "
        f"serve it at threshold {result['threshold']:g}; "
        f"{result['held_out']} held out score p50 {scores['p50']}, p99 {scores['p99']}, max {scores['max']} "
        "(0.5 is the edge of normal)"
    )
    if args.test:
        print(f"image AUROC on {args.test}: {auroc(args.out, args.test):.4f}")
        hits, total = localisation(args.out, args.test)
        if total:
            print(f"localisation: the map peaks on {hits} of {total} defects ({hits / total:.0%})")
    print(f"model written to {args.out}; its input guard to {result['guard']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
