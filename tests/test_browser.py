"""A reviewer in a real headless Chromium: sees the image, decides with the keyboard, undoes it."""

from __future__ import annotations

import re
import threading
import time

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from review_app import create_app
from tests.helpers import image_bytes

pytestmark = pytest.mark.browser


@pytest.fixture
def served(make_bucket):
    bucket = make_bucket("prediction")
    for i, defect in enumerate(("crack", None)):
        blob = bucket.blob(f"unclear/line-1/part-{i}.jpeg")
        blob.metadata = {
            "predicted_label": "defect",
            "predicted_score": "0.710000",
            "routed_at": "2026-11-25T09:30:00+00:00",
        }
        blob.upload_from_string(image_bytes(defect=defect), content_type="image/jpeg")
    server = make_server(
        "127.0.0.1", 0, create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"}), threaded=True
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", bucket
    server.shutdown()


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def names(bucket, prefix):
    return sorted(b.name for b in bucket.list_blobs(prefix=prefix))


def test_a_reviewer_decides_with_the_keyboard_and_undoes(page, served, output_path):
    url, bucket = served
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    image = page.locator("#image")
    image.wait_for(state="visible")
    wait_for(lambda: image.evaluate("img => img.complete && img.naturalWidth") > 0)  # the signed URL loaded
    shown = page.locator("#name").inner_text()
    assert shown.startswith("line-1/part-")
    assert page.locator("#model").inner_text() == "defect (71%)"
    page.screenshot(path=f"{output_path}/review-before.png")

    page.keyboard.press("d")
    wait_for(lambda: names(bucket, "human_decided/") == [f"human_decided/defect/{shown}"])
    expect(page.locator("#status")).to_have_text(re.compile("^Saved"))
    assert page.locator("#session-count").inner_text() == "1"
    assert page.locator("#name").inner_text() != shown  # the next image is already there

    page.keyboard.press("u")
    wait_for(lambda: names(bucket, "human_decided/") == [])
    wait_for(lambda: f"unclear/{shown}" in names(bucket, "unclear/"))
    expect(page.locator("#status")).to_have_text(re.compile("^Undone"))
    assert page.locator("#name").inner_text() == shown
    page.screenshot(path=f"{output_path}/review-after-undo.png")
    assert errors == []


def test_the_page_works_with_buttons_and_shows_an_empty_queue(page, served):
    url, bucket = served
    page.goto(url)
    page.locator("#image").wait_for(state="visible")
    page.get_by_role("button", name="Ok").click()
    expect(page.locator("#session-count")).to_have_text("1")
    page.get_by_role("button", name="Ok").click()
    expect(page.locator("#session-count")).to_have_text("2")
    page.locator("#empty").wait_for(state="visible")
    assert "Nothing to review" in page.locator("#empty").inner_text()
    assert len(names(bucket, "human_decided/ok/")) == 2


def test_an_empty_queue_refreshes_by_itself(page, make_bucket):
    bucket = make_bucket("prediction")
    server = make_server(
        "127.0.0.1", 0, create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"}), threaded=True
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}")
        expect(page.locator("#empty")).to_be_visible()
        blob = bucket.blob("unclear/late/arrival.jpeg")
        blob.upload_from_string(image_bytes(), content_type="image/jpeg")
        expect(page.locator("#name")).to_have_text("late/arrival.jpeg", timeout=15_000)  # polls every 10 s
        expect(page.locator("#empty")).to_be_hidden()
    finally:
        server.shutdown()


SERVABLE = [
    "line 3/part #7?.jpeg",
    "line-3/ünïcödé 零件.jpeg",
    "line-3/100% sure.jpeg",
    "line-3/a..b.jpeg",
    "line-3/quote\"'.jpeg",
    "line-3/plus+and&amp;.jpeg",
]
UNSERVABLE = ["line-3/../up.jpeg", "line-3/./here.jpeg", "line-3/tab\there.jpeg", "line-3/back\\slash.jpeg"]


def test_every_name_the_pipeline_routes_to_a_person_can_be_seen_and_decided(page, small_model, tmp_path):
    """From upload to a decision in the browser: a name either reaches a reviewer and works, or is
    quarantined at the entrance (rejected/unsafe_name) with the original kept in metadata."""
    import os

    from inspection import storage
    from scripts.local.stack import LocalStack, StackConfig

    saved = dict(os.environ)
    config = StackConfig(model_path=small_model, use_emulator=False, extra_env={"CLASSIFIER_BACKEND": "none"})
    try:
        with LocalStack(config) as stack:
            inbound = storage.client().bucket(config.inbound_bucket)
            for name in SERVABLE + UNSERVABLE:
                inbound.blob(name).upload_from_string(image_bytes(), content_type="image/jpeg")
            wait_for(
                lambda: not stack.inbound_names() and len(stack.routed()["unclear"]) == len(SERVABLE), 60
            )
            assert len(stack.routed()["rejected"]) == len(UNSERVABLE)
            app = create_app({"PREDICTION_BUCKET": config.prediction_bucket, "REVIEW_AUTH": "local"})
            server = make_server("127.0.0.1", 0, app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{server.server_port}")
            seen = []
            image = page.locator("#image")
            for _ in SERVABLE:
                image.wait_for(state="visible")
                wait_for(lambda: image.evaluate("img => img.complete && img.naturalWidth") > 0)
                seen.append(page.locator("#name").inner_text())
                page.keyboard.press("o")
                expect(page.locator("#session-count")).to_have_text(str(len(seen)))
            page.locator("#empty").wait_for(state="visible")
            server.shutdown()
            decided = storage.client().bucket(config.prediction_bucket).list_blobs(prefix="human_decided/ok/")
            assert sorted(b.name.removeprefix("human_decided/ok/") for b in decided) == sorted(SERVABLE)
            assert sorted(seen) == sorted(SERVABLE)
            assert errors == []
    finally:
        os.environ.clear()
        os.environ.update(saved)
        storage.client.cache_clear()


def test_the_quality_report_shows_what_the_bucket_holds(page, small_model, tmp_path, output_path):
    """Per line and day, the report's images, defect rate, unclear share and rejections equal the
    prediction bucket's contents; the page needs nothing from the network."""
    import os
    from collections import Counter

    from inspection import storage
    from review_app.decisions import Decisions
    from review_app.unclear_queue import Queue
    from scripts import report
    from scripts.local.stack import LocalStack, StackConfig

    saved = dict(os.environ)
    config = StackConfig(model_path=small_model, use_emulator=False)
    uploads = {
        f"line-{n % 2 + 1}/part-{n}.jpeg": image_bytes(defect="crack" if n % 3 == 0 else None)
        for n in range(12)
    }
    uploads["line-2/notes.txt"] = b"not an image"
    try:
        with LocalStack(config) as stack:
            inbound = storage.client().bucket(config.inbound_bucket)
            for name, data in uploads.items():
                inbound.blob(name).upload_from_string(data)
            wait_for(
                lambda: not stack.inbound_names() and sum(map(len, stack.routed().values())) == len(uploads),
                60,
            )
            queue = Queue(config.prediction_bucket)
            item = queue.next_item("lead@example.com")
            if item is not None:  # a person decides one unclear image
                Decisions(queue).decide(item.name, item.generation, "defect", "lead@example.com")
            out = tmp_path / "report.html"
            report.main(["--prediction-bucket", config.prediction_bucket, "--out", str(out)])
            objects = [b.name for b in storage.client().list_blobs(config.prediction_bucket)]
    finally:
        os.environ.clear()
        os.environ.update(saved)
        storage.client.cache_clear()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())
    page.screenshot(path=f"{output_path}/quality-report.png", full_page=True)
    assert [r for r in requests if not r.startswith("file:")] == []

    def line_of(name: str) -> str:
        return name.split("/")[-2]

    folders = Counter(
        (name.split("/")[0], line_of(name))
        for name in objects
        if name.split("/")[0] in ("ok", "defect", "unclear", "rejected")
    )
    human = Counter(
        (name.split("/")[1], line_of(name)) for name in objects if name.startswith("human_decided/")
    )
    for line in ("line-1", "line-2"):
        row = page.locator(f"section[data-line='{line}'] tbody tr").first
        routed = sum(folders[(f, line)] for f in ("ok", "defect", "unclear"))
        decided_unclear = sum(human[(label, line)] for label in ("ok", "defect"))
        images = routed + folders[("rejected", line)] + decided_unclear
        assert int(row.locator(".images").inner_text()) == images
        assert int(row.locator(".rejected").inner_text()) == folders[("rejected", line)]
        known = folders[("ok", line)] + folders[("defect", line)] + decided_unclear
        rate = (folders[("defect", line)] + human[("defect", line)]) / known
        assert row.locator(".defect-rate").inner_text().startswith(f"{rate:.1%}")
        unclear = (folders[("unclear", line)] + decided_unclear) / (routed + decided_unclear)
        assert row.locator(".unclear").inner_text() == f"{unclear:.1%}"
        assert page.locator(f"section[data-line='{line}'] svg circle").count() == 1
