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

    def make(kind: str = "bucket"):
        return gcs_client.create_bucket(f"test-{kind}-{os.getpid()}-{next(_names)}")

    return make
