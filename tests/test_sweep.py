"""The re-drive sweep (inspection/sweep.py), run on the emulators at chosen moments: a stranded image
is published at most once per REDRIVE_AFTER_SECONDS, one held for a person is counted and left alone,
and an unclear image that lost its place in the reviewers' queue gets it back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from inspection import claims, review_index, storage, sweep
from inspection.model.classifiers import NoModel
from inspection.settings import SweepSettings
from tests.helpers import image_bytes, make_function, prediction, push_body

WINDOW_S = 600


@pytest.fixture
def env(deployed_env, make_bucket, topic):
    inbound, predicted = make_bucket("inbound", versioned=True), make_bucket("prediction", versioned=True)
    held = "projects/local/subscriptions/nothing-held"
    deployed_env.pipeline(inbound, predicted, topic, held_subscription=held, redrive_after_s=WINDOW_S)
    from inspection import publishing

    publishing.register_local_held(held, lambda limit: [])
    yield inbound, predicted, topic, SweepSettings.from_env()
    publishing.unregister_local(held)


def sweep_at(settings, when: datetime) -> sweep.SweepReport:
    return sweep.run(settings, NoModel, now=when)


def test_a_stranded_image_is_published_at_most_once_per_window(env):
    """Every sweep used to publish every stranded image again: 444 predictions in 45 s for one image."""
    inbound, _, topic, settings = env
    blob = inbound.blob("line-1/lost.jpeg")
    blob.upload_from_string(image_bytes())
    stranded = blob.time_created + timedelta(seconds=WINDOW_S + 1)
    first = sweep_at(settings, stranded)
    assert (first.stranded, first.redriven, first.skipped) == (1, 1, 0)
    for minutes in (1, 5, 9):  # the sweep runs every few minutes; the image is still there
        again = sweep_at(settings, stranded + timedelta(minutes=minutes))
        assert (again.stranded, again.redriven, again.skipped) == (1, 0, 1)
    assert len(topic.read(expect=2, timeout=2)) == 1
    later = sweep_at(settings, stranded + timedelta(seconds=WINDOW_S + 60))
    assert later.redriven == 1
    assert len(topic.read(expect=1)) == 1


def test_two_sweeps_at_once_publish_once(env):
    import threading

    inbound, _, topic, settings = env
    blob = inbound.blob("line-1/lost.jpeg")
    blob.upload_from_string(image_bytes())
    when = blob.time_created + timedelta(seconds=WINDOW_S + 1)
    reports, start = [], threading.Barrier(3)

    def run():
        start.wait()
        reports.append(sweep_at(settings, when))

    threads = [threading.Thread(target=run) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(r.redriven for r in reports) == [0, 0, 1]
    assert len(topic.read(expect=2, timeout=2)) == 1


def test_an_image_held_for_a_person_is_counted_and_not_published_again(env, caplog):
    inbound, predicted, topic, settings = env
    blob = inbound.blob("line-1/held.jpeg")
    blob.upload_from_string(image_bytes())
    source = storage.ObjectRef(inbound.name, blob.name, blob.generation)
    predicted.blob(claims.claim_name(source)).upload_from_string(b'{"schema": 1, "source": ')
    report = sweep_at(settings, blob.time_created + timedelta(seconds=WINDOW_S + 1))
    assert (report.stranded, report.held_for_people, report.redriven) == (1, 1, 0)
    assert topic.read(expect=1, timeout=1) == []
    assert any(r.getMessage() == "stranded in inbound and held for a person" for r in caplog.records)


def test_an_unclear_image_that_lost_its_queue_entry_gets_it_back(env):
    inbound, predicted, _, settings = env
    blob = inbound.blob("line-1/part.jpeg")
    blob.upload_from_string(image_bytes())
    body = push_body(prediction(inbound.name, blob.name, blob.generation, "ok", 0.6))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    [entry] = list(predicted.list_blobs(prefix=review_index.PREFIX))
    entry.delete()  # lost
    report = sweep_at(settings, datetime.now(UTC))
    assert (report.unclear_waiting, report.requeued) == (1, 1)
    [back] = list(predicted.list_blobs(prefix=review_index.PREFIX))
    assert json.loads(json.dumps(back.metadata))["name"] == "unclear/line-1/part.jpeg"
    assert sweep_at(settings, datetime.now(UTC)).requeued == 0


def test_a_held_move_costs_nothing_per_sweep_until_a_person_releases_it(env, capsys):
    """Issue 30, finding 4: with every name for the copy taken, the claim stayed readable, so every
    window re-drove the image and move held it again: 8 images gave 24 held messages in 2 sweeps.
    The claim now says `held`; the sweep counts it and leaves it alone until `--release`."""
    from scripts import sweep as sweep_cli

    inbound, predicted, topic, settings = env
    blob = inbound.blob("line-1/part.jpeg")
    blob.upload_from_string(image_bytes())
    for name in claims_names(blob):
        predicted.blob(name).upload_from_string(b"someone else's")
    body = push_body(prediction(inbound.name, blob.name, blob.generation, "ok", 0.95))
    assert make_function("move_image", "http").post("/", json=body).status_code == 204
    assert len(topic.read(expect=1)) == 1  # the one dead letter that says why
    stranded = blob.time_created + timedelta(seconds=WINDOW_S + 1)
    for windows in range(4):
        report = sweep_at(settings, stranded + timedelta(seconds=windows * WINDOW_S))
        assert (report.stranded, report.redriven, report.held_for_people) == (1, 0, 1), windows
    assert topic.read(expect=1, timeout=1) == []  # no prediction re-driven, no dead letter again

    predicted.blob(f"ok/{blob.name}").delete()  # a person frees the name the move wanted
    uri = storage.ObjectRef(inbound.name, blob.name, blob.generation).uri
    assert sweep_cli.main(["--release", uri, "--prediction-bucket", predicted.name]) == 0
    assert "released" in capsys.readouterr().out
    report = sweep_at(settings, stranded + timedelta(seconds=5 * WINDOW_S))
    assert (report.redriven, report.held_for_people) == (1, 0)
    [again] = topic.read(expect=1)
    assert json.loads(again.data)["name"] == blob.name  # predicted again; move now finds a free name
    assert sweep_cli.main(["--release", uri, "--prediction-bucket", predicted.name]) == 1


def claims_names(blob) -> list[str]:
    from inspection import layout

    return layout.candidates(f"ok/{blob.name}", blob.generation)
