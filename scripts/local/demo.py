"""`make demo`: the whole pipeline on this machine, on real emulators, with no cloud account.

1. sample data (synthetic, deterministic) or your own folder in the Kaggle casting layout;
2. a small local model, trained on train/ and exported to ONNX, and beside it an anomaly model
   fitted on train/'s good parts alone (a new line's first week), with its AUROC and localisation;
3. fake-gcs-server, Pub/Sub (Google's emulator if installed) and the real handlers;
4. the test images uploaded to the inbound bucket, routed, and summarised against their labels;
5. the review app on http://127.0.0.1:8080 until Ctrl-C (not with --once).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inspection import layout, logs, storage
from scripts import report
from scripts.local.handlers import Spawned
from scripts.local.stack import LocalStack, StackConfig
from scripts.local.state import DEFAULT_STATE, RECORDS, STACK_FILE
from scripts.training import metrics, sample_data, train_anomaly, train_local
from scripts.training.datasets import labelled_images

SWEEP_EVERY_S = 10.0  # the re-drive sweep's timer; images older than 60 s in inbound are re-driven
BAD_FILES = {  # shown to go to rejected/, not lost
    "line-1/notes.txt": b"shift report: nothing to see here\n",
    "line-1/empty.jpeg": b"",
}


def object_name(path: Path) -> str:
    """A camera-style name that does not give the answer away to reviewers."""
    return f"line-1/part-{hashlib.sha256(path.name.encode()).hexdigest()[:10]}{path.suffix.lower()}"


def prepare_data(state: Path, data: Path | None, train: int, test: int) -> Path:
    if data is not None:
        if not data.is_dir():
            raise SystemExit(f"--data {data}: no such folder")
        print(f"data: your folder {data}")
        return data
    target = state / "sample"
    marker = target / f".generated-{train}-{test}"
    if marker.exists():
        print(f"data: reusing synthetic sample in {target}")
        return target
    shutil.rmtree(target, ignore_errors=True)
    print(f"data: generating {train + test} synthetic images in {target}")
    sample_data.generate(target, train, test, progress=True)
    marker.touch()
    return target


def fit_anomaly_model(data: Path, state: Path) -> Path | None:
    """The anomaly model of train/'s good parts, its AUROC and localisation on test/; None when the
    data has no train/ok_* folder of good parts."""
    good = sorted(p for p in (data / "train").glob("ok*") if p.is_dir())
    if not good:
        print("anomaly model: no train/ok_* folder of good parts; predict runs the classifier alone")
        return None
    out = state / "anomaly.npz"
    print(f"anomaly model: fitting on the good parts in {', '.join(str(p) for p in good)} …")
    fitted = train_anomaly.fit([str(p) for p in good], str(out))
    print(
        f"  fitted on {fitted['photos'] - fitted['held_out']} good photos in {fitted['seconds']} s, "
        f"{fitted['bytes'] / 1024:.0f} KB; held-out good parts score at most "
        f"{fitted['held_out_scores']['max']} (0.5 is the edge of normal)"
    )
    test = data / "test"
    if test.is_dir():
        print(f"  image AUROC on test/: {train_anomaly.auroc(str(out), test):.4f}")
        hits, total = train_anomaly.localisation(str(out), test)
        if total:
            print(f"  localisation: the map peaks on {hits} of {total} defects ({hits / total:.0%})")
    return out


def upload(stack: LocalStack, items: list[tuple[str, bytes]]) -> None:
    from tqdm import tqdm

    bucket = storage.client().bucket(stack.config.inbound_bucket)

    def put(item: tuple[str, bytes]) -> None:
        bucket.blob(item[0]).upload_from_string(item[1])

    with ThreadPoolExecutor(4) as pool, tqdm(total=len(items), desc="upload", unit="img") as bar:
        for _ in pool.map(put, items):
            bar.update()


def wait_until_routed(stack: LocalStack, names: set[str], timeout: float) -> dict[str, str]:
    """name → folder once every name is routed and gone from inbound (a move deletes its source
    just after the copy), or what was routed when progress stopped."""
    deadline, last, last_progress = time.monotonic() + timeout, None, time.monotonic()
    while True:
        where = {name: folder for folder, found in stack.routed().items() for name in found}
        done = {n: where[n] for n in names if n in where}
        pending = names & set(stack.inbound_names())
        if len(done) == len(names) and not pending:
            return done
        if (len(done), len(pending)) != last:
            last, last_progress = (len(done), len(pending)), time.monotonic()
        if time.monotonic() > deadline or time.monotonic() - last_progress > 60:
            return done
        time.sleep(0.25)


def summarise(truth: dict[str, str], where: dict[str, str], seconds: float, expected: int) -> dict:
    counts = {folder: sum(1 for f in where.values() if f == folder) for folder in layout.ROUTED_FOLDERS}
    routing = metrics.decided(
        (label, where[n] if where.get(n) in layout.LABELS else None) for n, label in truth.items()
    )
    return {
        "counts": counts,
        "routed": len(where),
        "expected": expected,
        **routing,
        "images_per_second": len(where) / seconds if seconds else 0.0,
    }


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run(args: argparse.Namespace) -> int:
    if not args.once and not port_is_free(args.review_port):
        print(f"port {args.review_port} is in use: run `make demo PORT=8081`, or stop what uses it")
        return 1
    state = args.state
    state.mkdir(parents=True, exist_ok=True)
    data = prepare_data(state, args.data, args.train, args.test)
    model = state / "model.onnx"
    print("model: training the local classifier on train/ …")
    print(train_local.describe(train_local.train(data, model, args.threshold)))
    anomaly_model = fit_anomaly_model(data, state)

    shutil.rmtree(state / "gcs", ignore_errors=True)  # left by versions that stored objects on disk
    shutil.rmtree(state / RECORDS, ignore_errors=True)  # every run starts clean, as the buckets do
    log_file = (state / "pipeline.log").open("w")
    logs.send_to(log_file)
    print(f"logs: the handlers' JSON log lines go to {log_file.name}")
    # Objects live in memory: every run starts clean, and nothing an upload is named can touch the disk.
    config = StackConfig(
        model_path=model,
        anomaly_path=anomaly_model,
        threshold=args.threshold,
        gcs_port=args.gcs_port,
        sweep_every_s=SWEEP_EVERY_S,
        records_dir=state / RECORDS,
        handler_processes=None,  # each function in a process of its own, as Cloud Run runs them
    )
    stack_file = state / STACK_FILE
    try:
        with LocalStack(config) as stack:
            running = {
                "gcs": stack.gcs.url,
                "inbound": config.inbound_bucket,
                "prediction": config.prediction_bucket,
                "sweep": stack.sweeper.url,
                "pid": os.getpid(),
            }
            stack_file.write_text(json.dumps(running))
            return _run_stack(stack, config, args, data)
    finally:  # every way out, Ctrl-C and SIGTERM included: a later `scripts.local.upload` must not find it
        stack_file.unlink(missing_ok=True)


def _run_stack(stack: LocalStack, config: StackConfig, args: argparse.Namespace, data: Path) -> int:
    print(f"storage: fake-gcs-server at {stack.gcs.url}; Pub/Sub: {stack.pubsub.description}")
    where = "a process each" if isinstance(stack.move, Spawned) else "threads of this process"
    print(
        f"handlers: predict at {stack.predict.url}, move at {stack.move.url} (functions-framework, {where})"
    )

    tests = labelled_images(data, "test")
    truth = {object_name(path): label for path, label in tests}
    items = [(object_name(path), path.read_bytes()) for path, _ in tests] + list(BAD_FILES.items())
    started = time.monotonic()
    upload(stack, items)
    where = wait_until_routed(stack, {name for name, _ in items}, timeout=120 + len(items))
    summary = summarise(truth, where, time.monotonic() - started, len(items))
    if config.anomaly_path:
        summary["anomalous"] = second_opinions(stack, truth)
    print_summary(summary, stack)
    stack.wait_for_records(len(where))  # the records of what was routed, in the store the report reads
    report.main(["--records", str(config.records_dir), "--out", str(args.state / "quality-report.html")])
    problems = check(items, where, stack)
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    if args.once:
        return 0
    return serve_review(config, args.review_port)


def second_opinions(stack: LocalStack, truth: dict[str, str]) -> dict:
    """What the anomaly model beside the classifier did: images it sent to a person that the
    classifier called ok (and how many of them are defects), and images that carry a map."""
    from inspection import metadata, predicting

    images = defects = maps = 0
    for blob in storage.client().list_blobs(stack.config.prediction_bucket):
        place, meta = layout.parse(blob.name), blob.metadata or {}
        if place.folder not in layout.ROUTED_FOLDERS:
            continue
        maps += bool(meta.get(metadata.HEATMAP))
        if meta.get(metadata.UNCLEAR_REASON) == predicting.ANOMALOUS:
            images += 1
            defects += truth.get(place.name) == layout.DEFECT
    return {"images": images, "defects": defects, "maps": maps}


def check(items: list[tuple[str, bytes]], where: dict[str, str], stack: LocalStack) -> list[str]:
    """Everything that would mean an image was lost or stuck; empty when all is well."""
    problems = []
    missing = [name for name, _ in items if name not in where]
    if missing:
        problems.append(f"{len(missing)} of {len(items)} uploads were not routed, e.g. {missing[0]}")
    if stack.inbound_names():
        problems.append(f"{len(stack.inbound_names())} object(s) still in the inbound bucket")
    dead = stack.dead_letters()
    if dead:
        problems.append(f"{len(dead)} message(s) in the dead-letter topic")
    return problems


def print_summary(s: dict, stack: LocalStack) -> None:
    c = s["counts"]
    print(f"\nrouted {s['routed']} of {s['expected']} uploads in the prediction bucket:")
    for folder in layout.ROUTED_FOLDERS:
        print(f"  {folder + '/':10s} {c[folder]:5d}")
    print(f"accuracy among auto-decided images: {s['auto_accuracy']:.1%} of {s['auto_decided']}")
    print(f"defects wrongly passed as ok: {s['defects_passed_as_ok']}")
    print(f"sent to a person (unclear): {s['unclear_share']:.1%}")
    second = s.get("anomalous")
    if second is not None:
        print(
            f"  of them, called ok by the classifier and sent by the anomaly model: {second['images']} "
            f"({second['defects']} defects, escapes prevented); {second['maps']} images carry a map"
        )
    print(f"throughput: {s['images_per_second']:.1f} images/s (upload to routed)")


def serve_review(config: StackConfig, port: int) -> int:
    from werkzeug.serving import make_server

    from review_app import create_app

    app = create_app(
        {
            "PREDICTION_BUCKET": config.prediction_bucket,
            "REVIEW_AUTH": "local",
            "RECORDS": str(config.records_dir),
        }
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(f"\nreview app: http://127.0.0.1:{server.server_port}  (local mode; Ctrl-C stops everything)")
    print("add images:  .venv/bin/python -m scripts.local.upload PATH [PATH …]")
    try:
        server.serve_forever()  # werkzeug returns from here on Ctrl-C
    finally:
        server.server_close()
        print("\nstopping everything the demo started …")
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C and a plain `kill` both unwind through the stack's `finally`, which stops every child
    # process; set both explicitly, since a shell may start us with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, help="a folder in the Kaggle casting layout (default: synthetic)"
    )
    parser.add_argument(
        "--once", action="store_true", help="stop after the summary; exit 1 if anything was lost"
    )
    parser.add_argument("--train", type=int, default=400, help="synthetic train images (default 400)")
    parser.add_argument("--test", type=int, default=200, help="synthetic test images (default 200)")
    parser.add_argument("--threshold", type=float, default=0.9, help="PREDICTION_THRESHOLD (default 0.9)")
    parser.add_argument("--review-port", type=int, default=8080)
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="working folder (default .demo/)")
    parser.add_argument("--gcs-port", type=int, default=0, help="default: a free port")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
