"""End-to-end images per second through predict and move on the local stack (ONNX backend), next to
the bare classifier's images per second on the same images."""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inspection import storage
from inspection.model import images
from inspection.model.onnx_model import OnnxClassifier
from scripts.local.handlers import Spawned
from scripts.local.stack import LocalStack, StackConfig
from scripts.training import sample_data, train_local


def _images(count: int, root: Path) -> list[bytes]:
    sample_data.generate(root, train=120, test=count, seed=99)
    return [p.read_bytes() for p in sorted((root / "test").rglob("*.jpeg"))]


def bare_classifier(model: Path, data: list[bytes]) -> float:
    classifier = OnnxClassifier(str(model))
    for raw in data[:10]:  # warm up: first calls pay for allocations the steady state does not
        classifier.classify(images.load(raw))
    started = time.perf_counter()
    for raw in data:
        classifier.classify(images.load(raw))
    return len(data) / (time.perf_counter() - started)


def through_pipeline(model: Path, data: list[bytes]) -> tuple[float, float, int]:
    """(images per second, storage requests per routed image: the pipeline's own, the upload
    included, the bench's polling left out, and 1 when the functions ran in processes of their own
    as in Cloud Run, 0 when in threads of this one: without Google's Pub/Sub emulator)."""
    with LocalStack(StackConfig(model_path=model, handler_processes=None)) as stack:
        bucket = storage.client().bucket(stack.config.inbound_bucket)
        names = {f"bench/part-{i:05d}.jpeg" for i in range(len(data))}
        counted, polling = stack.gcs.requests, 0
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda item: bucket.blob(item[0]).upload_from_string(item[1]),
                    zip(sorted(names), data, strict=True),
                )
            )
        # Done is the inbound bucket empty: every move has copied its image and deleted the source.
        # One small page per poll; listing the prediction bucket each time instead (thousands of
        # objects) took a fifth of the process's GIL away from the handlers being measured.
        deadline = time.monotonic() + 60 + len(data)
        while time.monotonic() < deadline:
            before = stack.gcs.requests
            waiting = list(storage.client().list_blobs(bucket, max_results=1))
            polling += stack.gcs.requests - before
            if not waiting:
                rate = len(data) / (time.perf_counter() - started)
                requests = (stack.gcs.requests - counted - polling) / len(data)
                routed = {n for found in stack.routed().values() for n in found}
                if not names <= routed:
                    raise RuntimeError(f"inbound is empty but {len(names - routed)} image(s) were not routed")
                return rate, requests, int(isinstance(stack.move, Spawned))
            time.sleep(0.05)
        raise RuntimeError("the pipeline did not route every image in time")


def measure(sizes=(100, 1000)) -> dict[str, float]:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = _images(max(sizes), root / "data")
        model = root / "model.onnx"
        train_local.train(root / "data", model)
        for size in sizes:
            bare = bare_classifier(model, data[:size])
            pipeline, requests, processes = through_pipeline(model, data[:size])
            figures[f"pipeline_images_per_s_{size}"] = round(pipeline, 1)
            figures[f"pipeline_storage_requests_per_image_{size}"] = round(requests, 2)
            figures[f"classifier_images_per_s_{size}"] = round(bare, 1)
            figures[f"pipeline_to_classifier_ratio_{size}"] = round(pipeline / bare, 3)
            figures[f"pipeline_handler_processes_{size}"] = processes
    return figures
