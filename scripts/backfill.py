r"""Backfill: classify an archive of photos as predict would, into backfill/<batch>/ of the prediction
bucket, never into the reviewers' live queue.

    python -m scripts.backfill gs://plant-archive/2024 --batch archive-2024 \
        --prediction-bucket acme-qi-prediction --model gs://acme-qi-training/models/…/model.tflite
    python -m scripts.backfill gs://plant-archive/2024 --batch archive-2024 \
        --prediction-bucket acme-qi-prediction --model projects/P/locations/R/models/ID

- A model file (`.tflite`, `.onnx`: the backends that run inside predict) runs here, `--workers`
  images at once, through predict's own assessment: decode, model card, label map. Several
  machines share an archive with `--shard I/N` (taken from CLOUD_RUN_TASK_INDEX and
  CLOUD_RUN_TASK_COUNT when it runs as the tasks of a Cloud Run job): each takes the images whose
  name hashes to its shard.
- A Vertex AI cloud model runs as a batch prediction job on the Model itself, with no endpoint
  (https://cloud.google.com/vertex-ai/docs/image-data/classification/get-predictions#batch);
  its answers are routed by the same rule. (Edge models cannot serve on Vertex; export and use the
  file.)

Each image is copied, with the metadata move gives a routed image, to
`backfill/<batch>/<ok|defect|unclear|rejected>/<name>`; the archive is never changed. Every copy is
claimed as a move is (inspection/claims.py), so a run that stops, or dies, is finished by the next
one, and a rerun of a finished batch reads the claims and writes nothing. (Claims expire after 30
days: rerun a batch within that, or give the next run a new name.) Before it starts it prints what
it will cost; after, `backfill/<batch>/summary.json` and `report.html`, the plant report for the
batch, by line and the day each photo was taken. Both cover the whole archive, read from the
claims: a shard that finishes before the others counts their unfinished images as pending, and
the last shard to finish writes the complete summary.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import PurePosixPath

from inspection import backends, claims, layout, metadata, moving, predicting, routing, storage
from inspection.errors import ConfigError, Held
from inspection.labels import LabelMap
from inspection.model import classifiers, images
from inspection.model.guard import UNUSUAL_INPUT
from inspection.routing import DEFAULT_THRESHOLD, parse_threshold
from scripts import costs, locations
from scripts.training.datasets import IMAGE_SUFFIXES
from scripts.training.models import ModelRef

BATCH = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
VERTEX_MODEL = re.compile(r"^projects/([^/]+)/locations/([^/]+)/models/[^/]+$")
BATCH_PREDICTION_NODE_HOUR = (
    2.222  # AutoML image classification (https://cloud.google.com/vertex-ai/pricing), read 2026-11-29
)
# One image's storage requests, as tests/test_backfill.py counts them: the claim read (none yet;
# once more inside the move), the source's bytes and its metadata; the claim made, the copy, the
# claim marked done.
STORAGE_PER_IMAGE = {"objects.get": 3, "objects.insert": 2, "objects.rewrite": 1}
CLASS_A_PER_IMAGE = sum(n for m, n in STORAGE_PER_IMAGE.items() if costs.CLASS_OF[m] == "A")
CLASS_B_PER_IMAGE = sum(n for m, n in STORAGE_PER_IMAGE.items() if costs.CLASS_OF[m] == "B")


@dataclass(frozen=True)
class Result:
    image: str  # the archive object name
    line: str
    day: str  # the day the photo was stored in the archive
    folder: str  # ok, defect, unclear, rejected; "" when it could not be backfilled
    label: str = ""
    score: float = 0.0
    model: str = ""
    threshold: float = 0.0
    unusual: bool = False
    guard: str = ""  # the input guard that checked it; "" when none did
    fresh: bool = True  # this run classified and copied it (False: an earlier run had)
    problem: str = ""
    pending: bool = False  # another shard's, not finished yet


# --- the archive ----------------------------------------------------------------------------------------


def archive(location: str) -> list:
    """The archive's image objects (live generations), in name order."""
    bucket, prefix = layout.split_gs_uri(location.rstrip("/") + "/")
    return sorted(
        (
            b
            for b in storage.client().list_blobs(bucket, prefix=prefix)
            if PurePosixPath(b.name).suffix.lower() in IMAGE_SUFFIXES
        ),
        key=lambda b: b.name,
    )


def shard(blobs: list, index: int, count: int) -> list:
    """The images of shard `index` of `count`: chosen by a hash of the name, so every task of a job,
    and every rerun, agrees on it without talking to the others."""
    return [b for b in blobs if zlib.crc32(b.name.encode()) % count == index]


def parse_shard(raw: str) -> tuple[int, int]:
    """'I/N' → (I, N), with 0 ≤ I < N."""
    try:
        index, count = (int(part) for part in raw.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not I/N, e.g. 0/4") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"{raw}: expected 0 ≤ I < N")
    return index, count


def _shard_from_environment() -> str:
    """A Cloud Run job's task says which it is (https://cloud.google.com/run/docs/container-contract#jobs-env-vars)."""
    return f"{os.environ.get('CLOUD_RUN_TASK_INDEX', '0')}/{os.environ.get('CLOUD_RUN_TASK_COUNT', '1')}"


def estimate(count: int, vertex: bool) -> str:
    """What the batch costs, before it starts."""
    p = costs.PRICES
    storage_usd = count * (
        CLASS_A_PER_IMAGE * p["gcs_class_a"].usd + CLASS_B_PER_IMAGE * p["gcs_class_b"].usd
    )
    lines = [
        f"{count:,} images to classify.",
        f"  storage: {count * CLASS_A_PER_IMAGE:,} Class A and "
        f"{count * CLASS_B_PER_IMAGE:,} Class B operations, ${storage_usd:,.2f}; "
        "the copies are as large as the archive, and stay until deleted",
    ]
    if vertex:
        lines.append(
            f"  Vertex AI batch prediction: ${BATCH_PREDICTION_NODE_HOUR} per node hour; "
            "Vertex chooses the nodes (the job's cost shows in its details when it ends)"
        )
    else:
        lines.append("  the model runs here, on this machine's CPU: no cloud compute is billed")
    return "\n".join(lines)


# --- routing one image ------------------------------------------------------------------------------------


def _destination(prediction_bucket: str, batch: str, folder: str, name: str) -> storage.ObjectRef:
    return storage.ObjectRef(prediction_bucket, layout.backfilled(batch, folder, name))


def _already(blob, args) -> Result | None:
    """The result an earlier run recorded in the claim, if it finished this image."""
    source = storage.ObjectRef(blob.bucket.name, blob.name, blob.generation)
    claim = claims.read(args.prediction_bucket, source, scope=_scope(args.batch))
    if claim is None or claim.state != claims.State.DONE:
        return None
    folder = claim.destination.split("/")[2] if claim.destination.count("/") >= 3 else ""
    meta = claim.metadata
    return Result(
        image=blob.name,
        line=_line(blob, args),
        day=_day(blob),
        folder=folder,
        label=meta.get(metadata.PREDICTED_LABEL, ""),
        score=float(meta.get(metadata.PREDICTED_SCORE) or 0),
        model=meta.get(metadata.MODEL, ""),
        threshold=float(meta.get(metadata.THRESHOLD) or 0),
        unusual=meta.get(metadata.UNCLEAR_REASON) == UNUSUAL_INPUT,
        guard=meta.get(metadata.INPUT_GUARD, ""),
        fresh=False,
    )


def _line(blob, args) -> str:
    """The line, read from the name below the archive's prefix (as LINE_SEGMENT reads inbound names)."""
    return layout.line_of(blob.name[len(args.prefix) :], args.line_segment)


def _scope(batch: str) -> str:
    return f"backfill:{batch}"


def _day(blob) -> str:
    created = blob.time_created or datetime.now(UTC)
    return created.date().isoformat()


def route(blob, assessment: predicting.Assessment | images.ImageRejected, args) -> Result:
    """Copy one archive image where its assessment sends it; safe to repeat."""
    source = storage.ObjectRef(blob.bucket.name, blob.name, blob.generation)
    base = Result(blob.name, _line(blob, args), _day(blob), "")
    if isinstance(assessment, images.ImageRejected):
        folder = layout.REJECTED
        meta = {
            metadata.REJECTED_REASON: assessment.reason,
            metadata.REJECTED_DETAIL: assessment.detail[:1000],
            metadata.REJECTED_AT: datetime.now(UTC).isoformat(),
            **storage.provenance(source),
        }
        result = dict(folder=folder)
    else:
        prediction = assessment.prediction(source)
        folder = routing.folder_for(prediction, args.threshold)
        meta = moving.routed_metadata(prediction, args.threshold, source)
        result = dict(
            folder=folder,
            label=assessment.label,
            score=assessment.score,
            model=assessment.model,
            threshold=args.threshold,
            unusual=assessment.unclear_reason == UNUSUAL_INPUT,
            guard=assessment.guard,
        )
    destination = _destination(args.prediction_bucket, args.batch, folder, blob.name)
    if len(destination.name.encode()) > layout.MAX_NAME_BYTES - layout.ALONGSIDE_BYTES:
        return Result(**{**asdict(base), "problem": "its name is too long for a backfill copy"})
    try:
        claims.move(
            source, destination, meta, owner=_scope(args.batch), keep_source=True, scope=_scope(args.batch)
        )
    except Held as held:
        return Result(**{**asdict(base), "problem": held.reason})
    return Result(**{**asdict(base), **result})


@dataclass(frozen=True)
class _Answered:
    """A batch job's answer for one photo, as a classifier gives it, so that it goes through
    predict's own assessment, and behind the same input guard (classifiers.Guarded)."""

    confidences: dict[str, float]
    model: str

    def classify(self, image) -> classifiers.Classification:
        return classifiers.Classification(dict(self.confidences), self.model)


@functools.cache
def _guard(location: str):
    from inspection.model import guard

    return guard.load(location)


def _assessed(blob, answered: _Answered, args, label_map: LabelMap):
    """The answer, assessed as predict assesses its endpoint's: behind the guard, the photo read
    to check it (a photo predict would reject is kept in rejected/, as predict keeps it)."""
    data = None
    if args.guard != backends.NO_GUARD:
        data = storage.read(storage.ObjectRef(blob.bucket.name, blob.name, blob.generation))
    if data is None:  # unguarded (the answer needs no photo), or gone: route() says so
        return predicting.assess(None, answered, label_map)
    try:
        loaded = images.load(data)
    except images.ImageRejected as rejected:
        return rejected
    return predicting.assess(loaded, classifiers.Guarded(answered, _guard(args.guard)), label_map)


# --- in-function backends: the model runs here -----------------------------------------------------------


def run_here(blobs, args) -> list[Result]:
    local = threading.local()
    label_map = LabelMap.parse(args.label_map, key="--label-map")

    def one(blob) -> Result:
        done = _already(blob, args)
        if done is not None:
            return done
        if not hasattr(local, "classifier"):  # one per worker: LiteRT and onnxruntime sessions are not shared
            local.classifier = args.model_ref.open()
        source = storage.ObjectRef(blob.bucket.name, blob.name, blob.generation)
        data = storage.read(source)
        if data is None:
            return Result(blob.name, _line(blob, args), _day(blob), "", problem="gone")
        try:
            assessment = predicting.assess(images.load(data), local.classifier, label_map)
        except images.ImageRejected as rejected:
            assessment = rejected
        return route(blob, assessment, args)

    return _in_parallel(one, blobs, args.workers)


def _in_parallel(work, blobs, workers: int, desc: str = "backfill") -> list[Result]:
    from tqdm import tqdm

    with ThreadPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(work, blobs), total=len(blobs), desc=desc, unit="img"))


def elsewhere(blobs, args) -> list[Result]:
    """The other shards' images, as their claims stand: finished, or pending."""

    def one(blob) -> Result:
        done = _already(blob, args)
        return (
            done if done is not None else Result(blob.name, _line(blob, args), _day(blob), "", pending=True)
        )

    return _in_parallel(one, blobs, args.workers, desc="other shards")


# --- Vertex AI: a batch prediction job on the Model ---------------------------------------------------------


def run_on_vertex(blobs, args, jobs=None) -> list[Result]:
    """Ask Vertex for the images not finished yet, then route its answers as predict would."""
    from google.protobuf import json_format

    earlier = {b.name: _already(b, args) for b in blobs}
    results = {name: done for name, done in earlier.items() if done is not None}
    todo = [b for b in blobs if b.name not in results]
    if todo:
        project, region = VERTEX_MODEL.match(args.model).groups()
        jobs = jobs or _job_client(region)
        folder = f"{layout.BACKFILL}/{args.batch}/vertex"
        bucket = storage.client().bucket(args.prediction_bucket)
        lines = "".join(
            json.dumps({"content": f"gs://{b.bucket.name}/{b.name}", "mimeType": _mime(b.name)}) + "\n"
            for b in todo
        )
        bucket.blob(f"{folder}/input.jsonl").upload_from_string(lines, content_type="application/jsonl")
        job = jobs.create_batch_prediction_job(
            parent=f"projects/{project}/locations/{region}",
            batch_prediction_job={
                "display_name": f"backfill-{args.batch}",
                "model": args.model,
                "input_config": {
                    "instances_format": "jsonl",
                    "gcs_source": {"uris": [f"gs://{args.prediction_bucket}/{folder}/input.jsonl"]},
                },
                "output_config": {
                    "predictions_format": "jsonl",
                    "gcs_destination": {
                        "output_uri_prefix": f"gs://{args.prediction_bucket}/{folder}/output"
                    },
                },
                "model_parameters": json_format.ParseDict(
                    {"confidenceThreshold": 0.0, "maxPredictions": 100}, _value()
                ),
            },
        )
        print(f"batch prediction job {job.name} started")
        job = _wait(jobs, job.name, args.poll_seconds, args.max_hours)
        answers = _answers(job.output_info.gcs_output_directory)
        label_map = LabelMap.parse(args.label_map, key="--label-map")
        by_uri = {f"gs://{b.bucket.name}/{b.name}": b for b in todo}
        for uri, prediction in answers.items():
            blob = by_uri.get(uri)
            if blob is None:
                continue
            answered = _Answered(
                {
                    str(n): float(c)
                    for n, c in zip(prediction["displayNames"], prediction["confidences"], strict=True)
                },
                args.model,
            )
            results[blob.name] = route(blob, _assessed(blob, answered, args, label_map), args)
        for blob in todo:
            results.setdefault(
                blob.name,
                Result(
                    blob.name,
                    _line(blob, args),
                    _day(blob),
                    "",
                    problem="Vertex gave no answer",
                ),
            )
    return [results[b.name] for b in blobs]


def _value():
    from google.protobuf import struct_pb2

    return struct_pb2.Value()


def _mime(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg"}.get(suffix, f"image/{suffix}")


def _job_client(region: str):
    from google.cloud import aiplatform_v1

    return aiplatform_v1.JobServiceClient(
        transport="rest", client_options={"api_endpoint": f"{region}-aiplatform.googleapis.com"}
    )


DONE = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def _wait(jobs, name: str, poll_seconds: float, max_hours: float):
    started = time.monotonic()
    while True:
        job = jobs.get_batch_prediction_job(name=name)
        state = job.state.name
        if state in DONE:
            break
        if time.monotonic() - started > max_hours * 3600:
            raise SystemExit(
                f"{name} still {state} after {max_hours:g} h; rerun later to route what it wrote"
            )
        time.sleep(poll_seconds)
    if state != "JOB_STATE_SUCCEEDED":
        raise SystemExit(f"the batch prediction job ended {state}: {job.error.message}")
    return job


def _answers(directory: str) -> dict[str, dict]:
    """instance content uri → its prediction, from the job's predictions*.jsonl files."""
    bucket, prefix = layout.split_gs_uri(directory.rstrip("/") + "/")
    found = {}
    for blob in storage.client().list_blobs(bucket, prefix=prefix):
        if PurePosixPath(blob.name).name.startswith("predictions") and blob.name.endswith(".jsonl"):
            for line in blob.download_as_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    found[row["instance"]["content"]] = row["prediction"]
    return found


# --- the summary --------------------------------------------------------------------------------------------


def summarise(results: list[Result], batch: str) -> dict:
    def where(r: Result) -> str:
        return r.folder or ("pending" if r.pending else "not backfilled")

    per_line: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        per_line[r.line][where(r)] += 1
    return {
        "batch": batch,
        "images": len(results),
        "this_run": sum(1 for r in results if r.fresh and r.folder),
        "pending": sum(1 for r in results if r.pending),
        "by_folder": dict(Counter(where(r) for r in results if not r.pending)),
        "by_line": {line: dict(counts) for line, counts in sorted(per_line.items())},
        "problems": [{"image": r.image, "problem": r.problem} for r in results if r.problem][:1000],
    }


def publish(results: list[Result], args) -> dict:
    """Write the batch's summary and report, unless a shard already wrote a more complete one: of
    the shards of a job, the one that finishes last has the whole archive."""
    from google.api_core import exceptions as gexc

    summary = summarise(results, args.batch)
    bucket = storage.client().bucket(args.prediction_bucket)
    base = f"{layout.BACKFILL}/{args.batch}"
    while True:
        standing = bucket.get_blob(f"{base}/summary.json")
        if (
            standing is not None
            and json.loads(standing.download_as_bytes()).get("pending", 0) < summary["pending"]
        ):
            return summary
        bucket.blob(f"{base}/report.html").upload_from_string(report_html(results), "text/html")
        try:
            bucket.blob(f"{base}/summary.json").upload_from_string(
                json.dumps(summary, indent=2),
                "application/json",
                if_generation_match=standing.generation if standing is not None else 0,
            )
            return summary
        except gexc.PreconditionFailed:
            continue  # another shard wrote one meanwhile: compare with that


def report_html(results: list[Result]) -> str:
    """The plant report for the batch: per line and day the photos were taken."""
    from scripts.report import Day, render

    lines: dict[str, dict[date, Day]] = defaultdict(dict)
    for r in results:
        day = lines[r.line].setdefault(date.fromisoformat(r.day), Day())
        if r.folder == layout.REJECTED:
            day.rejected += 1
        elif r.folder in (layout.OK, layout.DEFECT, layout.UNCLEAR):
            setattr(day, f"routed_{r.folder}", getattr(day, f"routed_{r.folder}") + 1)
            day.unusual += r.unusual
            day.models = r.model
            day.thresholds = f"{r.threshold:g}"
            if r.guard:
                day.guards = r.guard
            else:
                day.unguarded += 1
    period = sorted({d for per_day in lines.values() for d in per_day}) or [datetime.now(UTC).date()]
    span = [date.fromordinal(o) for o in range(period[0].toordinal(), period[-1].toordinal() + 1)]
    return render(lines, span, {}, None)


# --- the command --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None, jobs=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.backfill",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("archive", help="gs://bucket/prefix of the photos")
    parser.add_argument("--batch", required=True, help="a name for this backfill: a-z, 0-9 and '-', up to 40")
    parser.add_argument("--prediction-bucket", required=True)
    parser.add_argument(
        "--model", required=True, help="a .tflite or .onnx model, or projects/P/locations/R/models/ID"
    )
    parser.add_argument("--threshold", type=float, help="predictionThreshold (default: the model card's)")
    parser.add_argument(
        "--guard",
        help="the model's input guard (default: <model>.guard.json beside a model file)",
    )
    parser.add_argument(
        "--unguarded",
        action="store_true",
        help="classify without an input guard, on purpose: the report says so",
    )
    parser.add_argument("--label-map", default="", help="as the LABEL_MAP setting")
    parser.add_argument(
        "--line-segment", type=int, default=1, help="as LINE_SEGMENT: which folder names the line"
    )
    parser.add_argument("--workers", type=int, default=4, help="images classified at once (default 4)")
    parser.add_argument(
        "--shard",
        type=parse_shard,
        default=_shard_from_environment(),
        help="I/N: this machine takes shard I of N (default: the Cloud Run job task's, else 0/1)",
    )
    parser.add_argument(
        "--yes", action="store_true", help="start without asking, after printing the estimate"
    )
    parser.add_argument("--poll-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--max-hours", type=float, default=24.0, help="stop waiting for a Vertex job after this long"
    )
    args = parser.parse_args(argv)
    if not BATCH.match(args.batch):
        parser.error("--batch must be 1 to 40 of a-z, 0-9 and '-', starting with a letter or digit")
    if not locations.remote(args.archive):
        parser.error("the archive is a gs://bucket/prefix")
    vertex = bool(VERTEX_MODEL.match(args.model))
    if not vertex:
        try:
            args.model_ref = ModelRef.parse(args.model, key="--model")
        except ConfigError as exc:
            parser.error(str(exc))
        if args.model_ref.backend == "vertex":
            parser.error(
                "an endpoint serves online; a batch runs on the Model: projects/P/locations/R/models/ID"
            )
        args.model_ref = args.model_ref.guarded(args.guard, args.unguarded)
        args.guard = args.model_ref.guard
    else:
        from scripts.training import guard as training_guard

        args.guard = training_guard.required(args.model, args.guard, args.unguarded)
    if args.threshold is None:
        card = None if vertex else args.model_ref.open().card
        chosen = (card.evaluation or {}).get("threshold") if card else None
        args.threshold = float(chosen) if chosen else DEFAULT_THRESHOLD
    args.threshold = parse_threshold(args.threshold, "--threshold")
    index, count = args.shard
    if vertex and count > 1:
        parser.error("a Vertex batch prediction job shards itself: run it once, without --shard")
    args.prefix = layout.split_gs_uri(args.archive.rstrip("/") + "/")[1]
    blobs = archive(args.archive)
    mine = shard(blobs, index, count)
    print(
        estimate(len(mine), vertex)
        + (f"\n  (shard {index} of {count}: {len(blobs)} in all)" if count > 1 else "")
    )
    if not args.yes and input("start? [y/N] ").strip().lower() != "y":
        print("nothing started")
        return 1
    if vertex:
        results = run_on_vertex(blobs, args, jobs)
    else:
        taken = {b.name for b in mine}
        results = run_here(mine, args) + elsewhere([b for b in blobs if b.name not in taken], args)
    summary = publish(results, args)
    print(json.dumps({k: summary[k] for k in ("images", "this_run", "pending", "by_folder")}, indent=2))
    print(f"gs://{args.prediction_bucket}/{layout.BACKFILL}/{args.batch}/summary.json and report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
