"""Review latency on fake-gcs-server: the next image (oldest first) with 100 and 10,000 unclear
objects, and a decision; and, in a real browser at 1366×768, how long after a reviewer's key press
the next photo is painted and ready for the next key."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial

from inspection import review_index, storage
from review_app.decisions import Decisions
from review_app.unclear_queue import Queue
from scripts.local.gcs import FakeGcs, Observed

ROUND_TRIP_LATENCY_S = 0.05  # added to each storage request while round trips are counted


def _fill(bucket, count: int) -> None:
    def put(i: int) -> None:
        # As move routes them: the image, and its entry in the arrival-ordered queue index, with
        # arrival order unlike name order so that oldest-first is what is measured.
        routed_at = (datetime(2026, 11, 25, tzinfo=UTC) + timedelta(seconds=(i * 7919) % count)).isoformat()
        blob = bucket.blob(f"unclear/line-1/part-{i:05d}.jpeg")
        blob.metadata = {"predicted_label": "defect", "predicted_score": "0.700000", "routed_at": routed_at}
        blob.upload_from_string(b"x")
        review_index.add(review_index.Entry(bucket.name, blob.name, blob.generation, routed_at))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def _timed(gcs: FakeGcs, call) -> Observed:
    """What one call did: its wall time, its time with a storage request in flight, its requests."""
    seen = gcs.observe(call)
    assert seen.result is not None
    return seen


def _round_trips(gcs: FakeGcs, prepared, samples: int = 5) -> float:
    """Storage round trips one after another of the call `prepared()` gives, median of `samples`:
    what multiplies GCS's latency per request in the cloud, whatever the emulator's speed."""
    counts = []
    gcs.latency_s = ROUND_TRIP_LATENCY_S
    try:
        for _ in range(samples):
            seen = gcs.observe(prepared())
            assert seen.result is not None
            counts.append(seen.round_trips)
    finally:
        gcs.latency_s = 0.0
    return statistics.median(counts)


def _figures(key: str, samples: list[Observed]) -> dict[str, float]:
    """Wall time (median and p95), the time with a storage request in flight, our own side (the
    rest), and the storage requests. fake-gcs-server scans the whole bucket for most requests, so
    its share grows with the queue where GCS's does not (docs/measurements.md); our side and the
    request count are what this code controls."""
    wall, p95 = _percentiles([s.wall_s for s in samples])
    return {
        key % "ms_median": round(wall, 1),
        key % "ms_p95": round(p95, 1),
        key % "storage_ms_median": round(statistics.median(s.storage_s for s in samples) * 1000, 1),
        key % "own_ms_median": round(statistics.median(s.own_s for s in samples) * 1000, 1),
        key % "storage_requests": statistics.median(s.requests for s in samples),
    }


def measure(sizes=(100, 10_000), samples: int = 40, painted: int = 40) -> dict[str, float]:
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
            # each sample is a different reviewer: leases pile up as in real use
            nexts = [
                _timed(gcs, partial(queue.next_item, f"reviewer-{i}@example.com")) for i in range(samples)
            ]
            figures.update(_figures(f"review_next_%s_{size}", nexts))
            if size == sizes[0]:

                def next_one(queue=queue):
                    return partial(queue.next_item, f"reviewer-{time.perf_counter_ns()}@example.com")

                figures["review_next_round_trips"] = _round_trips(gcs, next_one)

                def deciding(queue=queue, decide=decide):
                    item = queue.next_item("round-trips@example.com")
                    return partial(decide, item.name, item.generation, "ok", "round-trips@example.com")

                figures["review_decide_round_trips"] = _round_trips(gcs, deciding)
            if size == sizes[-1]:
                decisions = []
                for _ in range(samples):
                    item = queue.next_item("decider@example.com")
                    decisions.append(
                        _timed(
                            gcs,
                            partial(decide, item.name, item.generation, "ok", "decider@example.com"),
                        )
                    )
                figures.update(_figures("review_decide_%s", decisions))
        # keyed by the full bench's largest size, whatever the sizes
        for part in ("ms_median", "own_ms_median"):
            figures[f"review_next_{part}_ratio_10000_to_100"] = round(
                figures[f"review_next_{part}_{sizes[-1]}"] / figures[f"review_next_{part}_{sizes[0]}"], 2
            )
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    figures.update(measure_painted(painted))
    return figures


# In the page: the moment of each decision's key press, and the moment the next photo is painted
# and the keys work again (the page enables its buttons only then: review.js, checkReady).
_MARKS = """
window.__marks = [];
document.addEventListener("keydown", (e) => {
  if (!e.repeat) window.__marks.push({ down: performance.now(), ready: null });
}, true);
document.addEventListener("DOMContentLoaded", () => {
  const ok = document.getElementById("btn-ok");
  new MutationObserver(() => {
    const last = window.__marks[window.__marks.length - 1];
    if (last && last.ready === null && !ok.disabled) last.ready = performance.now();
  }).observe(ok, { attributes: true, attributeFilter: ["disabled"] });
});
"""


def measure_painted(decisions: int = 40) -> dict[str, float]:
    """Next photo painted after the key press, p50 and p95, over `decisions` decisions in a row by
    one reviewer in Chromium at 1366×768 (the shift test's setting), against the local app on
    fake-gcs-server. Debian's chromium is needed; without it the figure is left out, loudly."""
    import os
    import shutil
    from io import BytesIO

    from PIL import Image, ImageDraw

    from review_app import create_app
    from scripts.local.handlers import Served

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        print("  SKIPPED: next-photo-painted needs /usr/bin/chromium (.ci/run installs it)")
        return {}
    from playwright.sync_api import expect, sync_playwright

    photo = Image.new("RGB", (512, 512), (128, 128, 128))
    ImageDraw.Draw(photo).ellipse((96, 96, 416, 416), outline=(40, 40, 40), width=12)
    data = BytesIO()
    photo.save(data, "JPEG", quality=90)
    with FakeGcs() as gcs:
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
        storage.client.cache_clear()
        bucket = storage.client().create_bucket("bench-painted")
        start = datetime(2026, 11, 25, 6, tzinfo=UTC)
        for n in range(decisions + 3):
            blob = bucket.blob(f"unclear/line-1/part-{n:03d}.jpeg")
            routed_at = (start + timedelta(seconds=n)).isoformat()
            blob.metadata = {
                "predicted_label": "defect",
                "predicted_score": "0.710000",
                "routed_at": routed_at,
            }
            blob.upload_from_string(data.getvalue(), content_type="image/jpeg")
            review_index.add(review_index.Entry(bucket.name, blob.name, blob.generation, routed_at))
        app = create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local", "UNDO_SECONDS": "3600"})
        served = Served(app, "bench-review")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1366, "height": 768})
                page.add_init_script(_MARKS)
                page.goto(served.url)
                for n in range(decisions):
                    expect(page.locator("#btn-ok")).to_be_enabled()
                    page.keyboard.press("o")
                    expect(page.locator("#session-count")).to_have_text(str(n + 1))
                expect(page.locator("#btn-ok")).to_be_enabled()
                marks = page.evaluate("window.__marks")
                browser.close()
        finally:
            served.stop()
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
    delays = [(m["ready"] - m["down"]) / 1000 for m in marks]
    median, p95 = _percentiles(delays)
    return {"review_next_painted_ms_p50": round(median, 1), "review_next_painted_ms_p95": round(p95, 1)}
