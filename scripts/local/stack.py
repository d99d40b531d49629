"""The whole pipeline on 127.0.0.1: fake-gcs-server (+ precondition proxy), Pub/Sub, and the real
predict and move handlers served by functions-framework, wired as Eventarc and the push
subscription wire them in the cloud.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from google.api_core import exceptions as gexc
from google.cloud import storage as gcs_types

from inspection import backends, layout, logs, publishing, records, storage
from inspection.settings import MoveSettings, SweepSettings
from scripts.local.events import EventBridge
from scripts.local.gcs import FakeGcs
from scripts.local.handlers import Served, Spawned, create_app
from scripts.local.pubsub import InProcessPubSub, PubSubEmulator, find_emulator_jar, held_subscription
from scripts.local.sink import RecordSink

PROJECT = "local"


@dataclass
class StackConfig:
    model_path: Path
    anomaly_path: Path | None = None  # an anomaly model beside the classifier (the stack's anomalyModel)
    input_guard: str = ""  # the model's input guard; "": the one beside it (backends.guard_beside)
    threshold: float = 0.9
    state_dir: Path | None = None  # None keeps objects in memory
    gcs_port: int = 0
    use_emulator: bool | None = None  # None: use Google's emulator when it is installed
    inbound_bucket: str = "local-inbound"
    prediction_bucket: str = "local-prediction"
    training_bucket: str = "local-training"
    predictions_topic: str = f"projects/{PROJECT}/topics/predictions"
    dead_letter_topic: str = f"projects/{PROJECT}/topics/predictions-dead-letter"
    extra_env: dict[str, str] = field(default_factory=dict)
    records_dir: Path | None = (
        None  # where the local sink keeps the plant's records; None: a temporary folder
    )
    redrive_after_s: int = 60  # an inbound image this old is stranded (the cloud default is 900)
    sweep_every_s: float | None = None  # run the re-drive sweep on a timer, as Cloud Scheduler does
    # Where the functions run (scripts/local/handlers.py). False: in threads of this process, where
    # a test can read their log lines and put an outage in front of move (`move_outage`). True: each
    # in a process of its own, as Cloud Run runs instances; that needs Google's Pub/Sub emulator
    # (the in-process stand-in pushes only within this process). None: processes when it runs.
    handler_processes: bool | None = False


class LocalStack:
    """Start with `with LocalStack(config) as stack:`; everything stops on exit, also on error."""

    def __init__(self, config: StackConfig):
        self.config = config
        self._stoppers: list = []

    # lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        c = self.config
        self.records_dir = c.records_dir
        if self.records_dir is None:
            temporary = self.records_dir = Path(tempfile.mkdtemp(prefix="qi-records-"))
            self._stoppers.append(lambda: shutil.rmtree(temporary, ignore_errors=True))
        # What Cloud Logging's sink does for BigQuery: the record lines, into an analytical store.
        self.sink = RecordSink(self.records_dir).install()
        self._stoppers.append(self.sink.uninstall)
        self.records = records.LocalStore(self.records_dir)
        gcs_root = c.state_dir / "gcs" if c.state_dir else None
        self.gcs = FakeGcs(port=c.gcs_port, root=gcs_root).start()
        self._stoppers.append(self.gcs.stop)
        c.gcs_port = self.gcs.port  # a restart comes back on the same address
        os.environ.update({"STORAGE_EMULATOR_HOST": self.gcs.url, "GOOGLE_CLOUD_PROJECT": PROJECT})
        storage.client.cache_clear()
        for name, versioned in (
            (c.inbound_bucket, True),
            (c.prediction_bucket, True),
            (c.training_bucket, False),
        ):
            bucket = gcs_types.Bucket(storage.client(), name)
            # As infra/storage.py declares them; fake-gcs-server's on-disk backend cannot version,
            # so a stack kept on disk (for restart tests) has no noncurrent generations.
            bucket.versioning_enabled = versioned and c.state_dir is None
            with contextlib.suppress(gexc.Conflict):
                storage.client().create_bucket(bucket)

        jar = find_emulator_jar() if c.use_emulator is not False else None
        if c.use_emulator and jar is None:
            raise RuntimeError("Google's Pub/Sub emulator was asked for but is not installed")
        self.pubsub = PubSubEmulator(jar).start() if jar else InProcessPubSub().start()
        publishing._publisher.cache_clear()  # a restarted emulator listens on a new port
        self._stoppers.append(self.pubsub.stop)

        # The functions read their environment as in the cloud, written by the same settings classes.
        os.environ.update(
            {
                **SweepSettings.environment(  # predict's fields, and the sweep's
                    predictions_topic=c.predictions_topic,
                    prediction_bucket=c.prediction_bucket,
                    backend="onnx",
                    model=str(c.model_path),
                    second_opinion=str(c.anomaly_path) if c.anomaly_path else None,
                    input_guard=c.input_guard or backends.guard_beside(str(c.model_path)),
                    threshold=c.threshold,
                    inbound_bucket=c.inbound_bucket,
                    held_subscription=held_subscription(c.dead_letter_topic),
                    redrive_after_s=c.redrive_after_s,
                ),
                **MoveSettings.environment(
                    prediction_bucket=c.prediction_bucket,
                    threshold=c.threshold,
                    dead_letter_topic=c.dead_letter_topic,
                    inbound_bucket=c.inbound_bucket,
                ),
                **c.extra_env,
            }
        )
        in_processes = c.handler_processes
        if in_processes is None:
            in_processes = isinstance(self.pubsub, PubSubEmulator)
        elif in_processes and not isinstance(self.pubsub, PubSubEmulator):
            raise RuntimeError(
                "handler_processes=True needs Google's Pub/Sub emulator: the in-process stand-in "
                "pushes only within this process"
            )
        # Set: move answers 503, as during an outage or rollout. None when move runs in a process
        # of its own, which this process cannot put anything in front of.
        self.move_outage = None if in_processes else threading.Event()
        for function in ("predict", "move", "sweep"):
            if in_processes:
                served = Spawned(function, self.records_dir, logs.stream())
            else:
                app = create_app(function)
                if function == "move":
                    app = _unavailable_while(self.move_outage, app)
                served = Served(app, function)
            self._stoppers.append(served.stop)
            setattr(self, "sweeper" if function == "sweep" else function, served)
        self.pubsub.push_topic(c.predictions_topic, self.move.url, c.dead_letter_topic)
        if c.sweep_every_s:
            stop = threading.Event()
            threading.Thread(
                target=self._sweep_loop, args=(stop, c.sweep_every_s), daemon=True, name="sweep"
            ).start()
            self._stoppers.append(stop.set)

        self.bridge = EventBridge(c.inbound_bucket, self.predict.url).start()
        self._stoppers.append(self.bridge.stop)
        self.gcs.on_finalize.append(self.bridge)
        self.resync()

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as exc:  # keep stopping the rest
                print(f"warning: while stopping: {exc}")

    def resync(self) -> int:
        """Announce objects already waiting in inbound, as Eventarc redelivers what was never acknowledged."""
        pending = list(storage.client().list_blobs(self.config.inbound_bucket))
        for blob in pending:
            self.bridge(blob._properties)
        return len(pending)

    def sweep(self) -> dict:
        """One re-drive sweep through the sweep function, as Cloud Scheduler calls it."""
        import requests

        response = requests.post(self.sweeper.url, timeout=300)
        response.raise_for_status()
        return response.json()

    def wait_for_records(self, images: int, timeout: float = 60.0) -> int:
        """Wait until the store holds the first record of `images` images (a record lands a moment
        after its image does); returns how many it holds."""
        import time
        from datetime import UTC, datetime, timedelta

        deadline = time.monotonic() + timeout
        today = datetime.now(UTC).date()
        while True:
            self.sink.flush()
            period = {"start": today - timedelta(days=1), "end": today}
            [row] = self.records.query(records.ARRIVED, period["start"], period["end"], period)
            if row["images"] >= images or time.monotonic() > deadline:
                return row["images"]
            time.sleep(0.1)

    def _sweep_loop(self, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            with contextlib.suppress(Exception):  # the sweep logs its own trouble; keep the schedule
                self.sweep()

    # inspection ------------------------------------------------------------------------------
    def routed(self) -> dict[str, list[str]]:
        """Folder → names of the objects in it (names as uploaded; collision suffixes kept), for the
        routed folders and quarantine/."""
        result: dict[str, list[str]] = {folder: [] for folder in (*layout.ROUTED_FOLDERS, layout.QUARANTINE)}
        for blob in storage.client().list_blobs(self.config.prediction_bucket):
            folder, _, name = blob.name.partition("/")
            if folder in result:
                result[folder].append(name)
        return result

    def inbound_names(self) -> list[str]:
        return [blob.name for blob in storage.client().list_blobs(self.config.inbound_bucket)]

    def dead_letters(self) -> list[bytes]:
        return self.pubsub.dead_letters(self.config.dead_letter_topic)


def _unavailable_while(outage: threading.Event, app):
    """WSGI middleware: 503 while `outage` is set, the app otherwise."""

    def serve(environ, start_response):
        if outage.is_set():
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    return serve
