"""The claim that decides each move: what happens when it cannot be read, names the wrong bucket,
finds every name taken, or is asked about a generation that is gone. Through the move function,
against fake-gcs-server behind the enforcing proxy."""

from __future__ import annotations

import json

import pytest

from inspection import claims, layout, storage
from tests.helpers import logged, make_function, prediction, push_body


@pytest.fixture
def env(deployed_env, make_bucket, topic):
    inbound, predicted = make_bucket("inbound", versioned=True), make_bucket("prediction", versioned=True)
    deployed_env.pipeline(inbound, predicted, topic)
    return inbound, predicted, topic


def images(bucket) -> list[str]:
    return sorted(b.name for b in bucket.list_blobs() if not b.name.startswith(layout.BOOKKEEPING))


def upload(bucket, name: str = "line-1/part.jpeg"):
    blob = bucket.blob(name)
    blob.upload_from_string(b"bytes")
    return blob


def claim_blob(predicted, inbound, blob):
    return predicted.blob(claims.claim_name(storage.ObjectRef(inbound.name, blob.name, blob.generation)))


def routed_claim(inbound, predicted, blob, **changes) -> dict:
    body = {
        "schema": 1,
        "source": storage.ObjectRef(inbound.name, blob.name, blob.generation).uri,
        "bucket": predicted.name,
        "destination": f"ok/{blob.name}",
        "owner": "",
        "metadata": {
            "predicted_label": "ok",
            "predicted_score": "0.950000",
            "model": "m",
            "threshold": "0.9",
        },
        "claimed_at": "2026-11-29T10:00:00+00:00",
        "state": "claimed",
    }
    return {**body, **changes}


def test_a_claim_from_a_newer_revision_is_read_and_carried_out(env):
    """A rollout writes claims with a field this revision does not know; it used to crash every
    delivery (a poison message)."""
    inbound, predicted, _ = env
    blob = upload(inbound)
    newer = routed_claim(inbound, predicted, blob, checksum="abc", audit={"by": "revision-2"})
    claim_blob(predicted, inbound, blob).upload_from_string(json.dumps(newer))
    body = push_body(prediction(inbound.name, blob.name, blob.generation, "defect", 0.99))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    assert images(predicted) == ["ok/line-1/part.jpeg"]  # the claim's decision, not this message's
    assert images(inbound) == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"schema": 1, "source": "gs://x/y#1", "bucket"',  # truncated
        b"\xff\xfe not json",
        b'{"schema": 1, "source": "gs://x/y#1", "bucket": "b", "destination": "ok/y", "state": "teleported"}',
        b'{"schema": 99, "source": "gs://x/y#1", "bucket": "b", "destination": "ok/y"}',
    ],
    ids=["truncated", "not-json", "unknown-state", "future-schema"],
)
def test_an_unreadable_claim_holds_the_image_for_a_person_and_never_crash_loops(env, raw, caplog):
    inbound, predicted, topic = env
    blob = upload(inbound)
    claim_blob(predicted, inbound, blob).upload_from_string(raw)
    body = push_body(prediction(inbound.name, blob.name, blob.generation))
    move = make_function("move_image", "http")
    for _ in range(3):  # every delivery: acknowledged, never a 5xx
        assert move.post("/", json=body).status_code == 204
    assert images(inbound) == ["line-1/part.jpeg"] and images(predicted) == []  # kept where it was
    held = topic.read(expect=3)
    assert {m.attributes["source"] for m in held} == {"move_image"}  # the sweep keeps these for a person
    [line, *_] = logged(caplog, "move held for a person; sent to dead letter")
    assert line["severity"] == "ERROR" and "cannot be read" in line["reason"] and line["claim"]


def test_a_claim_naming_another_bucket_is_refused_and_held(env, make_bucket, caplog):
    """It once moved the image out of the prediction bucket into whichever bucket it named."""
    inbound, predicted, topic = env
    elsewhere = make_bucket("elsewhere")
    blob = upload(inbound)
    foreign = routed_claim(inbound, predicted, blob, bucket=elsewhere.name)
    claim_blob(predicted, inbound, blob).upload_from_string(json.dumps(foreign))
    body = push_body(prediction(inbound.name, blob.name, blob.generation))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    assert images(elsewhere) == [] and images(predicted) == []
    assert images(inbound) == ["line-1/part.jpeg"]
    [line] = logged(caplog, "move held for a person; sent to dead letter")
    assert "names bucket" in line["reason"]
    assert topic.read()[0].attributes["source"] == "move_image"


def test_a_missing_prediction_bucket_is_not_read_as_the_source_being_gone(env, monkeypatch, caplog):
    """A 404 from a missing destination bucket used to count as "source gone": the image was
    stranded in inbound and reported as routed."""
    inbound, _, _ = env
    monkeypatch.setenv("PREDICTION_BUCKET", "no-such-bucket-anywhere-here")
    blob = upload(inbound)
    body = push_body(prediction(inbound.name, blob.name, blob.generation))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    assert images(inbound) == ["line-1/part.jpeg"]
    assert logged(caplog, "routed") == []
    [line] = logged(caplog, "move held for a person; sent to dead letter")
    assert "does not exist" in line["reason"]


def test_when_every_name_is_taken_the_image_is_held_not_retried_forever(env, caplog):
    """Only two names were ever tried; with both taken, every delivery raised, forever."""
    inbound, predicted, topic = env
    blob = upload(inbound)
    for name in layout.candidates(f"ok/{blob.name}", blob.generation):
        predicted.blob(name).upload_from_string(b"someone else's")
    body = push_body(prediction(inbound.name, blob.name, blob.generation))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    assert images(inbound) == ["line-1/part.jpeg"]
    [line] = logged(caplog, "move held for a person; sent to dead letter")
    assert "every name for the copy is held" in line["reason"]
    assert topic.read()[0].attributes["source"] == "move_image"


def test_more_names_are_tried_beside_a_taken_destination(env):
    inbound, predicted, _ = env
    blob = upload(inbound)
    taken = layout.candidates(f"ok/{blob.name}", blob.generation)[:3]
    for name in taken:
        predicted.blob(name).upload_from_string(b"someone else's")
    body = push_body(prediction(inbound.name, blob.name, blob.generation))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    assert images(predicted) == sorted([*taken, layout.candidates(f"ok/{blob.name}", blob.generation)[3]])


def test_a_message_for_a_generation_that_is_gone_writes_no_claim_and_no_record(env, caplog):
    """It used to write a claim and a ROUTED record, so the report counted images that were not there."""
    inbound, predicted, _ = env
    blob = upload(inbound)
    generation = blob.generation
    blob.delete()
    body = push_body(prediction(inbound.name, blob.name, generation))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    assert list(predicted.list_blobs()) == []  # no claim, no image, no queue entry
    assert logged(caplog, "routed") == []


def test_a_replay_after_the_claim_expired_writes_no_second_record_or_queue_entry(env, caplog):
    """Claims are deleted after 30 days; a message replayed later used to route the image again."""
    inbound, predicted, _ = env
    blob = upload(inbound)
    body = push_body(prediction(inbound.name, blob.name, blob.generation, "ok", 0.6))
    move = make_function("move_image", "http")
    assert move.post("/", json=body).status_code == 204
    assert len(logged(caplog, "routed")) == 1
    claim_blob(predicted, inbound, blob).delete()  # as the lifecycle rule does after 30 days
    caplog.clear()
    assert move.post("/", json=body).status_code == 204
    assert logged(caplog, "routed") == []
    assert len(list(predicted.list_blobs(prefix="review/queue/"))) == 1
    assert images(predicted) == ["unclear/line-1/part.jpeg"]
