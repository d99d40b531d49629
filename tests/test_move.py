"""The move function, through functions-framework, against fake-gcs-server (behind the enforcing
proxy) and Google's Pub/Sub emulator."""

from __future__ import annotations

import json

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from inspection import layout
from inspection.errors import ConfigError
from tests.faults import Child, failing
from tests.helpers import logged, make_function, prediction, push_body

THRESHOLD = 0.8


@pytest.fixture
def env(deployed_env, make_bucket, topic):
    inbound, predicted = make_bucket("inbound"), make_bucket("prediction")
    deployed_env(
        prediction_bucket=predicted.name,
        inbound_bucket=inbound.name,
        threshold=THRESHOLD,
        dead_letter_topic=topic.path,
    )
    return inbound, predicted, topic


@pytest.fixture
def move(env):
    return make_function("move_image", "http")


def upload(bucket, name: str, data: bytes = b"image bytes"):
    blob = bucket.blob(name)
    blob.upload_from_string(data)
    return blob


def names(bucket) -> list[str]:
    """The images in a bucket; the product's own records (layout.BOOKKEEPING) are left out."""
    return sorted(b.name for b in bucket.list_blobs() if not b.name.startswith(layout.BOOKKEEPING))


def post(move, body: dict):
    return move.post("/", json=body)


@pytest.mark.parametrize(
    ("label", "score", "folder"),
    [("ok", 0.8, "ok"), ("defect", 0.99, "defect"), ("defect", 0.79, "unclear"), ("ok", 0.5, "unclear")],
)
def test_routes_by_threshold_and_keeps_the_name(env, move, label, score, folder):
    inbound, predicted, _ = env
    blob = upload(inbound, "line 1/part-7.jpg")
    assert (
        post(move, push_body(prediction(inbound.name, blob.name, blob.generation, label, score))).status_code
        == 204
    )
    assert names(inbound) == []
    assert names(predicted) == [f"{folder}/line 1/part-7.jpg"]
    meta = predicted.get_blob(f"{folder}/line 1/part-7.jpg").metadata
    assert meta["predicted_label"] == label
    assert float(meta["predicted_score"]) == pytest.approx(score)
    assert json.loads(meta["predicted_scores"])[label] == pytest.approx(score)
    assert meta["model"] == "test-model"
    assert meta["source_bucket"] == inbound.name
    assert meta["source_generation"] == str(blob.generation)
    assert meta["routed_at"]


def test_routed_object_keeps_the_bytes(env, move):
    inbound, predicted, _ = env
    blob = upload(inbound, "a.jpg", b"\x00\x01 exact bytes")
    post(move, push_body(prediction(inbound.name, "a.jpg", blob.generation)))
    assert predicted.blob("ok/a.jpg").download_as_bytes() == b"\x00\x01 exact bytes"


@pytest.mark.parametrize("mode", [to_structured, to_binary])
def test_accepts_the_eventarc_message_published_cloudevent(env, move, mode):
    inbound, predicted, _ = env
    blob = upload(inbound, "ce.jpg")
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/x"},
        push_body(prediction(inbound.name, "ce.jpg", blob.generation, "defect", 0.95)),
    )
    headers, body = mode(event)
    assert move.post("/", headers=headers, data=body).status_code == 204
    assert names(predicted) == ["defect/ce.jpg"]


def test_redelivery_is_a_no_op(env, move):
    inbound, predicted, topic = env
    blob = upload(inbound, "twice.jpg")
    body = push_body(prediction(inbound.name, "twice.jpg", blob.generation))
    assert post(move, body).status_code == 204
    first = predicted.get_blob("ok/twice.jpg").generation
    assert post(move, body).status_code == 204
    assert names(predicted) == ["ok/twice.jpg"]
    assert predicted.get_blob("ok/twice.jpg").generation == first
    assert topic.read(expect=1, timeout=1) == []  # nothing dead-lettered


def test_a_crash_between_copy_and_delete_is_finished_by_redelivery(env, move, fake_gcs):
    """The instance dies (SIGKILL) when it asks storage to delete the source; Pub/Sub redelivers."""
    inbound, predicted, _ = env
    blob = upload(inbound, "crash.jpg")
    body = push_body(prediction(inbound.name, "crash.jpg", blob.generation))
    child = Child(fake_gcs, {})
    died = child.run("move", body)  # a clean run, counted, to find which request is the delete
    assert died.returncode == 0
    deletes_at = next(i for i, c in enumerate(child.requests, 1) if c.method == "objects.delete")
    blob = upload(inbound, "crash2.jpg")
    body = push_body(prediction(inbound.name, "crash2.jpg", blob.generation))
    assert child.run("move", body, kill_at=deletes_at).returncode == -9  # the platform will redeliver
    assert names(inbound) == ["crash2.jpg"] and names(predicted) == ["ok/crash.jpg", "ok/crash2.jpg"]
    assert post(move, body).status_code == 204
    assert names(inbound) == [] and names(predicted) == ["ok/crash.jpg", "ok/crash2.jpg"]


def test_an_old_message_never_deletes_a_newer_upload(env, move):
    inbound, predicted, _ = env
    old = upload(inbound, "same.jpg", b"old")
    newer = upload(inbound, "same.jpg", b"newer")
    assert post(move, push_body(prediction(inbound.name, "same.jpg", old.generation))).status_code == 204
    assert inbound.blob("same.jpg").download_as_bytes() == b"newer"
    assert names(predicted) == []  # the old generation is gone; nothing to move
    assert post(move, push_body(prediction(inbound.name, "same.jpg", newer.generation))).status_code == 204
    assert predicted.blob("ok/same.jpg").download_as_bytes() == b"newer"


def test_a_redelivered_old_message_after_a_reupload_leaves_the_new_file(env, move):
    inbound, predicted, _ = env
    old = upload(inbound, "again.jpg", b"old")
    body = push_body(prediction(inbound.name, "again.jpg", old.generation))
    post(move, body)
    upload(inbound, "again.jpg", b"new upload")
    assert post(move, body).status_code == 204
    assert inbound.blob("again.jpg").download_as_bytes() == b"new upload"
    assert predicted.blob("ok/again.jpg").download_as_bytes() == b"old"


def test_a_different_file_at_the_destination_is_kept_and_so_is_ours(env, move, caplog):
    inbound, predicted, _ = env
    upload(predicted, "ok/clash.jpg", b"someone else's")
    blob = upload(inbound, "clash.jpg", b"ours")
    body = push_body(prediction(inbound.name, "clash.jpg", blob.generation))
    assert post(move, body).status_code == 204
    alternative = f"ok/clash__g{blob.generation}.jpg"
    assert names(predicted) == sorted(["ok/clash.jpg", alternative])
    assert predicted.blob("ok/clash.jpg").download_as_bytes() == b"someone else's"
    assert predicted.blob(alternative).download_as_bytes() == b"ours"
    assert logged(caplog, "destination holds a different object; keeping both")
    caplog.clear()
    assert post(move, body).status_code == 204  # and a redelivery adds nothing
    assert len(names(predicted)) == 2
    assert logged(caplog, "routed") == []  # the record was written once, by the first delivery
    redelivered = logged(caplog, "already routed")
    assert [(r["ending"], r["destination"]) for r in redelivered] == [("already_moved", alternative)]


@pytest.mark.parametrize(
    "name",
    [
        "with space.jpg",
        "ünïcödé/部品.jpg",
        'quote\'s "double".jpg',
        "hash#frag.jpg",
        "query?x=1&y=2.jpg",
        "deep/nested/folders/part.jpg",
        "%2F..%2Fescaped.jpg",
        "<script>.jpg",
    ],
)
def test_every_legal_name_is_kept_verbatim(env, move, name):
    inbound, predicted, _ = env
    blob = upload(inbound, name)
    assert (
        post(move, push_body(prediction(inbound.name, name, blob.generation, "defect", 0.9))).status_code
        == 204
    )
    assert names(predicted) == [f"defect/{name}"]


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/../b/./c.jpg", "line-1/" + "x" * 1000 + ".jpg", "line-1/\u202eevil.jpg"],
)
def test_a_name_predict_would_refuse_is_quarantined_by_move_too(env, move, name, caplog):
    """Issue 30, finding 3: a prediction for such a name (an older release's, or a replayed dead
    letter) landed in unclear/, where decide and skip answer 400 and /api/next served it again.
    One rule (layout.unservable): quarantined wherever found, never queued."""
    inbound, predicted, _ = env
    blob = upload(inbound, name)
    body = push_body(prediction(inbound.name, name, blob.generation, "ok", 0.5))
    assert post(move, body).status_code == 204
    [kept] = names(predicted)
    assert kept.startswith("quarantine/"), kept
    assert list(predicted.list_blobs(prefix="review/queue/")) == []
    assert [r["reason"] for r in logged(caplog, "rejected")] == ["unsafe_name"]
    assert post(move, body).status_code == 204  # a redelivery changes nothing
    assert names(predicted) == [kept]


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        json.dumps({"subscription": "s"}).encode(),
        json.dumps({"message": {"data": "!!!not base64!!!"}}).encode(),
        json.dumps(push_body(b"{not json")).encode(),
        json.dumps(push_body({"bucket": "b", "name": "x", "generation": "1", "label": "Maybe"})).encode(),
    ],
)
def test_malformed_messages_go_to_the_dead_letter_topic_and_are_acknowledged(env, move, body, caplog):
    _, _, topic = env
    response = move.post("/", data=body, content_type="application/json")
    assert response.status_code == 204  # acknowledged: never a crash loop
    held = topic.read(expect=1)
    assert [m.data for m in held] == [body]
    assert held[0].attributes["reason"]
    line = logged(caplog, "malformed prediction message; sent to dead letter")[-1]
    assert line["severity"] == "ERROR" and line["payload"] == body.decode()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_a_request_that_is_not_a_post_is_refused_and_nothing_is_dead_lettered(env, move, method, caplog):
    """Pub/Sub and Eventarc deliver by POST. Anything else (a browser, a health probe, a scanner)
    is no message: before, a GET was dead-lettered as a malformed prediction, one message for a
    person each time."""
    _, _, topic = env
    response = move.open("/", method=method)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert "POST" in response.get_data(as_text=True)
    assert topic.read(expect=1, timeout=1) == []
    [line] = logged(caplog, "not a delivery: move accepts only POST")
    assert line["severity"] == "WARNING" and line["method"] == method


def test_storage_trouble_is_retried_not_acknowledged(env, move, fake_gcs):
    """Storage refuses the copy (a missing grant answers 403, which no client retries): move
    answers 500 so that Pub/Sub delivers again, and nothing is dead-lettered or lost."""
    inbound, _, topic = env
    blob = upload(inbound, "flaky.jpg")
    with failing(fake_gcs, lambda call: call.method == "objects.rewrite", status=403) as failed:
        answer = post(move, push_body(prediction(inbound.name, "flaky.jpg", blob.generation)))
    assert failed and answer.status_code == 500
    assert names(inbound) == ["flaky.jpg"]
    assert topic.read(expect=1, timeout=1) == []


@pytest.mark.parametrize("bad", ["0.5", "1.2", "high"])
def test_a_bad_threshold_stops_the_function_at_start(env, monkeypatch, bad):
    monkeypatch.setenv("PREDICTION_THRESHOLD", bad)
    with pytest.raises(ConfigError, match=r"PREDICTION_THRESHOLD"):
        make_function("move_image", "http")


def test_one_log_line_per_decision(env, move, capsys):
    inbound, _, _ = env
    blob = upload(inbound, "logged.jpg")
    capsys.readouterr()
    post(move, push_body(prediction(inbound.name, "logged.jpg", blob.generation, "defect", 0.7)))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    decisions = [line for line in lines if line["message"] == "routed"]
    assert len(decisions) == 1
    assert {"severity", "message", "image", "generation", "label", "score", "folder", "latency_ms"} <= set(
        decisions[0]
    )
    assert decisions[0]["folder"] == "unclear"


def test_an_unclear_image_joins_the_arrival_ordered_queue_and_leaves_it_when_decided(env, move):
    """Reviewers get the image that waited longest; the index move writes is how, at flat cost."""
    from inspection import review_index
    from review_app.decisions import Decisions
    from review_app.unclear_queue import Queue

    inbound, predicted, _ = env
    for name in ("z-arrived-first.jpg", "a-arrived-second.jpg"):  # name order would pick a-
        blob = upload(inbound, name)
        assert (
            post(move, push_body(prediction(inbound.name, name, blob.generation, "ok", 0.6))).status_code
            == 204
        )
    entries = sorted(b.name for b in predicted.list_blobs(prefix=review_index.PREFIX))
    assert len(entries) == 2
    first = Queue(predicted.name).next_item("r@example.com")
    assert first.name == "unclear/z-arrived-first.jpg"
    Decisions(Queue(predicted.name)).decide(first.name, first.generation, "ok", "r@example.com")
    assert len(list(predicted.list_blobs(prefix=review_index.PREFIX))) == 1


def _malformed_predictions(bucket: str, name: str, generation: int) -> list[bytes]:
    """Fifty and more predictions no move may act on, as raw JSON text (lone surrogates included,
    which json.dumps would escape but a hostile publisher need not)."""
    good = prediction(bucket, name, generation, "ok", 0.95)
    changes: list[dict] = [
        {"name": "\ud800"},
        {"name": "line-1/\udfff.jpg"},
        {"bucket": "\ud83d"},
        {"model": "m\udc00"},
        {"label": "\ud800"},
        {"name": ""},
        {"name": None},
        {"name": 7},
        {"name": ["a"]},
        {"name": {"a": 1}},
        {"name": "a\nb.jpg"},
        {"name": "a\rb.jpg"},
        {"name": "x" * 1025},
        {"bucket": ""},
        {"bucket": None},
        {"bucket": 12},
        {"bucket": "some-other-bucket"},
        {"generation": "0"},
        {"generation": "-1"},
        {"generation": "1e3"},
        {"generation": True},
        {"generation": None},
        {"generation": 1.5},
        {"generation": "٣"},
        {"label": "Maybe"},
        {"label": None},
        {"label": ""},
        {"score": "high"},
        {"score": None},
        {"score": 1.5},
        {"score": -0.1},
        {"score": float("nan")},
        {"score": float("inf")},
        {"score": True},
        {"scores": None},
        {"scores": []},
        {"scores": {"ok": "x"}},
        {"scores": {"defect": 0.5}},
        {"scores": {"ok": 2.0, "defect": 0.1}},
        {"predicted_at": "yesterday"},
        {"predicted_at": None},
        {"predicted_at": 5},
        {"model": ""},
        {"model": None},
        {"schema": 999},
        {"schema": "1"},
        {"unclear_reason": 5},
        {"unclear_reason": "x" * 5000},
        {"heatmap": "../../etc/passwd"},
        {"heatmap": 3},
    ]
    bodies = [json.dumps({**good, **change}, allow_nan=True).encode() for change in changes]
    bodies = [b.replace(b"\\\\u", b"\\u") for b in bodies]
    raw = json.dumps(good)
    bodies += [
        raw.replace(f'"{name}"', '"\\ud800"').encode(),
        raw.replace(f'"{name}"', '"line-1/\\udc80.jpg"').encode(),
        b"[]",
        b"null",
        b'"a string"',
        b"{" * 5000 + b"}" * 5000,
        b"\xff\xfe not utf-8",
    ]
    return bodies


def test_fifty_and_more_malformed_messages_are_answered_below_500_and_nothing_is_lost(env, move):
    """Issue 30, finding 5: a lone surrogate in `name` made move answer 500, five times, then the
    dead-letter topic, then the sweep republished it: a poison loop. Every one of these is now
    dead-lettered by move itself (which the sweep keeps for a person) and acknowledged."""
    inbound, predicted, topic = env
    blob = upload(inbound, "line-1/part.jpg")
    bodies = _malformed_predictions(inbound.name, blob.name, blob.generation)
    assert len(bodies) >= 50
    answers = [post(move, push_body(body)).status_code for body in bodies]
    assert set(answers) == {204}, [(i, a) for i, a in enumerate(answers) if a != 204]
    held = topic.read(expect=len(bodies))
    assert len(held) == len(bodies)
    assert all(m.attributes.get("source") == "move_image" for m in held)  # the sweep keeps these
    assert [b.name for b in inbound.list_blobs()] == ["line-1/part.jpg"]  # nothing lost
    assert names(predicted) == []  # and nothing routed
