"""Backfill of an archive: 1,000 photos on the storage emulator, routed as predict routes them,
never into the reviewers' queue, with the storage requests its estimate counts; a shard killed half
way while another runs is finished by the next run, with nothing doubled; a rerun of a finished
batch writes nothing. A Vertex model's batch prediction job, against a stand-in of its API."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from inspection import predicting, routing, storage
from inspection.backends import guard_beside
from inspection.labels import LabelMap
from inspection.model import classifiers, images
from scripts import backfill
from scripts.local.standin import StandIn
from scripts.training import unfamiliar
from scripts.training.sample_data import draw_part
from tests.faults import hook

pytestmark = pytest.mark.emulator

PHOTOS = 1_000


def photo(index: int) -> bytes:
    """A cast part like the sample's (the small model's card knows their size and light)."""
    rng = np.random.default_rng(index)
    image = draw_part(rng, ("crack", "blowhole", None, None)[index % 4], False)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos():
    return [photo(i) for i in range(PHOTOS)]


@pytest.fixture(scope="module")
def archive(fake_gcs, photos):
    """The archive, uploaded once for the module: backfills only read it."""
    from concurrent.futures import ThreadPoolExecutor

    bucket = storage.client().create_bucket(f"test-archive-{os.getpid()}")

    def put(index: int) -> None:
        bucket.blob(f"2024/line-{index % 3 + 1}/part-{index:04d}.jpeg").upload_from_string(photos[index])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(PHOTOS)))
    return bucket


@pytest.fixture
def plant(archive, make_bucket):
    return archive, make_bucket("prediction", versioned=True)


def expected_folders(photos, model) -> dict[str, str]:
    """What predict's own assessment and move's rule decide for each photo."""
    classifier = classifiers.open_model("onnx", str(model), input_guard=guard_beside(str(model)))
    found = {}
    for index, data in enumerate(photos):
        assessment = predicting.assess(images.load(data), classifier, LabelMap())
        prediction = assessment.prediction(storage.ObjectRef("a", "x", 1))
        found[f"2024/line-{index % 3 + 1}/part-{index:04d}.jpeg"] = routing.folder_for(prediction, 0.9)
    return found


def copies(bucket, batch: str) -> dict[str, list[str]]:
    """archive name → the backfill folders holding a copy of it."""
    found: dict[str, list[str]] = {}
    for blob in bucket.list_blobs(prefix=f"backfill/{batch}/"):
        parts = blob.name.split("/", 3)
        if parts[2] in ("ok", "defect", "unclear", "rejected"):
            found.setdefault(parts[3], []).append(parts[2])
    return found


def command(archive, predicted, model, batch: str = "archive-2024", prefix: str = "2024") -> list[str]:
    return [
        f"gs://{archive.name}/{prefix}",
        "--batch",
        batch,
        "--prediction-bucket",
        predicted.name,
        "--model",
        str(model),
        "--threshold",
        "0.9",
        "--workers",
        "4",
        "--yes",
    ]


def test_an_archive_is_routed_as_predict_routes_it_and_a_rerun_writes_nothing(
    plant, photos, small_model, fake_gcs, capsys
):
    archive, predicted = plant
    before = {b.name: b.generation for b in archive.list_blobs()}
    # A fresh client, as the command has: google-cloud-storage checks, after each 404, that a bucket
    # it has fetched still exists, and this process's client fetched both when it created them.
    storage.client.cache_clear()
    fake_gcs.trace = []
    assert backfill.main(command(archive, predicted, small_model)) == 0
    per_image = Counter(
        c.method
        for c in fake_gcs.trace
        if c.method != "objects.list" and "/summary.json" not in c.name and "/report.html" not in c.name
    )
    fake_gcs.trace = None
    assert {method: n / PHOTOS for method, n in per_image.items()} == backfill.STORAGE_PER_IMAGE
    printed = capsys.readouterr().out
    assert f"{PHOTOS:,} images to classify" in printed and "Class A" in printed, "the estimate comes first"

    found = copies(predicted, "archive-2024")
    wanted = expected_folders(photos, small_model)
    assert {name: folders for name, folders in found.items()} == {name: [f] for name, f in wanted.items()}
    assert Counter(wanted.values())["ok"] and Counter(wanted.values())["unclear"], "a mix, not one folder"
    assert {b.name: b.generation for b in archive.list_blobs()} == before, "the archive is never changed"
    assert not list(predicted.list_blobs(prefix="unclear/")) and not list(
        predicted.list_blobs(prefix="review/")
    )
    summary = json.loads(predicted.blob("backfill/archive-2024/summary.json").download_as_bytes())
    assert summary["images"] == summary["this_run"] == PHOTOS
    assert summary["by_folder"] == dict(Counter(wanted.values()))
    report = predicted.blob("backfill/archive-2024/report.html").download_as_text()
    assert "line-1" in report and "line-3" in report

    fake_gcs.trace = []
    assert backfill.main(command(archive, predicted, small_model)) == 0
    writes = [
        c
        for c in fake_gcs.trace
        if c.writes and "/summary.json" not in c.name and "/report.html" not in c.name
    ]
    fake_gcs.trace = None
    assert writes == [], "a finished batch is read from its claims, not classified or copied again"
    again = json.loads(predicted.blob("backfill/archive-2024/summary.json").download_as_bytes())
    assert again["images"] == PHOTOS and again["this_run"] == 0 and again["by_folder"] == summary["by_folder"]


def test_shards_share_an_archive_and_a_shard_killed_half_way_is_finished_by_the_next_run(
    plant, small_model, fake_gcs, tmp_path
):
    """Two real processes, shards 0/2 and 1/2 of line 1, as two tasks of a Cloud Run job; shard 0 is
    killed by SIGKILL right after its 100th copy took effect."""
    archive, predicted = plant
    line = [b for b in archive.list_blobs(prefix="2024/line-1/")]
    first = {b.name for b in backfill.shard(line, 0, 2)}
    assert 100 < len(first) < len(line) and not first & {b.name for b in backfill.shard(line, 1, 2)}
    env = {**os.environ, "STORAGE_EMULATOR_HOST": fake_gcs.url, "TQDM_DISABLE": "1"}
    run = [
        sys.executable,
        "-m",
        "scripts.backfill",
        *command(archive, predicted, small_model, "killed", "2024/line-1"),
    ]
    copied, shards = [], []

    def kill_after(call, phase):
        if phase == "after" and call.method == "objects.rewrite" and call.name in first:
            copied.append(call)
            if len(copied) == 100:
                os.kill(shards[0].pid, signal.SIGKILL)

    errors = [tmp_path / f"shard-{i}.stderr" for i in range(2)]  # files, not pipes: they never fill up
    with contextlib.ExitStack() as files, hook(fake_gcs, kill_after):
        for i in range(2):
            shards.append(
                subprocess.Popen(
                    run,
                    env={**env, "CLOUD_RUN_TASK_INDEX": str(i), "CLOUD_RUN_TASK_COUNT": "2"},
                    stdout=subprocess.DEVNULL,
                    stderr=files.enter_context(errors[i].open("wb")),
                )
            )
        for process in shards:
            process.wait(timeout=300)
    assert shards[0].returncode == -signal.SIGKILL
    assert shards[1].returncode == 0, errors[1].read_text()[-2000:]
    half = copies(predicted, "killed")
    assert len(line) - len(first) + 100 <= len(half) < len(line)
    again = subprocess.run([*run, "--shard", "0/2"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    found = copies(predicted, "killed")
    assert sorted(found) == sorted(b.name for b in line) and all(len(f) == 1 for f in found.values())
    summary = json.loads(predicted.blob("backfill/killed/summary.json").download_as_bytes())
    assert summary["images"] == len(line) and summary["pending"] == 0, "the last shard to finish sees all"
    assert sum(summary["by_folder"].values()) == len(line)


# --- Vertex AI: a batch prediction job on the Model --------------------------------------------------------


class JobServiceStub(StandIn):
    """The two v1 REST calls of a batch prediction job, as Vertex documents them; the job writes its
    predictions as JSONL into the output folder it names."""

    P = "projects/demo/locations/europe-west4"

    def __init__(self, bucket):
        self.bucket, self.created = bucket, []
        super().__init__({("POST", f"/v1/{self.P}/batchPredictionJobs"): self._create})

    def route(self, method: str, path: str):
        return super().route(method, path) or (self._state if method == "GET" else None)

    def _create(self, body: dict):
        self.created.append(body)
        return 200, self.run(body)

    def _state(self, body):
        return 200, {
            "name": f"{self.P}/batchPredictionJobs/7",
            "state": "JOB_STATE_SUCCEEDED",
            "outputInfo": {"gcsOutputDirectory": self.output},
        }

    def run(self, body: dict) -> dict:
        """Answer every instance: a name with a 7 in it is a defect, the rest ok."""
        [source] = body["inputConfig"]["gcsSource"]["uris"]
        prefix = body["outputConfig"]["gcsDestination"]["outputUriPrefix"]
        self.output = f"{prefix}/prediction-model-2026_11_29T10_00_00"
        bucket_name, input_name = source.removeprefix("gs://").split("/", 1)
        lines = self.bucket.client.bucket(bucket_name).blob(input_name).download_as_text().splitlines()
        out = []
        for line in lines:
            instance = json.loads(line)
            defect = "7" in instance["content"].rsplit("/", 1)[-1]
            confidences = [0.97, 0.03] if defect else [0.02, 0.98]
            out.append(
                json.dumps(
                    {
                        "instance": instance,
                        "prediction": {
                            "ids": ["1", "2"],
                            "displayNames": ["Defect", "Ok"],
                            "confidences": confidences,
                        },
                    }
                )
            )
        folder = self.output.split("/", 3)[3]
        self.bucket.blob(f"{folder}/predictions_00001.jsonl").upload_from_string("\n".join(out) + "\n")
        return {"name": f"{self.P}/batchPredictionJobs/7", "state": "JOB_STATE_PENDING"}


def test_a_vertex_model_backfills_through_a_batch_prediction_job_on_the_model(
    make_bucket, photos, small_model, capsys
):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    archive, predicted = make_bucket("archive"), make_bucket("prediction", versioned=True)
    for index in range(20):
        archive.blob(f"2024/line-1/part-{index:02d}.jpeg").upload_from_string(photos[index])
    # a lamp on one side: Vertex calls it ok, the guard sends it to a person
    lit = io.BytesIO()
    unfamiliar.gradient_left_right(3).save(lit, format="JPEG", quality=92)
    archive.blob("2024/line-1/part-lamp.jpeg").upload_from_string(lit.getvalue())
    stub = JobServiceStub(predicted)
    jobs = aiplatform_v1.JobServiceClient(
        transport="rest", client_options={"api_endpoint": stub.url}, credentials=AnonymousCredentials()
    )
    model = f"{JobServiceStub.P}/models/33"
    args = [
        f"gs://{archive.name}/2024",
        "--batch",
        "vertex-2024",
        "--prediction-bucket",
        predicted.name,
        "--model",
        model,
        "--guard",
        guard_beside(str(small_model)),
        "--yes",
        "--poll-seconds",
        "0",
    ]
    try:
        assert backfill.main(args, jobs=jobs) == 0
        [job] = stub.created
        assert job["model"] == model and job["inputConfig"]["instancesFormat"] == "jsonl"
        assert "$2.222 per node hour" in capsys.readouterr().out
        found = copies(predicted, "vertex-2024")
        assert {n: f for n, f in found.items()} == {
            **{
                f"2024/line-1/part-{i:02d}.jpeg": ["defect" if "7" in f"part-{i:02d}.jpeg" else "ok"]
                for i in range(20)
            },
            "2024/line-1/part-lamp.jpeg": ["unclear"],
        }
        [lamp] = predicted.list_blobs(prefix="backfill/vertex-2024/unclear/")
        assert lamp.metadata["unclear_reason"] == "unusual_input"
        assert lamp.metadata["input_guard"].startswith("sha256:")
        assert backfill.main(args, jobs=jobs) == 0 and len(stub.created) == 1, (
            "a finished batch asks Vertex nothing"
        )
    finally:
        stub.stop()
