"""Shared fixtures: real emulators on 127.0.0.1, started once per session, and the markers that say
what each test needs (`make test-fast` runs the unit tests alone)."""

from __future__ import annotations

import itertools
import os

import pytest

from scripts.local.gcs import FakeGcs

_names = itertools.count()


@pytest.fixture(scope="session")
def day_zero():
    """The Pulumi program under mocks with the example stack as committed: (mocks, ledger), run once
    for every test that only reads it (a test that varies a setting runs its own)."""
    from scripts.program.mocks import dev_config, run_program

    return run_program(dev_config())


@pytest.fixture(scope="session")
def fake_gcs():
    """fake-gcs-server behind the precondition-enforcing proxy; the real client talks to it."""
    with FakeGcs() as gcs:
        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "local")
        yield gcs
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture
def gcs_client(fake_gcs):
    from inspection import storage

    return storage.client()


@pytest.fixture
def make_bucket(gcs_client):
    """Create a uniquely named bucket per call, as GCS bucket names are global."""

    def make(kind: str = "bucket", versioned: bool = False):
        from google.cloud import storage as gcs

        bucket = gcs.Bucket(gcs_client, f"test-{kind}-{os.getpid()}-{next(_names)}")
        bucket.versioning_enabled = versioned
        return gcs_client.create_bucket(bucket)

    return make


@pytest.fixture(scope="session")
def pubsub_emulator():
    """Google's Pub/Sub emulator; skipped loudly where Java or the gcloud SDK is missing."""
    from scripts.local.pubsub import PubSubEmulator, find_emulator_jar

    jar = find_emulator_jar()
    if jar is None:
        pytest.skip(
            "SKIPPED LOUDLY: Google's Pub/Sub emulator is not installed (needs Java and the gcloud SDK)"
        )
    emulator = PubSubEmulator(jar).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def topic(request):
    """A fresh topic; `read()` returns what was published to it. On Google's emulator where it is
    installed, else on an in-process stand-in, so handler tests run on machines without Java."""
    from scripts.local.pubsub import find_emulator_jar

    path = f"projects/local/topics/t-{os.getpid()}-{next(_names)}"
    if find_emulator_jar() is None:
        yield InProcessTopic(path)
        return
    emulator = request.getfixturevalue("pubsub_emulator")
    subscription = path.replace("/topics/", "/subscriptions/") + "-read"
    emulator.publisher.create_topic(name=path)
    emulator.subscriber.create_subscription(request={"name": subscription, "topic": path})
    yield EmulatorTopic(path, subscription, emulator)


class EmulatorTopic:
    def __init__(self, path: str, subscription: str, emulator):
        self.path, self.subscription, self.emulator = path, subscription, emulator

    def read(self, expect: int = 1, timeout: float = 10.0) -> list:
        import time

        from google.api_core.exceptions import DeadlineExceeded

        deadline, got = time.monotonic() + timeout, []
        subscriber = self.emulator.subscriber
        while len(got) < expect and time.monotonic() < deadline:
            try:
                response = subscriber.pull(
                    request={"subscription": self.subscription, "max_messages": 10},
                    timeout=max(0.3, deadline - time.monotonic()),
                )
            except DeadlineExceeded:
                continue
            got += [m.message for m in response.received_messages]
            if response.received_messages:
                subscriber.acknowledge(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": [m.ack_id for m in response.received_messages],
                    }
                )
        return got


class InProcessTopic:
    """Publishes to `path` are kept here (the local stack's in-process seam), as messages with
    `data` and `attributes` like the emulator's."""

    def __init__(self, path: str):
        from types import SimpleNamespace

        from inspection import publishing

        self.path, self._messages = path, []

        def keep(data: bytes, attributes: dict[str, str]) -> str:
            self._messages.append(SimpleNamespace(data=data, attributes=dict(attributes)))
            return str(len(self._messages))

        publishing.register_local_topic(path, keep)

    def read(self, expect: int = 1, timeout: float = 10.0) -> list:
        import time

        deadline = time.monotonic() + timeout
        while len(self._messages) < expect and time.monotonic() < deadline:
            time.sleep(0.02)
        got, self._messages[:] = list(self._messages), []
        return got


@pytest.fixture
def deployed_env(monkeypatch):
    """The deployables' environment for this test, written through their settings classes
    (inspection/settings.py) as the Pulumi program writes it: `deployed_env(prediction_bucket=...,
    backend="onnx", model=path)`. A field no deployable has is a TypeError, and a bad value fails
    its own variable's check, so a test's environment is one the code would be deployed with."""
    from inspection.settings import MoveSettings, PredictSettings, ReviewSettings, SweepSettings

    classes = (PredictSettings, MoveSettings, SweepSettings, ReviewSettings)
    given: dict = {}

    def write(**fields) -> dict[str, str]:
        given.update(fields)
        env: dict[str, str] = {}
        for cls in classes:
            known = set(cls.variables()) | ({"model", "second_opinion"} if cls is PredictSettings else set())
            mine = {k: v for k, v in given.items() if k in known}
            if mine:
                env.update(cls.environment(**mine))
        unknown = set(fields) - {k for cls in classes for k in cls.variables()} - {"model", "second_opinion"}
        if unknown:
            raise TypeError(f"no deployable has {', '.join(sorted(unknown))}")
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        return env

    def pipeline(inbound, predicted, topic, threshold: float = 0.9, **more) -> dict[str, str]:
        """The day-zero pipeline on these buckets, one topic standing in for both of its topics."""
        return write(
            prediction_bucket=predicted.name,
            inbound_bucket=inbound.name,
            threshold=threshold,
            dead_letter_topic=topic.path,
            predictions_topic=topic.path,
            backend="none",
            **more,
        )

    write.pipeline = pipeline
    return write


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A real ONNX model trained by scripts.training.train_local on a small synthetic sample."""
    from scripts.training import sample_data, train_local

    root = tmp_path_factory.mktemp("sample")
    sample_data.generate(root, train=80, test=20, seed=11)
    path = root / "model.onnx"
    train_local.train(root, path, threshold=0.9)
    return path


@pytest.fixture(scope="session")
def anomaly_sample(tmp_path_factory):
    """A synthetic sample with masks, and an anomaly model fitted by train_anomaly on its good
    training photos alone: (sample root, model path, what fit returned)."""
    from scripts.training import sample_data, train_anomaly

    root = sample_data.generate(tmp_path_factory.mktemp("anomaly-sample"), train=120, test=80, seed=11)
    path = root.parent / "anomaly.npz"
    fitted = train_anomaly.fit([str(root / "train" / "ok_front")], str(path))
    return root, path, fitted


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium, headless; Playwright never downloads a browser here."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("SKIPPED LOUDLY: /usr/bin/chromium is missing (.ci/run installs Debian's chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


EMULATOR_FIXTURES = {"fake_gcs", "gcs_client", "make_bucket", "topic", "pubsub_emulator"}
EMULATOR_MODULES = {"test_local_stack.py", "test_gcs_proxy.py"}  # they start their own emulators


def pytest_collection_modifyitems(items):
    """Every test is `browser`, `emulator` or `unit`, by what it uses."""
    for item in items:
        if item.get_closest_marker("browser"):
            continue
        uses_emulator = EMULATOR_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses_emulator or item.path.name in EMULATOR_MODULES:
            item.add_marker(pytest.mark.emulator)
        else:
            item.add_marker(pytest.mark.unit)
