"""A new line's first week (issue 25): the anomaly model fitted from good photos alone, and an
anomalib export run through the same backend.

- fit: train_anomaly on 200 synthetic good photos (a fifth held out for its calibration);
- quality on the synthetic test split (100 good, 100 defects): image AUROC, and how many defects'
  maps peak within one map cell of the defect's mask;
- predict's cost per image with the map it keeps: decode, score, and the PNG;
- the model file, and the cold start of a whole predict process serving it;
- the anomalib-contract fixture (scripts/training/anomalib_fixture.py) per image: the runner's own
  cost, since its graph is trivial where a real export has PatchCore's;
- the second opinion at faint defects (issue 31; scripts/training/second_opinion.py): beside a
  classifier trained on the same sample, of the defects at half, a third and a quarter of the
  sample's depth that the classifier alone passes as ok, how many it sends to a person; what the
  anomaly model alone passes; and the good parts it sends to a person.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.backends import cold_start
from inspection import predicting
from inspection.backends import guard_beside
from inspection.labels import LabelMap
from inspection.model import anomaly, classifiers, images
from inspection.settings import PredictSettings
from scripts.training import anomalib_fixture, sample_data, second_opinion, train_anomaly, train_local


def per_image_with_map(backend: str, location: str, data: list[bytes]) -> float:
    """Wall milliseconds per image: decode, assess as predict does, and the map's PNG."""
    classifier = classifiers.open_model(backend, location)
    label_map = LabelMap()

    def one(raw: bytes) -> None:
        found = predicting.assess(images.load(raw), classifier, label_map)
        anomaly.heatmap_png(found.anomaly.heat)

    for raw in data[:5]:
        one(raw)
    started = time.perf_counter()
    for raw in data:
        one(raw)
    return round((time.perf_counter() - started) * 1000 / len(data), 2)


def measure(runs: int = 5, depth_photos: int = 100, good_photos: int = 200) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_root = sample_data.generate(root / "data", train=400, test=200, seed=5)
        model = root / "anomaly.npz"
        fitted = train_anomaly.fit([str(data_root / "train" / "ok_front")], str(model))
        hits, total = train_anomaly.localisation(str(model), data_root / "test")
        photos = [p.read_bytes() for p in sorted((data_root / "test").rglob("*.jpeg"))]
        export = root / "anomalib.onnx"
        anomalib_fixture.write(export, size=256)
        image = root / "first.jpeg"
        image.write_bytes(photos[0])
        env = PredictSettings.environment(
            predictions_topic="projects/p/topics/t",
            prediction_bucket="b",
            inbound_bucket="i",
            backend="anomaly",
            model=str(model),
            input_guard=guard_beside(str(model)),
        )
        return {
            "anomaly_fit_s_200_good_photos": fitted["seconds"],
            "anomaly_model_bytes": model.stat().st_size,
            "anomaly_image_auroc": round(train_anomaly.auroc(str(model), data_root / "test"), 4),
            "anomaly_map_peak_in_mask_share": round(hits / total, 3),
            "anomaly_ms_per_image_with_map": per_image_with_map("anomaly", str(model), photos),
            "anomalib_contract_ms_per_image_with_map": per_image_with_map("anomaly", str(export), photos),
            **cold_start("anomaly", env, image, runs),
            **at_depths(data_root, model, root / "classifier.onnx", depth_photos, good_photos),
        }


def at_depths(data_root: Path, anomaly_model: Path, classifier: Path, photos: int, good: int) -> dict:
    train_local.train(data_root, classifier)
    figures = {}
    for name, strength in second_opinion.DEPTHS.items():
        found = second_opinion.at_depth(str(classifier), str(anomaly_model), strength, photos)
        figures |= {
            f"faint_{name}_depth_defects": found.defects,
            f"faint_{name}_depth_classifier_escapes": found.escapes_alone,
            f"faint_{name}_depth_caught_by_second_opinion": found.caught,
            f"faint_{name}_depth_anomaly_alone_escapes": found.anomaly_alone_escapes,
        }
    decided, sent = second_opinion.good_parts_sent(str(classifier), str(anomaly_model), good)
    figures["second_opinion_good_parts_decided_ok"] = decided
    figures["second_opinion_good_parts_sent_to_a_person"] = sent
    return figures
