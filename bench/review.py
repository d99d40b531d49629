"""Review latency on fake-gcs-server: the next image (oldest first) with 100 and 10,000 unclear
objects, and a decision."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from inspection import review_index, storage
from review_app.decisions import Decisions
from review_app.unclear_queue import Queue
from scripts.local.gcs import FakeGcs


def _fill(bucket, count: int) -> None:
    def put(i: int) -> None:
        # As move routes them: the image, and its entry in the arrival-ordered queue index, with
        # arrival order unlike name order so that oldest-first is what is measured.
        routed_at = (datetime(2026, 11, 25, tzinfo=UTC) + timedelta(seconds=(i * 7919) % count)).isoformat()
        blob = bucket.blob(f"unclear/line-1/part-{i:05d}.jpeg")
        blob.metadata = {"predicted_label": "defect", "predicted_score": "0.700000", "routed_at": routed_at}
        blob.upload_from_string(b"x")
        review_index.add(bucket.name, blob.name, blob.generation, routed_at)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def measure(sizes=(100, 10_000), samples: int = 40) -> dict[str, float]:
    import os

    figures = {}
    with FakeGcs() as gcs:
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
        storage.client.cache_clear()
        for size in sizes:
            bucket = storage.client().create_bucket(f"bench-review-{size}")
            _fill(bucket, size)
            queue = Queue(bucket.name)
            decide = Decisions(queue).decide
            timings, calls = [], []
            for i in range(samples):  # each sample is a different reviewer: leases pile up as in real use
                before = gcs.requests
                started = time.perf_counter()
                assert queue.next_item(f"reviewer-{i}@example.com") is not None
                timings.append(time.perf_counter() - started)
                calls.append(gcs.requests - before)
            figures[f"review_next_storage_requests_{size}"] = statistics.median(calls)
            median, p95 = _percentiles(timings)
            figures[f"review_next_ms_median_{size}"] = round(median, 1)
            figures[f"review_next_ms_p95_{size}"] = round(p95, 1)
            if size == sizes[-1]:
                decisions = []
                for _ in range(samples):
                    item = queue.next_item("decider@example.com")
                    started = time.perf_counter()
                    decide(item.name, item.generation, "ok", "decider@example.com")
                    decisions.append(time.perf_counter() - started)
                median, p95 = _percentiles(decisions)
                figures["review_decide_ms_median"] = round(median, 1)
                figures["review_decide_ms_p95"] = round(p95, 1)
        figures["review_next_median_ratio_10000_to_100"] = round(
            figures[f"review_next_ms_median_{sizes[-1]}"] / figures[f"review_next_ms_median_{sizes[0]}"], 2
        )
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    return figures
