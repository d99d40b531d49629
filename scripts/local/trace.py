"""The permission trace: every call each deployable makes, recorded while a fixed workload drives
all of them on the emulators, under the example stack's names (Pulumi.dev.yaml).

The workload is the pipeline as `make demo --once` runs it (the real predict, move and sweep
handlers, Pub/Sub, Eventarc's stand-in), plus each path the demo does not take on its own: a file
that is not a photo, a name no reviewer could open, a photo replaced in inbound, one prediction
delivered twice at once, a redelivery, a malformed message, a stranded photo, a dead letter to
replay and one to keep, a lost queue entry; the review app's lease, prefetch, show, renew, skip,
release, decide and undo; the audit page and its CSV; and predict against a Vertex AI endpoint.

Cloud Storage requests are recorded by the emulator's proxy (scripts/local/gcs.py) with the
deployable that made them (its User-Agent) and the line of our code (`x-qi-origin`); the other
services' calls by inspection/calls.py. What the harness itself does (a camera uploading, the test
inspecting a bucket) acts as LOCAL and is not anyone's to grant.

    .venv/bin/python -m scripts.iam_trace       runs it, checks it, and writes docs/iam-trace.json
"""

from __future__ import annotations

import base64
import contextlib
import csv
import html
import io
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inspection import calls, layout

LOCAL = "local"  # the harness: the camera, Eventarc's and Scheduler's stand-ins, inspection


@dataclass(frozen=True, order=True)
class Traced:
    """One call: who made it, the API method, the resource it names (a copy's destination), a
    copy's source, whether a write replaced a live object, and where in our code it was made."""

    deployable: str
    method: str
    resource: str
    source: str = ""
    overwrote: bool = False
    origin: str = ""
    setting: str = ""  # the stack setting it ran under (scripts/program/mocks.py VARIANTS): onnx, vertex


def _object(bucket: str, name: str) -> str:
    return f"projects/_/buckets/{bucket}/objects/{name}"


def from_storage(call, setting: str = "") -> Traced:
    """A request the proxy recorded, as a trace entry."""
    deployable, origin = call.caller or LOCAL, call.origin
    if call.signed:  # a browser showing a photo: authorised by the signature of the service that signed it
        deployable, origin = call.caller, f"a browser, with a URL the {call.caller} service signed"
    method = call.method
    if method in ("objects.rewrite", "objects.copy", "objects.compose"):
        source = _object(call.bucket, call.name) if method != "objects.compose" else ""
        target = _object(call.destination_bucket, call.destination)
        return Traced(deployable, method, target, source, call.overwrote, origin, setting)
    if method.startswith("objects.") and method != "objects.list":
        target = _object(call.bucket, call.name)
        return Traced(deployable, method, target, "", call.overwrote, origin, setting)
    return Traced(deployable, method, f"projects/_/buckets/{call.bucket}", origin=origin, setting=setting)


class Recorder:
    """Records what the adapters report (inspection/calls.py) and, on `collect`, what the proxy saw."""

    def __init__(self):
        self.traced: list[Traced] = []
        self.setting = ""
        self._lock = threading.Lock()

    def __call__(self, deployable: str, method: str, resource: str, origin: str, detail: dict) -> None:
        with self._lock:
            self.traced.append(Traced(deployable, method, resource, origin=origin, setting=self.setting))

    @contextlib.contextmanager
    def installed(self, gcs, setting: str) -> Iterator[Recorder]:
        """Record everything from here to the end of the block, as made under `setting`."""
        from inspection import storage

        self.setting = setting
        gcs.trace = []
        calls.install(self)
        storage.client.cache_clear()  # clients made from now on tell the proxy where they are called
        try:
            yield self
        finally:
            calls.install(None)
            storage.client.cache_clear()
            self.traced += [from_storage(c, setting) for c in gcs.trace]
            gcs.trace = None

    def calls(self) -> list[Traced]:
        return sorted(set(self.traced))


# --- the workload ---------------------------------------------------------------------------------


def run(workdir: Path | None = None) -> list[Traced]:
    """Drive every deployable through its paths; returns every call made (the harness's too)."""
    from scripts.program.mocks import MODEL_ANOMALY, MODEL_ONNX, VERTEX_ENDPOINT, VERTEX_GUARD, dev_config

    config = dev_config()
    prefix, project = config["quality-inspection:prefix"], config["gcp:project"]
    names = _Names(prefix, project)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qi-trace-")))
        model, anomaly_model = _small_model(workdir), _anomaly_model(workdir)
        saved = dict(os.environ)
        stack.callback(lambda: (os.environ.clear(), os.environ.update(saved)))
        models = {MODEL_ONNX: model, MODEL_ANOMALY: anomaly_model}
        return _drive(names, models, VERTEX_ENDPOINT, VERTEX_GUARD, workdir)


@dataclass(frozen=True)
class _Names:
    prefix: str
    project: str

    @property
    def inbound(self) -> str:
        return f"{self.prefix}-inbound"

    @property
    def prediction(self) -> str:
        return f"{self.prefix}-prediction"

    @property
    def training(self) -> str:
        return f"{self.prefix}-training"

    @property
    def predictions(self) -> str:
        return f"projects/{self.project}/topics/{self.prefix}-predictions"

    @property
    def dead_letter(self) -> str:
        return f"projects/{self.project}/topics/{self.prefix}-predictions-dead-letter"


def _small_model(workdir: Path) -> Path:
    from scripts.training import sample_data, train_local

    root = workdir / "sample"
    sample_data.generate(root, train=40, test=4, seed=7)
    model = workdir / "model.onnx"
    train_local.train(root, model, threshold=0.9)
    return model


def _anomaly_model(workdir: Path) -> Path:
    """An anomaly model of the sample's good parts, beside the classifier (the stack's anomalyModel)."""
    from scripts.training import train_anomaly

    model = workdir / "anomaly.npz"
    train_anomaly.fit([str(workdir / "sample" / "train" / "ok_front")], str(model))
    return model


def _photo(seed: int, defect: bool = False, unusual: bool = False) -> bytes:
    """A cast part as the sample draws it; `unusual`: smaller than any the model learned from, so
    the input guard sends it to a person."""
    import numpy as np

    from scripts.training.sample_data import draw_part

    image = draw_part(np.random.default_rng(seed), "crack" if defect else None, False)
    if unusual:
        image = image.resize((image.width // 2, image.height // 2))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _drive(
    names: _Names, models: dict[str, Path], endpoint_id: str, endpoint_guard: str, workdir: Path
) -> list[Traced]:
    """`models`: where the stack's models live (the classifier's first) → the local files; the
    endpoint's guard is where the vertex stack keeps it."""
    from inspection import backends, storage
    from scripts.local.stack import LocalStack, StackConfig

    onnx, anomaly = backends.BACKENDS["onnx"], backends.BACKENDS[backends.SECOND_OPINION]
    model_uri, anomaly_uri = models
    config = StackConfig(
        model_path=models[model_uri],
        inbound_bucket=names.inbound,
        prediction_bucket=names.prediction,
        training_bucket=names.training,
        predictions_topic=names.predictions,
        dead_letter_topic=names.dead_letter,
        use_emulator=False,  # the same calls either way; in-process is quicker and always there
        redrive_after_s=1,
        records_dir=workdir / "records",
        # predict and the sweep download both, as in the cloud
        extra_env={
            onnx.variable: model_uri,
            anomaly.variable: anomaly_uri,
            "INPUT_GUARD": backends.guard_beside(model_uri),
        },
    )
    recorder = Recorder()
    with LocalStack(config) as stack:
        with calls.acting_as(LOCAL):
            for uri, model in models.items():
                bucket_path, model_name = layout.split_gs_uri(uri)
                training = storage.client().bucket(bucket_path)
                training.blob(model_name).upload_from_filename(str(model))
                guard = Path(backends.guard_beside(str(model)))
                training.blob(backends.guard_beside(model_name)).upload_from_filename(str(guard))
                card = model.with_name("card.json")
                if card.exists() and uri == model_uri:
                    training.blob(model_name.rpartition("/")[0] + "/card.json").upload_from_filename(
                        str(card)
                    )
        with recorder.installed(stack.gcs, "onnx and anomaly"):
            _pipeline(stack, names)
            _move_paths(stack, names)
            _sweep_paths(stack, names)
            _review_paths(stack, names)
        with recorder.installed(stack.gcs, "vertex"):
            _vertex(stack, names, endpoint_id, endpoint_guard, backends.guard_beside(str(models[model_uri])))
    return recorder.calls()


def _upload(stack, names: _Names, files: dict[str, bytes]) -> None:
    from inspection import storage

    with calls.acting_as(LOCAL):
        inbound = storage.client().bucket(names.inbound)
        for name, data in files.items():
            inbound.blob(name).upload_from_string(data)


def _settled(stack, names: _Names, timeout: float = 60.0) -> None:
    """Until inbound is empty and every queued push is done."""
    from inspection import storage

    deadline = time.monotonic() + timeout
    with calls.acting_as(LOCAL):
        while list(storage.client().list_blobs(names.inbound, max_results=1)):
            if time.monotonic() > deadline:
                raise RuntimeError("the trace's workload did not settle: inbound still holds photos")
            time.sleep(0.1)
    time.sleep(0.3)  # the last move's record and claim are written after its source is gone


def _pipeline(stack, names: _Names) -> None:
    """The demo's path, and the photos predict must refuse or quarantine."""
    _upload(
        stack,
        names,
        {
            **{f"line-1/part-{n}.jpeg": _photo(n, defect=n % 2 == 1) for n in range(4)},
            **{f"line-2/small-{n}.jpeg": _photo(n, unusual=True) for n in range(4)},
            "line-1/notes.txt": b"shift report: nothing to see here\n",
            "line-9/\u202egepj.7-trap": _photo(99),  # displays as line-9/part-7.jpeg
        },
    )
    _settled(stack, names)
    _redelivered_after_set_aside(stack, names, "line-1/notes.txt")
    # The camera sends the same name again: a new generation, routed beside the first.
    _upload(stack, names, {"line-1/part-0.jpeg": _photo(100)})
    _settled(stack, names)


def _redelivered_after_set_aside(stack, names: _Names, name: str) -> None:
    """Eventarc delivers a file's event again after predict set the file aside: the generation is
    gone, and predict reads the claim the first delivery left to finish its work, if unfinished."""
    import requests

    from inspection import metadata, storage
    from scripts.local.events import cloud_event_headers

    with calls.acting_as(LOCAL):
        [kept] = [
            b
            for b in storage.client().list_blobs(names.prediction, prefix=f"{layout.REJECTED}/")
            if (b.metadata or {}).get(metadata.SOURCE_NAME) == name
        ]
    resource = {
        **kept._properties,
        "bucket": names.inbound,
        "name": name,
        "generation": kept.metadata[metadata.SOURCE_GENERATION],
    }
    answer = requests.post(
        stack.bridge.endpoint, json=resource, headers=cloud_event_headers(resource), timeout=60
    )
    assert answer.status_code < 300, answer.text[:200]


def _push(stack, body: dict) -> int:
    import requests

    return requests.post(stack.move.url, json=body, timeout=30).status_code


def _envelope(data: bytes, attributes: dict | None = None) -> dict:
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": "7",
            "attributes": attributes or {},
        },
        "subscription": "projects/local/subscriptions/push",
    }


def _move_paths(stack, names: _Names) -> None:
    """A redelivery of a finished move, one prediction delivered twice at once, a malformed message."""
    from datetime import UTC, datetime

    from inspection import storage

    with calls.acting_as(LOCAL):
        moved = next(
            b
            for b in storage.client().list_blobs(names.prediction, prefix="claims/")
            if json.loads(b.download_as_bytes()).get("state") == "done"
        )
    claim = json.loads(moved.download_as_bytes())
    bucket, name = claim["source"].removeprefix("gs://").split("/", 1)
    name, _, generation = name.partition("#")
    redelivery = {
        "bucket": bucket,
        "name": name,
        "generation": int(generation),
        "label": "ok",
        "score": 0.99,
        "scores": {"ok": 0.99, "defect": 0.01},
        "model": "trace",
        "predicted_at": datetime.now(UTC).isoformat(),
    }
    assert _push(stack, _envelope(json.dumps(redelivery).encode())) in (200, 204)

    # Two deliveries of one prediction at once: the second's claim lands first, the first finds it.
    stack.gcs.on_finalize.clear()  # Eventarc does not announce this one; the test delivers it
    _upload(stack, names, {"line-2/twice.jpeg": _photo(7)})
    with calls.acting_as(LOCAL):
        blob = storage.client().bucket(names.inbound).get_blob("line-2/twice.jpeg")
    prediction = {**redelivery, "name": blob.name, "generation": blob.generation}
    body = _envelope(json.dumps(prediction).encode())
    held, released = threading.Event(), threading.Event()

    def hold_first_claim(call, phase):
        claim = phase == "before" and call.method == "objects.insert" and call.name.startswith("claims/")
        if claim and not held.is_set():
            held.set()
            released.wait(10)
        return None

    stack.gcs.hooks.append(hold_first_claim)
    try:
        first = threading.Thread(target=_push, args=(stack, body))
        first.start()
        held.wait(10)
        _push(stack, body)  # the second delivery claims and moves it
        released.set()
        first.join(30)
    finally:
        stack.gcs.hooks.remove(hold_first_claim)
        stack.gcs.on_finalize.append(stack.bridge)
    assert _push(stack, _envelope(b"{not json")) in (200, 204)  # dead-lettered by move itself


def _sweep_paths(stack, names: _Names) -> None:
    """A stranded photo, a dead letter to replay, the malformed one to keep, a lost queue entry."""
    from datetime import UTC, datetime

    from inspection import publishing, review_index, storage

    stack.gcs.on_finalize.clear()  # Eventarc never tells predict about these
    _upload(stack, names, {"line-3/stranded.jpeg": _photo(3), "line-3/stranded.txt": b"not a photo"})
    with calls.acting_as(LOCAL):
        stranded = storage.client().bucket(names.inbound).get_blob("line-3/stranded.jpeg")
        replay = {
            "bucket": names.inbound,
            "name": "line-3/dead.jpeg",
            "generation": 1,
            "label": "ok",
            "score": 0.99,
            "scores": {"ok": 0.99, "defect": 0.01},
            "model": "trace",
            "predicted_at": datetime.now(UTC).isoformat(),
        }
        publishing.publish(names.dead_letter, json.dumps(replay).encode())
        # A queue entry lost: the sweep gives the image its place back.
        unclear = next(iter(storage.client().list_blobs(names.prediction, prefix="unclear/")), None)
        if unclear is not None:
            for entry in storage.client().list_blobs(names.prediction, prefix=review_index.PREFIX):
                found = review_index.of_blob(names.prediction, entry)
                if found is not None and found.name == unclear.name:
                    entry.delete()
    stack.gcs.on_finalize.append(stack.bridge)
    time.sleep(1.1)  # older than redrive_after_s
    assert stranded is not None
    stack.sweep()
    _settled(stack, names)


def _review_paths(stack, names: _Names) -> None:
    """One reviewer's session through the app, and an auditor's."""
    from review_app import create_app

    app = create_app(
        {
            "PREDICTION_BUCKET": names.prediction,
            "REVIEW_AUTH": "local",
            "RECORDS": str(stack.records_dir),
        }
    )
    client = app.test_client()
    assert client.get("/").status_code == 200
    csrf = client.get_cookie("qi_csrf").value

    def post(path: str, body: dict):
        return client.post(path, json={"tab": "trace", **body}, headers={"X-CSRF-Token": csrf})

    item = post("/api/next", {"kind": "view", "exclude": []}).get_json()
    upcoming = post("/api/next", {"kind": "prefetch", "exclude": [item["name"]]}).get_json()
    _show_photo(item["url"])
    assert item["heatmap_url"], "the unclear photos carry the anomaly map predict kept"
    _show_photo(item["heatmap_url"])
    post("/api/renew", {"name": item["name"], "generation": item["generation"]})
    post("/api/skip", {"name": item["name"]})
    if not upcoming.get("empty"):
        post("/api/show", {"name": upcoming["name"], "generation": upcoming["generation"]})
        decision = post(
            "/api/decide", {"name": upcoming["name"], "generation": upcoming["generation"], "label": "defect"}
        ).get_json()
        post("/api/undo", {"decision": decision["name"], "generation": decision["generation"]})
        again = post("/api/next", {"kind": "view", "exclude": []}).get_json()
        post("/api/decide", {"name": again["name"], "generation": again["generation"], "label": "ok"})
    last = post("/api/next", {"kind": "view", "exclude": []}).get_json()
    if not last.get("empty"):
        client.post("/api/release", data={"csrf_token": csrf, "tab": "trace", "name": last["name"]})
    stack.sink.flush()
    assert client.get("/audit").status_code == 200
    audit_csv = client.get("/audit.csv")
    assert audit_csv.status_code == 200
    rows = list(csv.DictReader(io.StringIO(audit_csv.get_data(as_text=True).lstrip("\ufeff"))))
    # the last decision with a map stands (the first was undone: its photo is back in unclear/)
    decided = [row for row in rows if row["event"] == "decision" and row["heatmap"]][-1]
    page = client.get(
        "/audit/photo", query_string={"object": decided["object"], "heatmap": decided["heatmap"]}
    )
    for url in re.findall(r'src="(http[^"]+)"', page.get_data(as_text=True)):
        _show_photo(html.unescape(url))


def _show_photo(url: str) -> None:
    import requests

    response = requests.get(url, timeout=10, headers={"User-Agent": "a browser"})
    assert response.status_code == 200, (url, response.status_code, response.text[:200])


def _vertex(stack, names: _Names, endpoint_id: str, guard_uri: str, guard_file: str) -> None:
    """Predict with an AutoML model on a Vertex AI endpoint (a stand-in that speaks its API), behind
    the guard the stack names for it."""
    from cloudevents.conversion import to_binary
    from cloudevents.http import CloudEvent

    from inspection import backends, storage
    from scripts.local import handlers
    from scripts.local.vertex import VertexStandIn

    region = "europe-west4"
    endpoint = f"projects/{names.project}/locations/{region}/endpoints/{endpoint_id}"
    stand_in = VertexStandIn()
    try:
        os.environ.pop(
            backends.BACKENDS[backends.SECOND_OPINION].variable, None
        )  # the example stack's vertex
        os.environ.update(
            {
                "CLASSIFIER_BACKEND": "vertex",
                backends.BACKENDS["vertex"].variable: endpoint,
                "VERTEX_API_ENDPOINT": stand_in.url,
                "INPUT_GUARD": guard_uri,
            }
        )
        with calls.acting_as(LOCAL):
            bucket, name = layout.split_gs_uri(guard_uri)
            storage.client().bucket(bucket).blob(name).upload_from_filename(guard_file)
        predict = handlers.create_app("predict").test_client()
        stack.gcs.on_finalize.clear()
        _upload(stack, names, {"line-4/vertex.jpeg": _photo(4)})
        with calls.acting_as(LOCAL):
            blob = storage.client().bucket(names.inbound).get_blob("line-4/vertex.jpeg")
        event = CloudEvent(
            {
                "type": "google.cloud.storage.object.v1.finalized",
                "source": f"//storage.googleapis.com/projects/_/buckets/{names.inbound}",
                "subject": f"objects/{blob.name}",
            },
            dict(blob._properties),
        )
        headers, body = to_binary(event)
        assert predict.post("/", headers=headers, data=body).status_code == 200
        # The sweep finishes predict's work for a photo Eventarc never announced: it asks the same
        # endpoint, as its own account.
        sweep = handlers.create_app("sweep").test_client()
        _upload(stack, names, {"line-4/vertex-stranded.jpeg": _photo(5)})
        time.sleep(1.1)  # older than redrive_after_s
        assert sweep.post("/").status_code == 200
        stack.gcs.on_finalize.append(stack.bridge)
        _settled(stack, names)
    finally:
        stand_in.stop()
