"""Shared fixtures: real emulators on 127.0.0.1, started once per session."""

from __future__ import annotations

import itertools
import os

import pytest

from scripts.localstack.gcs import FakeGcs

_names = itertools.count()


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
    from scripts.localstack.pubsub import PubSubEmulator, find_emulator_jar

    jar = find_emulator_jar()
    if jar is None:
        pytest.skip(
            "SKIPPED LOUDLY: Google's Pub/Sub emulator is not installed (needs Java and the gcloud SDK)"
        )
    emulator = PubSubEmulator(jar).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def topic(pubsub_emulator):
    """A fresh topic with a pull subscription; `read()` returns what was published to it."""

    class Topic:
        path = f"projects/local/topics/t-{os.getpid()}-{next(_names)}"
        subscription = path.replace("/topics/", "/subscriptions/") + "-read"

        def read(self, expect: int = 1, timeout: float = 10.0) -> list:
            import time

            from google.api_core.exceptions import DeadlineExceeded

            deadline, got = time.monotonic() + timeout, []
            while len(got) < expect and time.monotonic() < deadline:
                try:
                    response = pubsub_emulator.subscriber.pull(
                        request={"subscription": self.subscription, "max_messages": 10},
                        timeout=max(0.3, deadline - time.monotonic()),
                    )
                except DeadlineExceeded:
                    continue
                got += [m.message for m in response.received_messages]
                if response.received_messages:
                    pubsub_emulator.subscriber.acknowledge(
                        request={
                            "subscription": self.subscription,
                            "ack_ids": [m.ack_id for m in response.received_messages],
                        }
                    )
            return got

    t = Topic()
    pubsub_emulator.publisher.create_topic(name=t.path)
    pubsub_emulator.subscriber.create_subscription(request={"name": t.subscription, "topic": t.path})
    return t


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A real ONNX model trained by scripts.train_local on a small synthetic sample."""
    from scripts import sample_data, train_local

    root = tmp_path_factory.mktemp("sample")
    sample_data.generate(root, train=80, test=20, seed=11)
    path = root / "model.onnx"
    train_local.train(root, path, threshold=0.9)
    return path


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
