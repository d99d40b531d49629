"""The predict function, through functions-framework with Eventarc's CloudEvent, against
fake-gcs-server, Google's Pub/Sub emulator, a real ONNX model and a local Vertex stub."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cloudevents.conversion import to_binary
from PIL import Image

from inspection.backends import guard_beside
from scripts.local.vertex import VertexStandIn
from tests.helpers import image_bytes, logged, make_function, storage_event

ENDPOINT = "projects/demo/locations/europe-west4/endpoints/1234"


@pytest.fixture
def vertex():
    stub = VertexStandIn()
    yield stub
    stub.stop()


@pytest.fixture
def buckets(make_bucket, deployed_env, topic):
    inbound, predicted = make_bucket("inbound"), make_bucket("prediction")
    deployed_env(prediction_bucket=predicted.name, inbound_bucket=inbound.name, predictions_topic=topic.path)
    return inbound, predicted, topic


@pytest.fixture
def onnx_predict(buckets, deployed_env, small_model):
    deployed_env(backend="onnx", model=str(small_model), input_guard=guard_beside(str(small_model)))
    return make_function("predict_image", "cloudevent")


@pytest.fixture
def vertex_predict(buckets, deployed_env, vertex, small_model):
    # an endpoint's guard is wherever the stack names it: here, one fitted on the same sample's photos
    deployed_env(
        backend="vertex",
        model=ENDPOINT,
        vertex_api_endpoint=vertex.url,
        input_guard=guard_beside(str(small_model)),
    )
    return make_function("predict_image", "cloudevent")


def deliver(client, blob):
    headers, body = to_binary(storage_event(blob))
    return client.post("/", headers=headers, data=body)


def upload(bucket, name, data):
    blob = bucket.blob(name)
    blob.upload_from_string(data)
    return bucket.get_blob(name)


def test_onnx_backend_publishes_a_complete_prediction(buckets, onnx_predict):
    inbound, _, topic = buckets
    blob = upload(inbound, "line 1/part #1.jpeg", image_bytes(defect="blowhole"))
    assert deliver(onnx_predict, blob).status_code == 200
    [message] = topic.read()
    body = json.loads(message.data)
    assert {"bucket", "name", "generation", "label", "score", "scores", "model", "predicted_at"} <= set(body)
    assert (body["bucket"], body["name"], body["generation"]) == (
        inbound.name,
        blob.name,
        str(blob.generation),
    )
    assert body["label"] in ("ok", "defect")
    assert set(body["scores"]) == {"ok", "defect"}
    assert body["score"] == body["scores"][body["label"]] == max(body["scores"].values())
    assert sum(body["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert body["model"] == "local-geometry-logreg"


def test_vertex_backend_sends_the_documented_request_and_maps_labels(buckets, vertex_predict, vertex):
    inbound, _, topic = buckets
    data = image_bytes("PNG")
    blob = upload(inbound, "v.png", data)
    assert deliver(vertex_predict, blob).status_code == 200
    [request] = vertex.requests
    assert request["path"] == f"/v1/{ENDPOINT}:predict"
    assert base64.b64decode(request["body"]["instances"][0]["content"]) == data
    assert request["body"]["parameters"]["confidenceThreshold"] == 0.0
    body = json.loads(topic.read()[0].data)
    assert (body["label"], body["score"]) == ("defect", 0.82)
    assert body["scores"] == {"defect": 0.82, "ok": 0.18}
    assert body["model"] == f"{ENDPOINT}/deployedModels/777"


def test_vertex_requests_stay_within_its_size_limit(buckets, vertex_predict, vertex):
    import numpy as np

    inbound, _, topic = buckets
    noisy = np.random.default_rng(0).integers(0, 255, (2000, 2000), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="BMP")
    blob = upload(inbound, "huge.bmp", buffer.getvalue())
    assert deliver(vertex_predict, blob).status_code == 200
    sent = vertex.requests[0]["body"]
    assert len(json.dumps(sent)) <= 1_500_000
    Image.open(io.BytesIO(base64.b64decode(sent["instances"][0]["content"]))).load()
    assert len(topic.read()) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_backend_trouble_is_retried_never_rejected(buckets, vertex_predict, vertex, status):
    inbound, predicted, topic = buckets
    vertex.status = status
    blob = upload(inbound, "busy.jpg", image_bytes())
    assert deliver(vertex_predict, blob).status_code == 500
    assert [b.name for b in inbound.list_blobs()] == ["busy.jpg"]
    assert list(predicted.list_blobs()) == []
    assert topic.read(expect=1, timeout=1) == []


def test_a_failed_publish_raises_and_keeps_the_image(buckets, deployed_env, small_model):
    inbound, _, _ = buckets
    deployed_env(
        backend="onnx",
        model=str(small_model),
        input_guard=guard_beside(str(small_model)),
        predictions_topic="projects/local/topics/does-not-exist",
    )
    client = make_function("predict_image", "cloudevent")
    blob = upload(inbound, "keep.jpg", image_bytes())
    assert deliver(client, blob).status_code == 500
    assert [b.name for b in inbound.list_blobs()] == ["keep.jpg"]


def _truncated_jpeg() -> bytes:
    return image_bytes("JPEG")[:1500]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.jpg", b"", "empty"),
        ("notes.txt", b"just text", "not_an_image"),
        ("page.html", b"<html><script>alert(1)</script></html>", "not_an_image"),
        ("cut.jpg", _truncated_jpeg(), "undecodable"),
        ("tiny.png", image_bytes("PNG", size=(16, 16)), "too_small"),
    ],
)
def test_bad_input_is_quarantined_with_its_reason(buckets, onnx_predict, caplog, name, data, reason):
    inbound, predicted, topic = buckets
    blob = upload(inbound, name, data)
    caplog.clear()
    assert deliver(onnx_predict, blob).status_code == 200  # acknowledged, not retried
    assert list(inbound.list_blobs()) == []
    kept = predicted.get_blob(f"rejected/{name}")
    assert kept.download_as_bytes() == data
    assert kept.metadata["rejected_reason"] == reason
    assert kept.metadata["source_generation"] == str(blob.generation)
    errors = logged(caplog, severity="ERROR")
    assert len(errors) == 1 and errors[0]["reason"] == reason and errors[0]["image"] == name
    assert topic.read(expect=1, timeout=1) == []


def test_oversized_objects_are_rejected_without_download(buckets, onnx_predict, monkeypatch):
    inbound, predicted, _ = buckets
    blob = upload(inbound, "big.jpg", image_bytes())
    blob._properties["size"] = str(10**9)  # what the event says; the file itself stays small here
    assert deliver(onnx_predict, blob).status_code == 200
    assert predicted.get_blob("rejected/big.jpg").metadata["rejected_reason"] == "too_large"


@pytest.mark.parametrize(("fmt", "mode"), [("JPEG", "CMYK"), ("PNG", "RGBA"), ("WEBP", "RGB"), ("BMP", "L")])
def test_every_decodable_format_is_classified(buckets, onnx_predict, fmt, mode):
    inbound, _, topic = buckets
    blob = upload(inbound, f"part.{fmt.lower()}", image_bytes(fmt, mode))
    assert deliver(onnx_predict, blob).status_code == 200
    assert json.loads(topic.read()[0].data)["name"] == blob.name


def test_redelivery_after_the_image_moved_on_is_acknowledged_quietly(buckets, onnx_predict):
    inbound, _, topic = buckets
    blob = upload(inbound, "gone.jpg", image_bytes())
    blob.delete()
    assert deliver(onnx_predict, blob).status_code == 200
    assert topic.read(expect=1, timeout=1) == []


def test_importing_the_entrypoints_does_not_pull_aiplatform():
    code = (
        "import os, sys; os.environ.update(PREDICTIONS_TOPIC='projects/p/topics/t', PREDICTION_BUCKET='b',"
        " CLASSIFIER_BACKEND='vertex', VERTEX_ENDPOINT='projects/p/locations/l/endpoints/1',"
        " INPUT_GUARD='none',"
        " PREDICTION_THRESHOLD='0.9', DEAD_LETTER_TOPIC='projects/p/topics/d', INBOUND_BUCKET='i');"
        " sys.path[:0] = ['.', 'functions/predict']; import main;"
        " sys.path[1] = 'functions/move'; del sys.modules['main']; import main;"
        " print([m for m in sys.modules if m.startswith(('google.cloud.aiplatform', 'onnxruntime'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "aiplatform" not in out
    assert "onnxruntime" not in out


def test_day_zero_without_a_model_sends_every_image_to_a_person(buckets, deployed_env):
    """classifierBackend none: predict publishes "a person must decide", and move puts the image in
    unclear/ whatever the threshold, saying why in its metadata."""
    inbound, predicted, topic = buckets
    deployed_env(backend="none")
    predict = make_function("predict_image", "cloudevent")
    blob = inbound.blob("line-1/part-1.jpeg")
    blob.upload_from_string(image_bytes())
    headers, body = to_binary(storage_event(blob))
    assert predict.post("/", headers=headers, data=body).status_code == 200
    [message] = topic.read()
    published = json.loads(message.data)
    assert (published["model"], published["unclear_reason"]) == ("none", "no_model")

    deployed_env(threshold=0.51, dead_letter_topic=topic.path)
    move = make_function("move_image", "http")
    envelope = {"message": {"data": base64.b64encode(message.data).decode(), "messageId": "1"}}
    assert move.post("/", json=envelope).status_code == 204
    [routed] = list(predicted.list_blobs(prefix="unclear/"))
    assert routed.name == "unclear/line-1/part-1.jpeg"
    assert (routed.metadata["model"], routed.metadata["unclear_reason"]) == ("none", "no_model")


def test_a_model_several_requests_open_at_once_is_downloaded_whole(make_bucket, tmp_path):
    """The first requests of a new instance open the model together (a functools.cache does not
    wait for a call in progress); each download goes to its own partial file, so none is renamed
    from under another (seen in the permission trace: FileNotFoundError on the .part file)."""
    import threading

    from inspection.model import files

    bucket = make_bucket("training")
    content = bytes(range(256)) * 4096
    bucket.blob("models/shared/model.onnx").upload_from_string(content)
    uri = f"gs://{bucket.name}/models/shared/model.onnx"
    start, found, failed = threading.Barrier(6), [], []

    def open_it():
        start.wait()
        try:
            found.append(files.local_model_path(uri))
        except Exception as exc:
            failed.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert len(set(found)) == 1 and Path(found[0]).read_bytes() == content


@pytest.mark.parametrize(
    "name", ["claims/0123abcd.json", "review/leases/abc", "review/queue/1-abc", "ok/x.jpg"]
)
def test_an_event_naming_another_buckets_object_is_acknowledged_and_recorded_nowhere(
    buckets, onnx_predict, name, caplog
):
    """Issue 30, finding 2: an event naming a claim in the prediction bucket moved that claim to
    rejected/claims/… and wrote a `rejected` record the report counted. Predict acts on its own
    inbound bucket only."""
    _, predicted, topic = buckets
    blob = upload(predicted, name, b"{}")
    assert deliver(onnx_predict, blob).status_code == 200
    assert [b.name for b in predicted.list_blobs()] == [name]  # untouched, and nothing beside it
    assert predicted.get_blob(name).generation == blob.generation
    assert topic.read(expect=1, timeout=1) == []
    assert [r for r in logged(caplog) if "record" in r] == []
    assert logged(caplog, "not an object of the inbound bucket; ignored")
