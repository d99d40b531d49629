"""The local GCS stand-in answers preconditions as GCS documents; otherwise our lossless tests prove nothing.

Each case here succeeds on bare fake-gcs-server (measured) and must be refused like GCS refuses it.
"""

from __future__ import annotations

import threading

import pytest
from google.api_core import exceptions as gexc


def test_copy_onto_existing_object_with_generation_zero_is_refused(make_bucket):
    bucket = make_bucket()
    bucket.blob("a").upload_from_string(b"first")
    bucket.blob("b").upload_from_string(b"second")
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("b").rewrite(bucket.blob("a"), if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.copy_blob(bucket.blob("a"), bucket, "b", if_generation_match=0)
    assert bucket.blob("b").download_as_bytes() == b"second"


def test_delete_with_stale_generation_is_refused(make_bucket):
    bucket = make_bucket()
    old = bucket.blob("x")
    old.upload_from_string(b"old")
    stale = old.generation
    bucket.blob("x").upload_from_string(b"new")
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("x").delete(if_generation_match=stale)
    assert bucket.blob("x").download_as_bytes() == b"new"


def test_reading_a_replaced_generation_is_not_found(make_bucket):
    bucket = make_bucket()
    blob = bucket.blob("x")
    blob.upload_from_string(b"old")
    stale = blob.generation
    bucket.blob("x").upload_from_string(b"new")
    with pytest.raises(gexc.NotFound):
        bucket.blob("x", generation=stale).download_as_bytes()


def test_copy_of_a_replaced_source_generation_is_not_found(make_bucket):
    bucket = make_bucket()
    blob = bucket.blob("src")
    blob.upload_from_string(b"old")
    stale = blob.generation
    bucket.blob("src").upload_from_string(b"new")
    with pytest.raises(gexc.NotFound):
        bucket.blob("dst").rewrite(bucket.blob("src", generation=stale), if_generation_match=0)


def test_matching_preconditions_pass(make_bucket):
    bucket = make_bucket()
    blob = bucket.blob("a")
    blob.upload_from_string(b"data")
    bucket.blob("b").rewrite(bucket.blob("a", generation=blob.generation), if_generation_match=0)
    bucket.blob("a").delete(if_generation_match=blob.generation)
    assert [b.name for b in bucket.list_blobs()] == ["b"]


def test_upload_onto_existing_object_with_generation_zero_is_refused(make_bucket):
    bucket = make_bucket()
    bucket.blob("a").upload_from_string(b"1")
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("a").upload_from_string(b"2", if_generation_match=0)


def test_finalized_objects_are_reported(fake_gcs, make_bucket):
    bucket = make_bucket()
    seen, done = [], threading.Event()

    def listener(resource):
        if resource["bucket"] == bucket.name:
            seen.append(resource)
            if len(seen) == 2:
                done.set()

    fake_gcs.on_finalize.append(listener)
    try:
        blob = bucket.blob("dir/na me#?.jpg")
        blob.upload_from_string(b"x")
        bucket.blob("copy").rewrite(blob, if_generation_match=0)
        assert done.wait(5)
    finally:
        fake_gcs.on_finalize.remove(listener)
    assert [r["name"] for r in seen] == ["dir/na me#?.jpg", "copy"]
    assert seen[0]["generation"] == str(blob.generation)


# --- object versioning, as GCS documents it (https://cloud.google.com/storage/docs/object-versioning)


def _two_generations(bucket, name="snap.jpg"):
    first = bucket.blob(name)
    first.upload_from_string(b"first")
    second = bucket.blob(name)
    second.upload_from_string(b"second")
    return first.generation, second.generation


def test_a_versioned_bucket_serves_and_copies_a_noncurrent_generation(make_bucket):
    bucket = make_bucket(versioned=True)
    old, _ = _two_generations(bucket)
    assert bucket.blob("snap.jpg", generation=old).download_as_bytes() == b"first"
    bucket.blob("copy").rewrite(bucket.blob("snap.jpg", generation=old), if_generation_match=0)
    assert bucket.blob("copy").download_as_bytes() == b"first"


def test_deleting_a_noncurrent_generation_deletes_exactly_it(make_bucket):
    """Bare fake-gcs-server deletes the live object here (measured)."""
    bucket = make_bucket(versioned=True)
    old, new = _two_generations(bucket)
    bucket.blob("snap.jpg", generation=old).delete()
    assert bucket.get_blob("snap.jpg").generation == new
    with pytest.raises(gexc.NotFound):
        bucket.blob("snap.jpg", generation=old).download_as_bytes()
    with pytest.raises(gexc.NotFound):
        bucket.blob("snap.jpg", generation=old).delete()


def test_deleting_the_live_generation_by_number_leaves_no_noncurrent_copy(make_bucket):
    bucket = make_bucket(versioned=True)
    old, new = _two_generations(bucket)
    bucket.blob("snap.jpg", generation=new).delete()
    assert bucket.get_blob("snap.jpg") is None
    with pytest.raises(gexc.NotFound):
        bucket.blob("snap.jpg", generation=new).download_as_bytes()
    assert bucket.blob("snap.jpg", generation=old).download_as_bytes() == b"first"


def test_a_versions_listing_includes_noncurrent_generations(make_bucket, gcs_client):
    bucket = make_bucket(versioned=True)
    old, new = _two_generations(bucket)
    listed = sorted((b.name, b.generation) for b in gcs_client.list_blobs(bucket, versions=True))
    assert listed == [("snap.jpg", old), ("snap.jpg", new)]
    assert [(b.name, b.generation) for b in gcs_client.list_blobs(bucket)] == [("snap.jpg", new)]


# --- the object-name rules GCS applies (https://cloud.google.com/storage/docs/naming-objects) -------


@pytest.mark.parametrize(
    "name",
    [
        "x" * 1025,
        "é" * 513,
        "line\nfeed.jpg",
        "carriage\rreturn.jpg",
        ".",
        "..",
        ".well-known/acme-challenge/t",
    ],
    ids=["1025 bytes", "1026 bytes of UTF-8", "line feed", "carriage return", "dot", "dot-dot", "acme"],
)
def test_a_name_gcs_refuses_is_refused_on_upload_and_as_a_copy(make_bucket, name):
    """fake-gcs-server stores these (measured); GCS refuses them, so the local stack must too."""
    bucket = make_bucket()
    with pytest.raises(gexc.BadRequest):
        bucket.blob(name).upload_from_string(b"x")
    bucket.blob("source").upload_from_string(b"x")
    with pytest.raises(gexc.BadRequest):
        bucket.blob(name).rewrite(bucket.blob("source"))
    assert [b.name for b in bucket.list_blobs()] == ["source"]


def test_a_name_of_exactly_1024_bytes_is_stored(make_bucket):
    bucket = make_bucket()
    name = "line-1/" + "ü" * 508 + "x"  # 7 + 1016 + 1 bytes
    assert len(name.encode()) == 1024
    bucket.blob(name).upload_from_string(b"x")
    assert bucket.get_blob(name) is not None


def test_a_client_that_dies_mid_upload_does_not_stall_everyone_else(make_bucket, fake_gcs):
    """The proxy used to forward the short body while holding its one write lock; the emulator
    then waited 60 s for the rest, and every other write waited with it."""
    import socket

    bucket = make_bucket()
    host, port = fake_gcs.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as dying:
        dying.sendall(
            f"POST /upload/storage/v1/b/{bucket.name}/o?uploadType=media&name=half HTTP/1.1\r\n"
            f"Host: {host}\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n".encode()
            + b"\xff\xd8" * 100
        )
    # Not retried, and bounded: before, this upload waited the emulator's 60 s behind the dead one.
    bucket.blob("after").upload_from_string(b"next camera", timeout=10, retry=None)
    assert [b.name for b in bucket.list_blobs()] == ["after"]


def test_the_proxy_asks_the_emulator_again_only_for_what_a_request_names(make_bucket, fake_gcs, monkeypatch):
    """Every request to fake-gcs-server scans its bucket (docs/measurements.md), so a read, copy or
    delete without preconditions or a generation is forwarded as is; with them, it is checked."""
    bucket = make_bucket()
    blob = bucket.blob("a.jpeg")
    blob.upload_from_string(b"x")
    asked: list[str] = []
    forward = type(fake_gcs).upstream

    def counted(self, method, path, *args, **kwargs):
        asked.append(f"{method} {path}")
        return forward(self, method, path, *args, **kwargs)

    monkeypatch.setattr(type(fake_gcs), "upstream", counted)
    bucket.get_blob("a.jpeg")
    bucket.copy_blob(blob, bucket, "b.jpeg")
    bucket.delete_blob("b.jpeg")
    assert len(asked) == 3  # one forward each
    asked.clear()
    bucket.get_blob("a.jpeg", generation=blob.generation)
    assert len(asked) == 1  # the check read the very answer
    asked.clear()
    bucket.get_blob("a.jpeg", generation=blob.generation).download_as_bytes()
    # the check that answered, then the bytes, through the proxy: the answer's link names it
    assert asked == [asked[0], f"GET /download/storage/v1/b/{bucket.name}/o/a.jpeg?alt=media"], asked
    asked.clear()
    bucket.delete_blob("a.jpeg", if_generation_match=blob.generation)
    assert len(asked) == 2  # the check, then the forward
    asked.clear()
    blob.upload_from_string(b"y")
    asked.clear()
    bucket.delete_blob("a.jpeg", generation=blob.generation)
    assert len(asked) == 2  # the check, then the forward: the live object is read once


def test_requests_side_by_side_are_one_round_trip_and_their_storage_time_counts_once(make_bucket, fake_gcs):
    """What `make bench` takes for our own side is the call's time with no storage request in
    flight. A sum of request times counted two side by side twice, so storage exceeded the wall
    time and our side read low, or below zero (review_next_own_ms_median: 5.0 at 100 queued, 3.2
    at 10,000, for the same four requests)."""
    from inspection import storage

    bucket = make_bucket()
    bucket.blob("a").upload_from_string(b"a")
    bucket.blob("b").upload_from_string(b"b")
    fake_gcs.latency_s = 0.2
    try:
        together = fake_gcs.observe(
            lambda: storage.at_once(lambda: bucket.get_blob("a"), lambda: bucket.get_blob("b"))
        )
        in_turn = fake_gcs.observe(lambda: (bucket.get_blob("a"), bucket.get_blob("b")))
    finally:
        fake_gcs.latency_s = 0.0
    assert (together.requests, together.round_trips) == (2, 1)
    assert (in_turn.requests, in_turn.round_trips) == (2, 2)
    for seen in (together, in_turn):
        assert [blob.name for blob in seen.result] == ["a", "b"]
        assert seen.storage_s <= seen.wall_s  # so our side, the rest, is never below zero
    assert 0.2 <= together.storage_s < 0.35
    assert in_turn.storage_s >= 0.4
