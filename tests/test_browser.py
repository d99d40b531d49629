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
    queue_images(
        bucket,
        {
            "line-1/part-0.jpeg": "2026-11-25T09:30:00+00:00",
            "line-1/part-1.jpeg": "2026-11-25T09:31:00+00:00",
        },
    )
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


def press_when_ready(page, key: str) -> None:
    """Press a decision key once the page says the photo is shown (the decision buttons enable only
    when it is painted and fully in view; keys pressed before that are ignored by design)."""
    expect(page.locator("#btn-ok")).to_be_enabled()
    page.keyboard.press(key)


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

    press_when_ready(page, "d")
    wait_for(lambda: names(bucket, "human_decided/") == [f"human_decided/defect/{shown}"])
    expect(page.locator("#status .text")).to_have_text(re.compile("^Saved"))
    assert page.locator("#session-count").inner_text() == "1"
    assert page.locator("#name").inner_text() != shown  # the next image is already there

    page.keyboard.press("u")
    wait_for(lambda: names(bucket, "human_decided/") == [])
    wait_for(lambda: f"unclear/{shown}" in names(bucket, "unclear/"))
    expect(page.locator("#status .text")).to_have_text(re.compile("^Undone"))
    assert page.locator("#name").inner_text() == shown
    page.screenshot(path=f"{output_path}/review-after-undo.png")
    assert errors == []


def test_the_page_works_with_buttons_and_shows_an_empty_queue(page, served):
    url, bucket = served
    page.goto(url)
    page.locator("#image").wait_for(state="visible")
    page.get_by_role("button", name="Ok letter O", exact=True).click()
    expect(page.locator("#session-count")).to_have_text("1")
    page.get_by_role("button", name="Ok letter O", exact=True).click()
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
        queue_images(bucket, {"late/arrival.jpeg": "2026-11-25T09:30:00+00:00"})
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
            assert len(stack.routed()["quarantine"]) == len(UNSERVABLE)
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
                press_when_ready(page, "o")
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
            assert stack.wait_for_records(len(uploads)) == len(uploads)
            report.main(["--records", str(stack.records_dir), "--out", str(out)])
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


# --- the reviewer's workbench ------------------------------------------------------------------------


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def queue_images(bucket, arrivals: dict[str, str]):
    """Unclear images as move routes them: the object, and its entry in the arrival-ordered index."""
    from inspection import review_index

    for index, (name, routed_at) in enumerate(arrivals.items()):
        blob = bucket.blob(f"unclear/{name}")
        blob.metadata = {"predicted_label": "defect", "predicted_score": "0.710000", "routed_at": routed_at}
        blob.upload_from_string(
            image_bytes(defect="crack" if index % 2 == 0 else None), content_type="image/jpeg"
        )
        review_index.add(review_index.Entry(bucket.name, blob.name, blob.generation, routed_at))


def test_reviewers_get_the_image_that_waited_longest_and_see_how_long(page, make_bucket):
    """Name order and arrival order differ on purpose: z-first arrived first."""
    bucket = make_bucket("prediction")
    queue_images(
        bucket,
        {
            "z-first.jpeg": "2026-11-25T06:00:00+00:00",
            "a-second.jpeg": "2026-11-25T07:00:00+00:00",
            "m-third.jpeg": "2026-11-25T08:00:00+00:00",
        },
    )
    server, url = serve(create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"}))
    page.goto(url)
    seen = []
    for _ in range(3):
        expect(page.locator("#image")).to_be_visible()
        seen.append(page.locator("#name").inner_text())
        assert " h " in page.locator("#waited").inner_text()
        press_when_ready(page, "o")
        expect(page.locator("#session-count")).to_have_text(str(len(seen)))
    assert seen == ["z-first.jpeg", "a-second.jpeg", "m-third.jpeg"]
    server.shutdown()


def test_the_loupe_and_contrast_and_no_upscaling_without_asking(page, make_bucket, output_path):
    bucket = make_bucket("prediction")
    queue_images(bucket, {"line-1/faint.jpeg": "2026-11-25T06:00:00+00:00"})
    server, url = serve(create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"}))
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(url)
    image = page.locator("#image")
    image.wait_for(state="visible")
    wait_for(lambda: image.evaluate("img => img.complete && img.naturalWidth") > 0)
    assert image.evaluate("img => img.getBoundingClientRect().width <= img.naturalWidth")  # never upscaled
    page.keyboard.press("l")
    loupe = page.locator("#loupe")
    expect(loupe).to_be_visible()
    assert "url(" in loupe.evaluate("el => getComputedStyle(el).backgroundImage")
    before = loupe.evaluate("el => el.style.backgroundPosition")
    page.keyboard.press("ArrowRight")
    assert loupe.evaluate("el => el.style.backgroundPosition") != before  # the keys move it
    page.keyboard.press("c")
    assert "contrast" in image.evaluate("img => getComputedStyle(img).filter")
    expect(page.locator("#btn-levels")).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=f"{output_path}/review-loupe.png")
    page.keyboard.press("f")
    assert image.evaluate("img => img.getBoundingClientRect().width > img.naturalWidth")  # asked for: fit
    server.shutdown()


def test_the_anomaly_map_lies_over_the_photo_and_the_reviewer_controls_it(
    page, make_bucket, anomaly_sample, output_path
):
    """Issue 25: an unclear image with the anomaly map predict kept shows it over the photo, at the
    photo's exact place and size (M toggles it, the slider sets its opacity, a legend explains it);
    the next image, without a map, looks as it always did."""
    from inspection import backends, layout, metadata, review_index
    from inspection.model import anomaly, images

    bucket = make_bucket("prediction")
    _, model, _ = anomaly_sample
    spotted = image_bytes(defect="blowhole")
    scored = backends.get("anomaly").open(str(model)).classify(images.load(spotted)).anomaly
    assert scored.score > 0.5
    heat_name = layout.heatmap("inbound", "line-1/spotted.jpeg", 1)
    bucket.blob(heat_name).upload_from_string(anomaly.heatmap_png(scored.heat), content_type="image/png")
    for name, data, extra, routed_at in (
        (
            "line-1/spotted.jpeg",
            spotted,
            {metadata.HEATMAP: heat_name, metadata.UNCLEAR_REASON: "anomalous"},
            "06",
        ),
        ("line-1/plain.jpeg", image_bytes(), {}, "07"),
    ):
        blob = bucket.blob(f"unclear/{name}")
        blob.metadata = {
            "predicted_label": "ok",
            "predicted_score": "0.970000",
            **extra,
            "routed_at": f"2026-11-25T{routed_at}:00:00+00:00",
        }
        blob.upload_from_string(data, content_type="image/jpeg")
        review_index.add(
            review_index.Entry(bucket.name, blob.name, blob.generation, blob.metadata["routed_at"])
        )
    server, url = serve(create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"}))
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(url)
    overlay, image = page.locator("#heatmap"), page.locator("#image")
    expect(page.locator("#name")).to_have_text("line-1/spotted.jpeg")
    expect(overlay).to_be_visible()
    wait_for(lambda: overlay.evaluate("img => img.complete && img.naturalWidth") > 0)
    wait_for(lambda: image.bounding_box() and overlay.bounding_box())
    wait_for(
        lambda: all(
            abs(image.bounding_box()[k] - overlay.bounding_box()[k]) <= 1
            for k in ("x", "y", "width", "height")
        )
    )
    expect(page.locator("#heat-legend")).to_be_visible()
    expect(page.locator("#why")).to_contain_text("unlike good parts")
    page.screenshot(path=f"{output_path}/review-heatmap.png")
    page.keyboard.press("m")
    expect(overlay).to_be_hidden()
    expect(page.locator("#btn-heatmap")).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("m")
    expect(overlay).to_be_visible()
    page.locator("#heat-opacity").fill("30")
    assert overlay.evaluate("img => getComputedStyle(img).opacity") == "0.3"
    page.keyboard.press("f")  # fitted to the screen, the map follows the photo
    wait_for(lambda: abs(image.bounding_box()["width"] - overlay.bounding_box()["width"]) <= 1)

    press_when_ready(page, "d")
    expect(page.locator("#name")).to_have_text("line-1/plain.jpeg")
    expect(overlay).to_be_hidden()
    expect(page.locator("#heat-legend")).to_be_hidden()
    expect(page.locator("#btn-heatmap")).to_be_disabled()
    page.keyboard.press("m")
    expect(overlay).to_be_hidden()
    server.shutdown()


def test_success_conflict_and_error_look_different_and_name_the_image(page, make_bucket):
    from inspection import claims, storage

    bucket = make_bucket("prediction")
    queue_images(
        bucket,
        {
            "line-1/a.jpeg": "2026-11-25T06:00:00+00:00",
            "line-1/b.jpeg": "2026-11-25T07:00:00+00:00",
            "line-1/c.jpeg": "2026-11-25T08:00:00+00:00",
        },
    )
    server, url = serve(create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"}))
    page.goto(url)
    status = page.locator("#status")
    expect(page.locator("#name")).to_have_text("line-1/a.jpeg")
    press_when_ready(page, "o")
    expect(status).to_have_class(re.compile("success"))
    expect(status.locator(".icon")).to_have_text("✓")
    expect(status.locator(".text")).to_contain_text("line-1/a.jpeg")

    # someone else decides b (say, after b's lease ran out) while it is on this screen
    b = bucket.get_blob("unclear/line-1/b.jpeg")
    claims.move(
        storage.ObjectRef(bucket.name, b.name, b.generation),
        storage.ObjectRef(bucket.name, "human_decided/defect/line-1/b.jpeg"),
        {"reviewer": "other@example.com", "human_label": "defect"},
        owner="other@example.com",
    )
    expect(page.locator("#name")).to_have_text("line-1/b.jpeg")
    press_when_ready(page, "o")
    expect(status).to_have_class(re.compile("conflict"))
    expect(status.locator(".icon")).to_have_text("⚠")
    expect(status.locator(".text")).to_contain_text(
        "line-1/b.jpeg: not saved: already decided by another reviewer, as defect"
    )

    # the decision to undo vanished: the server's reason is shown
    bucket.blob("human_decided/ok/line-1/a.jpeg").delete()
    page.keyboard.press("u")
    expect(status).to_have_class(re.compile("error"))
    expect(status.locator(".icon")).to_have_text("✕")
    expect(status.locator(".text")).to_contain_text(
        "line-1/a.jpeg: could not undo (no such image or decision)"
    )
    server.shutdown()


def test_undoing_the_third_last_decision_from_the_history(page, make_bucket):
    bucket = make_bucket("prediction")
    arrivals = {f"line-1/{n}.jpeg": f"2026-11-25T0{n}:00:00+00:00" for n in range(1, 5)}
    queue_images(bucket, arrivals)
    server, url = serve(create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"}))
    page.goto(url)
    for key, count in (("o", "1"), ("d", "2"), ("o", "3")):
        press_when_ready(page, key)
        expect(page.locator("#session-count")).to_have_text(count)
    expect(page.locator("#history li")).to_have_count(3)
    page.keyboard.press("h")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#status .text")).to_have_text(re.compile("^Undone: line-1/1.jpeg"))
    expect(page.locator("#name")).to_have_text("line-1/1.jpeg")
    expect(page.locator("#history li")).to_have_count(2)
    wait_for(
        lambda: (
            names(bucket, "human_decided/")
            == ["human_decided/defect/line-1/2.jpeg", "human_decided/ok/line-1/3.jpeg"]
        )
    )
    assert "unclear/line-1/1.jpeg" in names(bucket, "unclear/")
    server.shutdown()


def test_the_history_keeps_the_reviewers_place_while_it_refreshes(page, make_bucket):
    """The history redraws itself every few seconds (entries expire); a reviewer moving through it
    with the keyboard must not lose their place, or Enter undoes nothing, or the wrong decision."""
    bucket = make_bucket("prediction")
    queue_images(bucket, {f"line-1/{n}.jpeg": f"2026-11-25T0{n}:00:00+00:00" for n in range(1, 5)})
    server, url = serve(create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"}))
    page.goto(url)
    for key, count in (("o", "1"), ("d", "2"), ("o", "3")):
        press_when_ready(page, key)
        expect(page.locator("#session-count")).to_have_text(count)
    page.keyboard.press("h")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#history li").nth(1).locator("button")).to_be_focused()
    page.evaluate("document.querySelector('#history li').dataset.drawn = 'before'")
    wait_for(lambda: not page.evaluate("document.querySelector('#history li').dataset.drawn"), timeout=7)
    expect(page.locator("#history li").nth(1).locator("button")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#status .text")).to_have_text(re.compile("^Undone: line-1/1.jpeg"))
    server.shutdown()


def test_a_decision_made_while_the_next_photo_is_on_its_way_shows_it_ready_to_decide(page, make_bucket):
    """The reviewer decides the first photo before the next one has arrived (its prefetch is slow):
    the next photo still comes, and its buttons work. (They stayed disabled: the server answered
    the view request with the prefetched photo, which nothing then confirmed.)"""
    from flask import request

    bucket = make_bucket("prediction")
    queue_images(bucket, {f"line-1/{n}.jpeg": f"2026-11-25T0{n}:00:00+00:00" for n in range(1, 4)})
    app = create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local"})

    @app.before_request
    def slow_prefetch():
        if request.path == "/api/next" and b'"prefetch"' in request.get_data():
            time.sleep(1.0)

    server, url = serve(app)
    page.goto(url)
    press_when_ready(page, "o")
    expect(page.locator("#name")).to_have_text("line-1/2.jpeg")
    press_when_ready(page, "d")
    expect(page.locator("#name")).to_have_text("line-1/3.jpeg")
    press_when_ready(page, "o")
    expect(page.locator("#session-count")).to_have_text("3")
    expect(page.locator("#status .text")).to_have_text("Saved: line-1/3.jpeg is ok.")
    wait_for(
        lambda: (
            names(bucket, "human_decided/")
            == [
                "human_decided/defect/line-1/2.jpeg",
                "human_decided/ok/line-1/1.jpeg",
                "human_decided/ok/line-1/3.jpeg",
            ]
        )
    )
    server.shutdown()


def test_the_audit_view_for_an_auditor_and_not_for_a_reviewer(page, make_bucket, tmp_path):
    from inspection import layout, metadata
    from inspection.model import anomaly
    from review_app.decisions import Decisions
    from review_app.unclear_queue import Queue
    from scripts.local.sink import RecordSink
    from tests.review_helpers import AUDIENCE, FakeIap

    bucket = make_bucket("prediction")
    queue_images(bucket, {"line-1/Überprüfung.jpeg": "2026-11-25T06:00:00+00:00"})
    # the map predict kept for it (issue 25): the auditor sees it over the photo, as the reviewer could
    heat = __import__("numpy").full((64, 64), 0.2, "float32")
    heat[20:30, 40:50] = 0.9
    heat_name = layout.heatmap("inbound", "line-1/Überprüfung.jpeg", 7)
    bucket.blob(heat_name).upload_from_string(anomaly.heatmap_png(heat), content_type="image/png")
    unclear = bucket.get_blob("unclear/line-1/Überprüfung.jpeg")
    unclear.metadata = {**unclear.metadata, metadata.HEATMAP: heat_name}
    unclear.patch()
    queue = Queue(bucket.name)
    item = queue.next_item("alice@example.com")
    sink = RecordSink(tmp_path / "records").install()
    Decisions(queue).decide(item.name, item.generation, "defect", "alice@example.com")
    sink.uninstall()
    iap = FakeIap()
    app = create_app(
        {
            "PREDICTION_BUCKET": bucket.name,
            "IAP_AUDIENCE": AUDIENCE,
            "IAP_CERTS_URL": iap.certs_url,
            "ALLOWED_AUDITORS": "auditor@example.com",
            "RECORDS": str(tmp_path / "records"),
            "ROLE": "audit",
        }
    )
    server, url = serve(app)
    page.set_extra_http_headers({"x-goog-iap-jwt-assertion": iap.token("alice@example.com")})
    assert page.goto(url + "/audit").status == 403
    page.set_extra_http_headers({"x-goog-iap-jwt-assertion": iap.token("auditor@example.com")})
    response = page.goto(url + "/audit")
    assert response.status == 200 and response.headers["cache-control"] == "no-store"
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("alice@example.com")
    expect(row).to_contain_text("Überprüfung.jpeg")
    shown = row.locator("time").inner_text()
    assert "T" not in shown and "." not in shown.split()[-1]  # readable: no raw ISO, no microseconds
    page.select_option("select[name=agreement]", "overrule")
    page.click("text=Show")
    expect(page.locator("tbody tr")).to_have_count(0)
    page.select_option("select[name=agreement]", "")
    page.click("text=Show")
    with page.expect_download() as download:
        page.click("text=Download CSV")
    raw = tmp_path / "audit.csv"
    download.value.save_as(raw)
    data = raw.read_bytes()
    assert data.startswith("\ufeff".encode()) and "Überprüfung.jpeg" in data.decode("utf-8-sig")
    assert heat_name in data.decode("utf-8-sig")
    link = page.locator("text=photo and map")
    assert link.get_attribute("target") == "_blank"
    assert page.goto(url + link.get_attribute("href")).status == 200  # as the new tab opens it (IAP's header)
    photo = page
    for image in (photo.locator("figure img").first, photo.locator("#heatmap")):
        wait_for(lambda image=image: image.evaluate("img => img.complete && img.naturalWidth") > 0)
    assert photo.locator("#heatmap").bounding_box() == photo.locator("figure img").first.bounding_box()
    server.shutdown()
    iap.stop()
