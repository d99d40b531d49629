"""What each classifier backend costs predict: milliseconds per image for the backends that run in
the function, and the cold start of a whole predict process for every backend.

- `onnx`: the model train_local writes.
- `tflite`: bench/models/edge-mobilenet, a uint8 MobileNetV2 at 224 x 224: the size and shape of
  the networks AutoML Edge exports (written by scripts/training/make_edge_fixture.py --mobilenet).
- `vertex`: a local stand-in endpoint, so its figures leave out what only the cloud adds: fetching
  credentials and the round trip to Vertex (typically 100 ms or more per image).

A cold start is a new process that imports the entrypoint, loads the model and makes the first
prediction; the parent times the whole process, the child reports the three parts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inspection import predicting
from inspection.backends import guard_beside
from inspection.labels import LabelMap
from inspection.model import classifiers, images
from inspection.settings import PredictSettings
from scripts.local.vertex import VertexStandIn
from scripts.training import sample_data, train_local

EDGE_MODEL = Path(__file__).parent / "models" / "edge-mobilenet" / "model.tflite"
ENDPOINT = "projects/p/locations/europe-west4/endpoints/1"

CHILD = """
import json, sys, time
started = time.perf_counter()
sys.path[:0] = [".", "functions/predict"]
import main
imported = time.perf_counter()
classifier = main._classifier()
loaded = time.perf_counter()
from inspection import predicting
from inspection.model import images
image = images.load(open(sys.argv[1], "rb").read(), main.SETTINGS.limits)
predicting.assess(image, classifier, main.SETTINGS.label_map)
done = time.perf_counter()
print(json.dumps({"import": imported - started, "load": loaded - imported, "first": done - loaded}))
"""


def per_image(backend: str, location: str, data: list[bytes]) -> dict[str, float]:
    """Wall and CPU milliseconds per image, decode included, after a warm-up."""
    classifier = classifiers.open_model(backend, location)
    label_map = LabelMap()
    for raw in data[:5]:
        predicting.assess(images.load(raw), classifier, label_map)
    wall, cpu = time.perf_counter(), time.process_time()
    for raw in data:
        predicting.assess(images.load(raw), classifier, label_map)
    count = len(data)
    return {
        f"{backend}_ms_per_image": round((time.perf_counter() - wall) * 1000 / count, 2),
        f"{backend}_cpu_ms_per_image": round((time.process_time() - cpu) * 1000 / count, 2),
    }


def cold_start(backend: str, env: dict[str, str], image: Path, runs: int) -> dict[str, float]:
    whole, parts = [], []
    clean = {
        k: v for k, v in os.environ.items() if k not in ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")
    }
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(image)],
            env={**clean, **env},
            check=True,
            capture_output=True,
            text=True,
        )
        whole.append(time.perf_counter() - started)
        parts.append(json.loads(done.stdout.strip().splitlines()[-1]))
    figures = {f"cold_start_s_{backend}": round(statistics.median(whole), 3)}
    for part in ("import", "load", "first"):
        figures[f"cold_start_{part}_s_{backend}"] = round(statistics.median(p[part] for p in parts), 3)
    return figures


def measure(images_count: int = 200, runs: int = 5) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sample_data.generate(root / "data", train=120, test=images_count, seed=5)
        model = root / "model.onnx"
        train_local.train(root / "data", model)
        data = [p.read_bytes() for p in sorted((root / "data" / "test").rglob("*.jpeg"))][:images_count]
        figures.update(per_image("onnx", str(model), data))
        figures.update(per_image("tflite", str(EDGE_MODEL), data))

        image = root / "first.jpeg"
        image.write_bytes(data[0])
        stub = VertexStandIn()
        try:
            # each behind the guard train_local fitted on the sample: a cold start reads it too
            guard = guard_beside(str(model))
            backends = {
                "vertex": {"backend": "vertex", "model": ENDPOINT, "vertex_api_endpoint": stub.url},
                "onnx": {"backend": "onnx", "model": str(model)},
                "tflite": {"backend": "tflite", "model": str(EDGE_MODEL)},
            }
            for backend, fields in backends.items():
                env = PredictSettings.environment(
                    predictions_topic="projects/p/topics/t",
                    prediction_bucket="b",
                    inbound_bucket="i",
                    input_guard=guard,
                    **fields,
                )
                figures.update(cold_start(backend, env, image, runs))
        finally:
            stub.stop()
    return figures
