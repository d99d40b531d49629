"""A real process dies at every storage request of a move, a rejection, a decision and an undo:
before the request reaches storage, and after it took effect. Then the platform retries (and, for
a move, a reviewer works the queue in between), and every image generation ends in exactly one
place, with exactly one record.

The handler runs in a process of its own (tests/crash_child.py); the storage proxy counts its
requests and kills it with SIGKILL at the n-th (tests/faults.Child). Nothing is patched, so the
test holds however the code that makes the requests is arranged.
"""

from __future__ import annotations

import pytest

from inspection import claims, layout, records, review_index, storage
from review_app.decisions import Decisions
from review_app.unclear_queue import Queue
from tests.faults import Child, log_lines
from tests.helpers import image_bytes, logged, make_function, prediction, push_body, storage_event

REVIEWER = "r@example.com"
PHASES = ("before", "after")


@pytest.fixture
def world(make_bucket, topic, deployed_env, fake_gcs):
    """Fresh buckets per call, the environment the handlers read, and a child runner."""

    def make():
        inbound, predicted = make_bucket("inbound", versioned=True), make_bucket("prediction", versioned=True)
        env = deployed_env.pipeline(inbound, predicted, topic)
        return inbound, predicted, Child(fake_gcs, env)

    return make


def images(bucket) -> list[str]:
    return sorted(b.name for b in bucket.list_blobs() if not b.name.startswith(layout.BOOKKEEPING))


def queued(bucket) -> list[str]:
    return sorted(
        e.name
        for e in (review_index.of_blob(bucket.name, b) for b in bucket.list_blobs(prefix=review_index.PREFIX))
        if e
    )


def kept_records(*streams: list[dict]) -> dict[str, list[dict]]:
    """event → the distinct records of that kind; each record's copies are checked identical."""
    found: dict[str, dict[str, dict]] = {}
    for line in (line for stream in streams for line in stream):
        if "record" not in line:
            continue
        fields = {name: line.get(name) for name in records.COLUMNS}
        earlier = found.setdefault(line["event"], {}).setdefault(line["event_id"], fields)
        assert earlier == fields, "a record written twice must be the same record"
    return {event: list(by_id.values()) for event, by_id in found.items()}


def crash_points(child: Child, kind: str, payload: dict) -> int:
    """How many storage requests a clean run makes: each is a place to die."""
    assert child.run(kind, payload).returncode == 0
    return len(child.requests)


def upload_unclear(world) -> tuple:
    """An image routed to unclear/ by move, in this process: buckets, child, the unclear item."""
    inbound, predicted, child = world()
    blob = inbound.blob("line-1/part.jpeg")
    blob.upload_from_string(image_bytes())
    body = push_body(prediction(inbound.name, blob.name, blob.generation, "ok", 0.7))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    return inbound, predicted, child


def test_a_move_killed_at_any_request_ends_in_one_place_even_when_a_reviewer_works_the_queue(world, caplog):
    """Before: the copy stayed in unclear/ and the source in inbound; a reviewer decided the copy,
    the retry copied it again, and the image came back to be decided a second time (20 of 20)."""
    inbound, _, child = world()
    blob = inbound.blob("line-1/part.jpeg")
    blob.upload_from_string(b"bytes")
    points = crash_points(
        child, "move", push_body(prediction(inbound.name, blob.name, blob.generation, "ok", 0.7))
    )
    assert points >= 5
    for kill_at in range(1, points + 1):
        for phase in PHASES:
            caplog.clear()
            inbound, predicted, child = world()
            blob = inbound.blob("line-1/part.jpeg")
            blob.upload_from_string(b"bytes")
            body = push_body(prediction(inbound.name, blob.name, blob.generation, "ok", 0.7))
            died = child.run("move", body, kill_at=kill_at, phase=phase)
            assert died.returncode == -9, (kill_at, phase, died.stderr[-2000:])
            queue = Queue(predicted.name)
            served = queue.next_item(REVIEWER)  # a reviewer works the queue before the retry
            if served is not None:
                Decisions(queue).decide(served.name, served.generation, "defect", REVIEWER)
            assert make_function("move_image", "http").post("/", json=body).status_code == 204  # redelivery
            served = queue.next_item(REVIEWER)
            if served is not None:
                Decisions(queue).decide(served.name, served.generation, "defect", REVIEWER)
            where = (kill_at, phase)
            assert list(storage.client().list_blobs(inbound, versions=True)) == [], where
            assert images(predicted) == ["human_decided/defect/line-1/part.jpeg"], where
            assert queued(predicted) == [], where
            kept = kept_records(log_lines(died.stdout), logged(caplog))
            assert (len(kept["routed"]), len(kept["decided"])) == (1, 1), where


def test_a_rejection_killed_at_any_request_is_kept_once_with_one_record(world, caplog):
    """Before: a crash after the move to rejected/ and before its record lost the record."""
    inbound, _, child = world()
    blob = inbound.blob("line-1/notes.txt")
    blob.upload_from_string(b"not an image")
    points = crash_points(child, "predict", dict(storage_event(blob).data))
    for kill_at in range(1, points + 1):
        for phase in PHASES:
            caplog.clear()
            inbound, predicted, child = world()
            blob = inbound.blob("line-1/notes.txt")
            blob.upload_from_string(b"not an image")
            event = storage_event(blob)
            died = child.run("predict", dict(event.data), kill_at=kill_at, phase=phase)
            assert died.returncode == -9, (kill_at, phase, died.stderr[-2000:])
            from cloudevents.conversion import to_binary

            headers, data = to_binary(event)
            assert (
                make_function("predict_image", "cloudevent").post("/", headers=headers, data=data).status_code
                == 200
            )
            where = (kill_at, phase)
            assert list(storage.client().list_blobs(inbound, versions=True)) == [], where
            assert images(predicted) == ["rejected/line-1/notes.txt"], where
            kept = kept_records(log_lines(died.stdout), logged(caplog))
            assert [r["reason"] for r in kept.get("rejected", [])] == ["not_an_image"], (where, died.stdout)


def test_a_decision_killed_at_any_request_is_finished_by_the_retry(world, caplog):
    _, predicted, child = upload_unclear(world)
    item = Queue(predicted.name).next_item(REVIEWER)
    job = {
        "bucket": predicted.name,
        "name": item.name,
        "generation": item.generation,
        "label": "ok",
        "reviewer": REVIEWER,
    }
    points = crash_points(child, "decide", job)
    for kill_at in range(1, points + 1):
        for phase in PHASES:
            _, predicted, child = upload_unclear(world)
            caplog.clear()
            queue = Queue(predicted.name)
            item = queue.next_item(REVIEWER)
            job = {**job, "bucket": predicted.name, "generation": item.generation}
            died = child.run("decide", job, kill_at=kill_at, phase=phase)
            assert died.returncode == -9, (kill_at, phase, died.stderr[-2000:])
            decision = Decisions(queue).decide(item.name, item.generation, "ok", REVIEWER)  # the page retries
            where = (kill_at, phase)
            assert decision.name == "human_decided/ok/line-1/part.jpeg", where
            assert images(predicted) == ["human_decided/ok/line-1/part.jpeg"], where
            # Killed between the claim's `done` and the queue entry's removal beside it, the entry
            # is stale: the next reviewer to meet it drops it, and is served nothing.
            assert queue.next_item(REVIEWER) is None and queued(predicted) == [], where
            kept = kept_records(log_lines(died.stdout), logged(caplog))
            assert [r["label"] for r in kept["decided"]] == ["ok"], where


def test_an_undo_killed_at_any_request_is_finished_by_the_retry_and_the_image_is_queued(world, caplog):
    """Before: an undo killed before its index write could not be retried; the image sat in
    unclear/ with no place in the queue, served only after every other image."""

    def decided():
        _, predicted, child = upload_unclear(world)
        queue = Queue(predicted.name)
        item = queue.next_item(REVIEWER)
        decision = Decisions(queue).decide(item.name, item.generation, "defect", REVIEWER)
        return predicted, child, queue, decision

    predicted, child, _, decision = decided()
    job = {
        "bucket": predicted.name,
        "name": decision.name,
        "generation": decision.generation,
        "reviewer": REVIEWER,
    }
    points = crash_points(child, "undo", job)
    for kill_at in range(1, points + 1):
        for phase in PHASES:
            predicted, child, queue, decision = decided()
            caplog.clear()
            job = {**job, "bucket": predicted.name, "generation": decision.generation}
            died = child.run("undo", job, kill_at=kill_at, phase=phase)
            assert died.returncode == -9, (kill_at, phase, died.stderr[-2000:])
            restored = Decisions(queue).undo(decision.name, decision.generation, REVIEWER)  # the page retries
            where = (kill_at, phase)
            assert restored.name == "unclear/line-1/part.jpeg", where
            assert images(predicted) == ["unclear/line-1/part.jpeg"], where
            assert queued(predicted) == ["unclear/line-1/part.jpeg"], where
            assert queue.next_item(REVIEWER).name == restored.name, where  # leased back to the undoer
            kept = kept_records(log_lines(died.stdout), logged(caplog))
            assert [r["label"] for r in kept["undone"]] == ["defect"], where


def _abandoned(monkeypatch) -> None:
    """The tab whose request died never asks again: its lease runs out."""
    from datetime import timedelta

    from review_app import leases

    later = leases.now() + timedelta(minutes=10)
    monkeypatch.setattr(leases, "now", lambda: later)


def test_a_decision_killed_at_any_request_and_never_retried_is_finished_by_the_next_request(
    world, caplog, monkeypatch
):
    """Issue 30, finding 1 (the decision): no retry from the tab. Once its lease has run out, the
    next request from anyone (here another reviewer's /api/next) finishes what the dead request
    left: the image ends in one place, queued exactly when it waits, with the records to match."""
    _, predicted, child = upload_unclear(world)
    item = Queue(predicted.name).next_item(REVIEWER)
    job = {"bucket": predicted.name, "name": item.name, "generation": item.generation}
    job |= {"label": "ok", "reviewer": REVIEWER}
    points = crash_points(child, "decide", job)
    for kill_at in range(1, points + 1):
        for phase in PHASES:
            with monkeypatch.context() as clock:
                _, predicted, child = upload_unclear(world)
                caplog.clear()
                item = Queue(predicted.name).next_item(REVIEWER)
                died = child.run(
                    "decide",
                    {**job, "bucket": predicted.name, "generation": item.generation},
                    kill_at=kill_at,
                    phase=phase,
                )
                assert died.returncode == -9, (kill_at, phase, died.stderr[-2000:])
                _abandoned(clock)
                Queue(predicted.name).next_item("someone-else@example.com", "their-tab")
                where = (kill_at, phase)
                [place] = images(predicted)  # never doubled
                kept = kept_records(log_lines(died.stdout), logged(caplog))
                if place.startswith("human_decided/"):
                    assert place == "human_decided/ok/line-1/part.jpeg", where
                    assert queued(predicted) == [], where
                    assert [r["label"] for r in kept["decided"]] == ["ok"], where
                else:  # it died before anything was decided: the image still waits
                    assert place == "unclear/line-1/part.jpeg", where
                    assert queued(predicted) == [place] and "decided" not in kept, where
                    source = storage.ObjectRef(predicted.name, place, item.generation)
                    assert claims.read(predicted.name, source) is None, where


def test_an_undo_killed_at_any_request_and_never_retried_is_finished_by_the_next_request(
    world, caplog, monkeypatch
):
    """Issue 30, finding 1: killed after the copy back to unclear/, the image was in both folders,
    unqueued, and the taken-back decision still fed retraining (8 of 8); killed after the record,
    it was never queued. The undo now writes its lease first, and the next request from anyone
    after that lease has run out finishes the move: 0 doubled, 0 unqueued, records equal folders."""

    def decided():
        _, predicted, child = upload_unclear(world)
        queue = Queue(predicted.name)
        item = queue.next_item(REVIEWER)
        return predicted, child, Decisions(queue).decide(item.name, item.generation, "defect", REVIEWER)

    predicted, child, decision = decided()
    job = {"bucket": predicted.name, "name": decision.name, "generation": decision.generation}
    job |= {"reviewer": REVIEWER}
    points = crash_points(child, "undo", job)
    for kill_at in range(1, points + 1):
        for phase in PHASES:
            with monkeypatch.context() as clock:
                caplog.clear()
                predicted, child, decision = decided()
                died = child.run(
                    "undo",
                    {**job, "bucket": predicted.name, "generation": decision.generation},
                    kill_at=kill_at,
                    phase=phase,
                )
                assert died.returncode == -9, (kill_at, phase, died.stderr[-2000:])
                _abandoned(clock)
                Queue(predicted.name).next_item("someone-else@example.com", "their-tab")
                where = (kill_at, phase)
                [place] = images(predicted)  # never doubled
                kept = kept_records(log_lines(died.stdout), logged(caplog))
                assert [r["label"] for r in kept["decided"]] == ["defect"], where
                if place.startswith("unclear/"):
                    assert queued(predicted) == [place], where  # never unqueued
                    assert [r["label"] for r in kept["undone"]] == ["defect"], where
                else:  # it died before the undo was claimed: the decision stands
                    assert place == "human_decided/defect/line-1/part.jpeg", where
                    assert queued(predicted) == [] and "undone" not in kept, where
