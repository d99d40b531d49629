"""A reviewer's shift in a real headless Chromium, at the screen sizes plants use: many decisions in
a row, a held key, two tabs, a tab gone stale, a slow photo, a photo that fails to load, and two
reviewers at the end of the queue. The photos come from fake-gcs-server through signed URLs, as in
the cloud; slow and failing photos are made so by the storage proxy."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from werkzeug.serving import make_server

from inspection import review_index
from review_app import create_app
from tests.faults import hook
from tests.helpers import image_bytes
from tests.review_helpers import AUDIENCE, FakeIap

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 768}
DESKTOP = {"width": 1920, "height": 1080}


def queue_images(bucket, count: int, names=None, meta=None) -> list[str]:
    """Unclear images as move routes them, oldest first in the order given."""
    names = names or [f"line-1/part-{n:03d}.jpeg" for n in range(count)]
    start = datetime(2026, 11, 25, 6, tzinfo=UTC)
    data = image_bytes(defect="crack")
    for n, name in enumerate(names):
        blob = bucket.blob(f"unclear/{name}")
        routed_at = (start + timedelta(seconds=n)).isoformat()
        blob.metadata = {
            "predicted_label": "defect",
            "predicted_score": "0.710000",
            "routed_at": routed_at,
            **(meta or {}),
        }
        blob.upload_from_string(data, content_type="image/jpeg")
        review_index.add(review_index.Entry(bucket.name, blob.name, blob.generation, routed_at))
    return names


@pytest.fixture
def serve():
    servers = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def local_app(bucket):
    return create_app({"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local", "UNDO_SECONDS": "3600"})


def fully_in_view(page, selector: str) -> bool:
    return page.locator(selector).evaluate(
        """el => { const b = el.getBoundingClientRect();
                   return b.width > 0 && b.height > 0 && b.top >= 0 && b.left >= 0
                          && b.bottom <= window.innerHeight && b.right <= window.innerWidth; }"""
    )


def decided(bucket) -> list[str]:
    return sorted(b.name for b in bucket.list_blobs(prefix="human_decided/"))


@pytest.mark.parametrize(("size", "decisions"), [(LAPTOP, 40), (DESKTOP, 30)], ids=["1366x768", "1920x1080"])
def test_forty_decisions_in_a_row_keep_the_photo_and_the_buttons_in_view(
    page, make_bucket, serve, size, decisions, output_path
):
    """Before: the photo dropped 16 px for each entry of the undo history, and at 1366×768 it was
    off screen after 27 decisions while O and D kept deciding."""
    bucket = make_bucket("prediction")
    queue_images(bucket, decisions + 2)
    page.set_viewport_size(size)
    page.goto(serve(local_app(bucket)))
    for n in range(decisions):
        expect(page.locator("#btn-ok")).to_be_enabled()
        assert fully_in_view(page, "#image"), f"the photo is not fully in view before decision {n + 1}"
        for button in ("#btn-ok", "#btn-defect", "#btn-unusable"):
            assert fully_in_view(page, button), f"{button} is not in view before decision {n + 1}"
        page.keyboard.press("o" if n % 3 else "d")
        expect(page.locator("#session-count")).to_have_text(str(n + 1))
    expect(page.locator("#history li")).to_have_count(decisions)
    assert fully_in_view(page, "#image")
    page.screenshot(path=f"{output_path}/shift-{size['width']}x{size['height']}.png")
    assert len(decided(bucket)) == decisions


def test_holding_a_key_decides_one_photo(page, make_bucket, serve):
    """Before: holding O for half a second decided 7 images; only the first was ever on screen."""
    bucket = make_bucket("prediction")
    queue_images(bucket, 10)
    page.set_viewport_size(LAPTOP)
    page.goto(serve(local_app(bucket)))
    expect(page.locator("#btn-ok")).to_be_enabled()
    for _ in range(8):  # a held key: one keydown, then repeats while it stays down
        page.keyboard.down("o")
        page.wait_for_timeout(60)
    page.keyboard.up("o")
    expect(page.locator("#session-count")).to_have_text("1")
    page.wait_for_timeout(500)
    assert len(decided(bucket)) == 1


def test_keys_wait_for_a_slow_photo(page, make_bucket, serve, fake_gcs):
    """Before: O and D worked before the photo had loaded."""
    bucket = make_bucket("prediction")
    [slow, _] = queue_images(bucket, 2)
    released = threading.Event()

    def slow_photo(call, phase):
        if phase == "before" and call.signed and call.name == f"unclear/{slow}":
            released.wait(10)
        return None

    page.set_viewport_size(LAPTOP)
    with hook(fake_gcs, slow_photo):
        page.goto(serve(local_app(bucket)))
        expect(page.locator("#name")).to_have_text(slow)
        page.keyboard.press("o")
        page.keyboard.press("d")
        expect(page.locator("#btn-ok")).to_be_disabled()
        assert decided(bucket) == []
        released.set()
        expect(page.locator("#btn-ok")).to_be_enabled()
    page.keyboard.press("d")
    expect(page.locator("#session-count")).to_have_text("1")
    assert decided(bucket) == [f"human_decided/defect/{slow}"]


def test_a_photo_that_fails_to_load_says_so_and_can_be_retried_or_skipped(page, make_bucket, serve, fake_gcs):
    """Before: nothing was shown when the photo failed to load; the grey stage looked like a blank frame."""
    bucket = make_bucket("prediction")
    [broken, after] = queue_images(bucket, 2)
    failing = {"on": True}

    def fail(call, phase):
        if phase == "before" and failing["on"] and call.signed and call.name == f"unclear/{broken}":
            return 500, b"injected"
        return None

    page.set_viewport_size(LAPTOP)
    with hook(fake_gcs, fail):
        page.goto(serve(local_app(bucket)))
        expect(page.locator("#failed")).to_be_visible()
        expect(page.locator("#failed")).to_contain_text("did not load")
        page.keyboard.press("o")
        assert decided(bucket) == []
        failing["on"] = False
        page.keyboard.press("r")  # try again
        expect(page.locator("#btn-ok")).to_be_enabled()
        expect(page.locator("#failed")).to_be_hidden()
    page.keyboard.press("s")  # and skipping works too
    expect(page.locator("#name")).to_have_text(after)


def test_two_tabs_get_different_photos_and_each_decides_its_own(context, make_bucket, serve):
    bucket = make_bucket("prediction")
    queue_images(bucket, 4)
    url = serve(local_app(bucket))
    first, second = context.new_page(), context.new_page()
    for tab in (first, second):
        tab.set_viewport_size(LAPTOP)
        tab.goto(url)
        expect(tab.locator("#btn-ok")).to_be_enabled()
    one, two = first.locator("#name").inner_text(), second.locator("#name").inner_text()
    assert one != two
    first.keyboard.press("o")
    second.keyboard.press("d")
    expect(first.locator("#status")).to_have_class(re.compile("success"))
    expect(second.locator("#status")).to_have_class(re.compile("success"))
    assert decided(bucket) == sorted([f"human_decided/ok/{one}", f"human_decided/defect/{two}"])


def test_a_tab_that_lost_its_photo_says_so_and_saves_nothing(page, make_bucket, serve):
    """A stale tab (its hold lapsed while the laptop slept, and the photo went to someone else):
    before, it could say "Saved" for a decision that was not stored."""
    from review_app.unclear_queue import Queue

    bucket = make_bucket("prediction")
    [first, *_] = queue_images(bucket, 3)
    page.set_viewport_size(LAPTOP)
    page.goto(serve(local_app(bucket)))
    expect(page.locator("#btn-ok")).to_be_enabled()
    expect(page.locator("#name")).to_have_text(first)
    queue = Queue(bucket.name)
    lease = queue.leases.of(f"unclear/{first}")
    queue.leases.drop(lease)  # the hold ran out
    other = queue.next_item("bob@example.com", "elsewhere")
    assert other.name == f"unclear/{first}"
    page.keyboard.press("o")
    status = page.locator("#status")
    expect(status).to_have_class(re.compile("conflict"))
    expect(status.locator(".text")).to_contain_text(
        f"{first}: not saved: another reviewer has this image on screen"
    )
    assert decided(bucket) == []


def test_why_a_person_decides_is_said_in_the_plants_words(page, make_bucket, serve):
    """Before: a blank frame routed as unusual_input said "Model said ok (100%)"."""
    bucket = make_bucket("prediction")
    queue_images(
        bucket,
        1,
        ["line-1/blank.jpeg"],
        {
            "unclear_reason": "unusual_input",
            "unclear_detail": "contrast 0.4 is outside the training range [20, 60]",
        },
    )
    page.set_viewport_size(LAPTOP)
    page.goto(serve(local_app(bucket)))
    expect(page.locator("#why")).to_contain_text("unlike the photos the model learned from (contrast)")
    expect(page.locator("#model")).to_contain_text("not trusted")
    expect(page.locator("#btn-unusable")).to_be_enabled()
    page.keyboard.press("n")
    expect(page.locator("#status .text")).to_contain_text("is not a part / unusable")
    assert decided(bucket) == ["human_decided/unusable/line-1/blank.jpeg"]


def test_a_very_long_name_keeps_the_buttons_in_view_and_the_audit_page_narrow(
    page, make_bucket, serve, tmp_path
):
    """Before: a 1,000-character name pushed the buttons below the fold and made the audit page
    28,527 px wide."""
    from review_app.decisions import Decisions
    from review_app.unclear_queue import Queue
    from scripts.local.sink import RecordSink

    bucket = make_bucket("prediction")
    long_name = "line-1/" + "x" * 960 + ".jpeg"
    queue_images(bucket, 2, [long_name, "line-1/short.jpeg"])
    page.set_viewport_size(LAPTOP)
    page.goto(serve(local_app(bucket)))
    expect(page.locator("#btn-ok")).to_be_enabled()
    for selector in ("#image", "#btn-ok", "#btn-defect"):
        assert fully_in_view(page, selector), selector
    sink = RecordSink(tmp_path / "records").install()
    queue = Queue(bucket.name)
    item = queue.next_item("bob@example.com", "t")
    Decisions(queue).decide(item.name, item.generation, "ok", "bob@example.com", "t")
    sink.uninstall()
    audit = create_app(
        {"PREDICTION_BUCKET": bucket.name, "REVIEW_AUTH": "local", "RECORDS": str(tmp_path / "records")}
    )
    page.goto(serve(audit) + "/audit")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"] + 1


def test_at_the_end_of_the_queue_nobody_waits_while_a_photo_sits_in_a_prefetch(browser, make_bucket, serve):
    """Two reviewers, two photos left. The first reviewer's page shows one and prefetches the other;
    the second reviewer, arriving, gets the prefetched one instead of "Nothing to review"."""
    bucket = make_bucket("prediction")
    [first, last] = queue_images(bucket, 2)
    iap = FakeIap()
    app = create_app(
        {
            "PREDICTION_BUCKET": bucket.name,
            "IAP_AUDIENCE": AUDIENCE,
            "IAP_CERTS_URL": iap.certs_url,
            "ROLE": "review",
            "ALLOWED_REVIEWERS": "*",
        }
    )
    url = serve(app)
    pages = []
    for email in ("alice@example.com", "bob@example.com"):
        context = browser.new_context(
            viewport=LAPTOP, extra_http_headers={"x-goog-iap-jwt-assertion": iap.token(email)}
        )
        pages.append(context.new_page())
    alice, bob = pages
    alice.goto(url)
    expect(alice.locator("#name")).to_have_text(first)
    deadline = time.monotonic() + 10
    while not any(
        b.name.startswith("review/leases/") for b in list(bucket.list_blobs(prefix="review/leases/"))[1:]
    ):
        assert time.monotonic() < deadline, "alice's page never prefetched"
        time.sleep(0.05)
    bob.goto(url)
    expect(bob.locator("#name")).to_have_text(last)
    expect(bob.locator("#btn-ok")).to_be_enabled()
    alice.keyboard.press("o")
    expect(alice.locator("#empty")).to_be_visible()
    bob.keyboard.press("d")
    expect(bob.locator("#empty")).to_be_visible()
    # The page moves on at once and lists each decision once the store has it. The status line
    # shows only the latest message: on alice's page "Saved" may be followed by the true news that
    # bob has the photo she had prefetched, so the history is what says each decision was stored.
    for page, name in ((alice, first), (bob, last)):
        expect(page.locator("#history")).to_contain_text(name)
    assert decided(bucket) == sorted([f"human_decided/ok/{first}", f"human_decided/defect/{last}"])
    for p in pages:
        p.context.close()
    iap.stop()


def test_every_key_pressed_right_after_the_buttons_enable_decides_or_says_why(page, make_bucket, serve):
    """Issue 34, finding 5: with keys 0-150 ms after the buttons enabled, 43 of 330 decision keys did
    nothing and said nothing. Now a key either decides the photo on screen or the status line says
    why it did not ("Not decided: …"); none is silently dropped."""
    import random

    rng = random.Random(34)
    bucket = make_bucket("prediction")
    queue_images(bucket, 45)
    page.set_viewport_size(LAPTOP)
    page.goto(serve(local_app(bucket)))
    silent, told, count = [], 0, 0
    for press in range(80):
        if count >= 40:
            break
        if press % 4:  # most keys come 0-150 ms after the buttons enable; every fourth, at once
            expect(page.locator("#btn-ok")).to_be_enabled()
            page.wait_for_timeout(rng.uniform(0, 150))
        page.evaluate("document.querySelector('#status .text').textContent = ''")
        page.keyboard.press("o")
        try:
            outcome = page.wait_for_function(
                """count => {
                     const now = Number(document.querySelector("#session-count").textContent);
                     const text = document.querySelector("#status .text").textContent;
                     if (now > count) return "decided";
                     if (text.startsWith("Not decided")) return "told";
                     return false; }""",
                arg=count,
                timeout=3000,
            ).json_value()
        except PlaywrightTimeout:
            outcome = "nothing"
        if outcome == "decided":
            count += 1
            expect(page.locator("#status .text")).not_to_have_text("")  # and it says how it went
        elif outcome == "told":
            told += 1
        else:
            silent.append(press)
    assert silent == [], f"{len(silent)} key presses did nothing and said nothing"
    assert count == 40 and len(decided(bucket)) == 40  # and every other press was told why: `told`


def test_a_page_opened_after_two_crashed_tabs_takes_their_photos_back(page, make_bucket, serve):
    """Issue 34, finding 2: two crashed tabs held 4 photos, and a fresh page got 409 "decide or skip
    them first", could do neither and never retried. Now it says the reviewer may take them back,
    shows the button that does it, and the photo comes."""
    from review_app.auth import LOCAL_REVIEWER
    from review_app.unclear_queue import Queue

    bucket = make_bucket("prediction")
    queue_images(bucket, 6)
    queue = Queue(bucket.name)
    for crashed in ("crashed-tab-1", "crashed-tab-2"):  # each loaded its photo and the next, then died
        shown = queue.next_item(LOCAL_REVIEWER, crashed)
        queue.next_item(LOCAL_REVIEWER, crashed, "prefetch", frozenset({shown.name}))
    page.set_viewport_size(LAPTOP)
    page.goto(serve(local_app(bucket)))
    expect(page.locator("#status .text")).to_contain_text("take their images back here")
    reclaim = page.get_by_role("button", name=re.compile("Take back the photos my other tabs hold"))
    expect(reclaim).to_be_visible()
    reclaim.click()
    expect(page.locator("#btn-ok")).to_be_enabled()
    expect(reclaim).to_be_hidden()
    page.keyboard.press("d")
    expect(page.locator("#session-count")).to_have_text("1")
    expect(page.locator("#status .text")).to_have_text(re.compile("^Saved"))
    assert len(decided(bucket)) == 1


def test_a_photo_whose_name_no_decision_could_carry_is_never_served(page, make_bucket, serve):
    """Issue 34, finding 3: names with bidirectional controls, in unclear/ from before quarantine,
    got 400 on decide, skip and show; the status line flipped between two of them about 6,000
    times in a 4-minute shift. The queue now quarantines them where it finds them."""
    bucket = make_bucket("prediction")
    queue_images(
        bucket, 0, names=["line-1/\u202egepj.1-trap", "line-1/\u2066odd\u2069.jpeg", "line-1/fine.jpeg"]
    )
    page.set_viewport_size(LAPTOP)
    page.goto(serve(local_app(bucket)))
    expect(page.locator("#name")).to_have_text("line-1/fine.jpeg")
    expect(page.locator("#btn-ok")).to_be_enabled()
    page.keyboard.press("o")
    expect(page.locator("#session-count")).to_have_text("1")
    page.locator("#empty").wait_for(state="visible")
    assert decided(bucket) == ["human_decided/ok/line-1/fine.jpeg"]
    assert len(list(bucket.list_blobs(prefix="quarantine/"))) == 2
