"""Every image generation ends in exactly one place, under the races, outages and bad input we know.

Each test replays one way an adversary lost or stranded images before; all run the real handlers
under functions-framework against fake-gcs-server (behind the enforcing proxy) and Pub/Sub.
"""

from __future__ import annotations

import base64
import json
import threading

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from inspection import layout, storage
from tests.faults import between
from tests.helpers import image_bytes, logged, make_function, prediction, push_body, storage_event


@pytest.fixture
def env(deployed_env, make_bucket, topic):
    inbound, predicted = make_bucket("inbound", versioned=True), make_bucket("prediction", versioned=True)
    deployed_env.pipeline(inbound, predicted, topic, threshold=0.8)
    return inbound, predicted, topic


def images(bucket) -> list[str]:
    return sorted(b.name for b in bucket.list_blobs() if not b.name.startswith(layout.BOOKKEEPING))


def move_with(monkeypatch, threshold: str):
    monkeypatch.setenv("PREDICTION_THRESHOLD", threshold)
    return make_function("move_image", "http")


def test_two_deliveries_that_choose_different_folders_end_in_one(env, monkeypatch, fake_gcs):
    """A threshold rollout: one revision says ok/, the other unclear/, for the same generation,
    the second arriving between the first's copy and its delete."""
    inbound, predicted, _ = env
    blob = inbound.blob("line-1/part.jpeg")
    blob.upload_from_string(b"bytes")
    body = push_body(prediction(inbound.name, blob.name, blob.generation, "ok", 0.85))
    old, new = move_with(monkeypatch, "0.8"), move_with(monkeypatch, "0.9")

    def first_deletes_the_source(call):
        return call.method == "objects.delete" and call.bucket == inbound.name

    with between(fake_gcs, first_deletes_the_source, lambda: new.post("/", json=body).status_code) as answers:
        assert old.post("/", json=body).status_code == 204
    assert answers == [204]
    assert images(predicted) == ["ok/line-1/part.jpeg"]
    assert images(inbound) == []


def test_concurrent_deliveries_with_different_thresholds_end_in_one_folder(env, monkeypatch):
    inbound, predicted, _ = env
    apps = [move_with(monkeypatch, t) for t in ("0.8", "0.9", "0.8", "0.9")]
    for index in range(5):
        blob = inbound.blob(f"race-{index}.jpeg")
        blob.upload_from_string(b"bytes")
        body = push_body(prediction(inbound.name, blob.name, blob.generation, "ok", 0.85))
        start = threading.Barrier(len(apps))
        codes = []

        def deliver(app, body=body, start=start, codes=codes):
            start.wait()
            codes.append(app.post("/", json=body).status_code)

        threads = [threading.Thread(target=deliver, args=(app,)) for app in apps]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert codes == [204] * len(apps)
        placed = [n for n in images(predicted) if n.endswith(f"race-{index}.jpeg")]
        assert len(placed) == 1, placed


def test_two_uploads_of_one_name_back_to_back_are_two_routed_images(env, monkeypatch):
    """A camera that uploads snapshot.jpg over and over: the first photo used to be lost."""
    inbound, predicted, topic = env
    predict = make_function("predict_image", "cloudevent")
    events = []
    for content in (image_bytes(), image_bytes(defect="crack")):
        blob = inbound.blob("line-2/snapshot.jpeg")
        blob.upload_from_string(content)
        events.append(storage_event(blob))
    for event in events:  # both events arrive after both uploads
        headers, data = to_binary(event)
        assert predict.post("/", headers=headers, data=data).status_code == 200
    move = make_function("move_image", "http")
    messages = topic.read(expect=2)
    for message in messages:
        envelope = {"message": {"data": base64.b64encode(message.data).decode(), "messageId": "1"}}
        assert move.post("/", json=envelope).status_code == 204
    generations = sorted(e.data["generation"] for e in events)
    assert images(predicted) == [
        "unclear/line-2/snapshot.jpeg",
        f"unclear/line-2/snapshot__g{generations[1]}.jpeg",
    ]
    assert {predicted.get_blob(n).metadata["source_generation"] for n in images(predicted)} == set(
        generations
    )
    assert list(storage.client().list_blobs(inbound, versions=True)) == []


def test_a_message_naming_another_bucket_as_its_source_moves_nothing(env, monkeypatch, caplog):
    """It once moved a reviewer's decision out of human_decided/ and dropped its metadata."""
    _inbound, predicted, topic = env
    decision = predicted.blob("human_decided/ok/part.jpeg")
    decision.metadata = {"reviewer": "alice@example.com"}
    decision.upload_from_string(b"decided")
    move = make_function("move_image", "http")
    body = push_body(prediction(predicted.name, decision.name, decision.generation, "defect", 0.99))
    assert move.post("/", json=body).status_code == 204
    assert images(predicted) == ["human_decided/ok/part.jpeg"]
    [held] = topic.read()
    assert "not the inbound bucket" in held.attributes["reason"]
    [line] = logged(caplog, "malformed prediction message; sent to dead letter")
    assert "not the inbound bucket" in line["reason"]


MALFORMED_BODIES = [
    ("data is a number", {"message": {"data": 123}}),
    ("schema is a list", {"message": {"data": "SCHEMA_LIST"}}),
    ("schema is null", {"message": {"data": "SCHEMA_NULL"}}),
    ("nested far too deep", {"message": {"data": "DEEP"}}),
    ("message is a string", {"message": "hello"}),
    ("body is a list", [1, 2, 3]),
]


@pytest.mark.parametrize(("case", "body"), MALFORMED_BODIES, ids=[c for c, _ in MALFORMED_BODIES])
def test_every_malformed_body_is_dead_lettered_and_acknowledged(env, case, body, caplog):
    inbound, _, topic = env
    encoded = {
        "SCHEMA_LIST": {**prediction(inbound.name, "x.jpg", 1), "schema": [1]},
        "SCHEMA_NULL": {**prediction(inbound.name, "x.jpg", 1), "schema": None},
    }
    if isinstance(body, dict) and isinstance(body.get("message"), dict):
        data = body["message"]["data"]
        if data in encoded:
            body = push_body(encoded[data])
        elif data == "DEEP":
            body = push_body(("[" * 100_000 + "]" * 100_000).encode())
    move = make_function("move_image", "http")
    response = move.post("/", json=body)
    assert response.status_code == 204
    [held] = topic.read()
    assert held.attributes["source"] == "move_image"
    [line] = logged(caplog, "malformed prediction message; sent to dead letter")
    assert line["severity"] == "ERROR" and line["payload"]


@pytest.mark.parametrize(
    ("headers", "data"),
    [
        (
            {
                "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "//pubsub",
                "content-type": "application/json",
            },
            b"",
        ),
        ({"content-type": "application/cloudevents+json"}, b"{not json"),
    ],
    ids=["ce-type with an empty body", "cloudevent content type with invalid JSON"],
)
def test_malformed_cloudevents_are_dead_lettered_not_answered_with_500(env, headers, data):
    _, _, topic = env
    move = make_function("move_image", "http")
    assert move.post("/", headers=headers, data=data).status_code == 204
    assert len(topic.read()) == 1


@pytest.mark.parametrize(
    "change", [{"generation": "abc"}, {"size": "big"}, {"name": 7}, {"generation": None}], ids=str
)
def test_a_malformed_storage_event_is_acknowledged_with_one_error_line(env, change, caplog):
    inbound, _, topic = env
    predict = make_function("predict_image", "cloudevent")
    blob = inbound.blob("odd.jpeg")
    blob.upload_from_string(image_bytes())
    event = storage_event(blob)
    event = CloudEvent(event.get_attributes(), {**event.data, **change})
    headers, data = to_binary(event)
    assert predict.post("/", headers=headers, data=data).status_code == 200
    [line] = logged(caplog, "malformed storage event; acknowledged")
    assert line["severity"] == "ERROR" and line["reason"]
    assert topic.read(expect=1, timeout=1) == []


UNSERVABLE = [
    "tab\there.jpg",
    "back\\slash.jpg",
    "del\x7f.jpg",
    "line-1/../up.jpg",
    "line-1/./here.jpg",
    "../x.jpg",
    "line-9/\u202egepj.7-trap",  # displays as line-9/part-7.jpeg
    "line-1/" + "a" * (layout.MAX_SERVABLE_NAME_BYTES - 7 + 1),  # one byte too long to carry
]


@pytest.mark.parametrize("name", UNSERVABLE, ids=repr)
def test_a_name_no_reviewer_could_open_is_quarantined_under_a_safe_name(env, name, caplog):
    """GCS accepts these names, but the review app could never show or decide them."""
    inbound, predicted, _topic = env
    predict = make_function("predict_image", "cloudevent")
    blob = inbound.blob(name)
    blob.upload_from_string(image_bytes())
    headers, data = to_binary(storage_event(blob))
    assert predict.post("/", headers=headers, data=data).status_code == 200
    [kept] = images(predicted)
    assert kept.startswith("quarantine/") and all(32 < ord(ch) < 127 for ch in kept)
    meta = predicted.get_blob(kept).metadata
    assert meta["rejected_reason"] == "unsafe_name"
    assert json.loads(f'"{meta["original_name"]}"') == name
    assert images(inbound) == []
    [line] = logged(caplog, "rejected")
    assert line["severity"] == "ERROR" and line["reason"] == "unsafe_name"


def predict_and_move(inbound, topic, name: str, data: bytes | None = None) -> None:
    """One upload through the real predict and move handlers."""
    blob = inbound.blob(name)
    blob.upload_from_string(data if data is not None else image_bytes())
    headers, body = to_binary(storage_event(blob))
    assert (
        make_function("predict_image", "cloudevent").post("/", headers=headers, data=body).status_code == 200
    )
    move = make_function("move_image", "http")
    for message in topic.read(expect=1, timeout=2):
        envelope = {"message": {"data": base64.b64encode(message.data).decode(), "messageId": "1"}}
        assert move.post("/", json=envelope).status_code == 204


def test_the_longest_name_predict_lets_through_fits_every_folder_lease_and_name_beside(env):
    """Names of 1,003 to 1,016 bytes used to reach unclear/ and then overflow their lease name,
    so /api/next failed for every reviewer; 1,017 to 1,024 failed every move. The local proxy now
    refuses names over 1,024 bytes as GCS does, so each step here would fail if it overflowed."""
    from review_app.decisions import Decisions
    from review_app.unclear_queue import Queue

    inbound, predicted, topic = env
    name = "line-1/" + "ü" * ((layout.MAX_SERVABLE_NAME_BYTES - 7) // 2)
    name += "x" * (layout.MAX_SERVABLE_NAME_BYTES - len(name.encode()))
    assert len(name.encode()) == layout.MAX_SERVABLE_NAME_BYTES
    predict_and_move(inbound, topic, name)
    assert images(predicted) == [f"unclear/{name}"]
    taken = predicted.blob(f"human_decided/unusable/{name}")  # the longest folder, already taken
    taken.upload_from_string(b"someone else's")
    queue = Queue(predicted.name)
    item = queue.next_item("r@example.com")  # the lease: a fixed-length name whatever the image's
    assert item is not None and item.name == f"unclear/{name}"
    decision = Decisions(queue).decide(item.name, item.generation, "unusable", "r@example.com")
    assert decision.name == layout.alongside(f"human_decided/unusable/{name}", item.generation)
    assert len(decision.name.encode()) <= layout.MAX_NAME_BYTES


def test_an_empty_object_named_like_a_folder_is_kept_with_its_reason(env, caplog):
    """It used to stay in inbound with no message at all."""
    inbound, predicted, topic = env
    predict_and_move(inbound, topic, "line-1/", b"")
    assert images(inbound) == [] and images(predicted) == ["rejected/line-1/"]
    assert predicted.get_blob("rejected/line-1/").metadata["rejected_reason"] == "folder_placeholder"
    [line] = logged(caplog, "rejected")
    assert line["reason"] == "folder_placeholder"


def test_no_upload_can_take_the_name_a_quarantined_image_is_kept_under(env):
    """A non-image uploaded as unsafe_name/<hash> used to take that quarantine name first."""
    inbound, predicted, topic = env
    unsafe = "line-1/tab\there.jpg"
    key = layout.quarantined(unsafe)
    digest = key.rsplit("/", 1)[1]
    for squatter in (f"unsafe_name/{digest}", f"quarantine/{digest}", key):
        predict_and_move(inbound, topic, squatter, b"not an image")
    predict_and_move(inbound, topic, unsafe)
    kept = predicted.get_blob(key)
    assert kept is not None and json.loads(f'"{kept.metadata["original_name"]}"') == unsafe
