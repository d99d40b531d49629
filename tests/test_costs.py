"""The cost tables count what the pipeline does: each step of an image runs through the real
handlers against the storage emulator behind its proxy, and every storage request, log line and
message it makes is counted here and compared with scripts/costs.py."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import pytest
import requests
from cloudevents.conversion import to_binary

from review_app import create_app
from scripts import costs
from tests.helpers import image_bytes, logged, make_function, storage_event
from tests.review_helpers import Reviewer

pytestmark = pytest.mark.emulator


@pytest.fixture
def measured(fake_gcs, make_bucket, topic, deployed_env, caplog):
    """{step: (storage requests by method, bytes of log lines, record lines)} for one image routed
    automatically, one routed to unclear, and one decision as the page makes it."""
    inbound, predicted = make_bucket("inbound", versioned=True), make_bucket("prediction", versioned=True)
    deployed_env.pipeline(inbound, predicted, topic)
    predict, move = make_function("predict_image", "cloudevent"), make_function("move_image", "http")
    steps, messages = {}, []

    def step(name: str, run) -> None:
        caplog.clear()
        fake_gcs.trace = []
        run()
        lines = logged(caplog)
        steps[name] = (
            Counter(call.method for call in fake_gcs.trace),
            sum(len(json.dumps(line)) for line in lines),
            [line for line in lines if line.get("record")],
        )
        fake_gcs.trace = None

    def through(name: str, confident: bool) -> None:
        blob = inbound.blob(name)
        step("upload", lambda: blob.upload_from_string(image_bytes()))
        headers, body = to_binary(storage_event(blob))
        step("predict", lambda: predict.post("/", headers=headers, data=body))
        [message] = topic.read()
        messages.append(message)
        data = json.loads(message.data)
        if confident:  # as a model sure of its answer would have said
            data.update(label="ok", score=0.99, scores={"ok": 0.99, "defect": 0.01}, unclear_reason="")
        pushed = {
            "message": {"data": base64.b64encode(json.dumps(data).encode()).decode(), "messageId": name}
        }
        step("move" if confident else "move, unclear", lambda: move.post("/", json=pushed))

    through("line-1/part-1.jpeg", confident=True)
    through("line-1/part-2.jpeg", confident=False)
    through("line-1/part-3.jpeg", confident=False)
    reviewer = Reviewer(
        create_app({"PREDICTION_BUCKET": predicted.name, "REVIEW_AUTH": "local"}).test_client()
    )
    current = reviewer.next()  # the page opens: the first photo

    def one_decision() -> None:  # in steady state: lease the next ahead, show it, fetch it, decide
        upcoming = reviewer.next(exclude=(current["name"],), kind="prefetch")
        reviewer.post("/api/show", {"name": upcoming["name"], "generation": upcoming["generation"]})
        requests.get(upcoming["url"], timeout=10)
        assert reviewer.decide(current, "defect").status_code == 200

    step("review", one_decision)
    return steps, messages


def test_the_storage_requests_per_image_are_the_ones_the_cost_table_counts(measured):
    steps, _ = measured
    assert {name: dict(requests_) for name, (requests_, _, _) in steps.items()} == costs.STORAGE


def test_a_routed_image_makes_no_storage_write_beyond_its_copy_and_its_claim(measured):
    """Issue 24: the records are log lines, not objects. Move writes the claim (made, then done)
    and the copy; nothing else. An unclear image adds its entry in the reviewers' queue."""
    steps, _ = measured
    requests_, _, _ = steps["move"]
    claims, copies = 2, 1
    assert requests_["objects.insert"] + requests_["objects.rewrite"] - claims - copies == 0
    assert steps["move, unclear"][0]["objects.insert"] - requests_["objects.insert"] == 1


def test_the_log_and_message_bytes_are_the_ones_the_cost_table_counts(measured):
    steps, messages = measured
    for name, (_, size, _) in steps.items():
        if name in costs.LOG_BYTES:
            assert size <= costs.LOG_BYTES[name] < size + 300, (name, size)
    routed = [line for _, (_, _, lines) in steps.items() for line in lines if line["event"] == "routed"]
    decided = [line for _, (_, _, lines) in steps.items() for line in lines if line["event"] == "decided"]
    for event, lines in (("routed", routed), ("decided", decided)):
        size = max(len(json.dumps(line)) for line in lines)
        assert size <= costs.RECORD_BYTES[event] < size + 300, (event, size)
    for message in messages:
        billed = len(message.data) + sum(len(k) + len(v) for k, v in message.attributes.items()) + 20
        assert billed <= costs.PUBSUB_MIN_BYTES, "a prediction message outgrew Pub/Sub's minimum"


def test_the_deploy_guide_shows_the_tables_the_cost_model_prints():
    guide = Path("docs/deploy.md").read_text()
    block = guide.split(costs.BEGIN, 1)[1].split(costs.END, 1)[0]
    assert block.strip() == costs.render().strip(), "stale: python -m scripts.costs, into docs/deploy.md"


def test_every_price_names_its_page_and_the_day_it_was_read():
    for name, price in costs.PRICES.items():
        assert price.source.startswith("https://cloud.google.com/"), name
        assert len(price.read) == 10 and price.read.startswith("2026-"), name
