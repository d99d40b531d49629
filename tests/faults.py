"""Faults at the storage boundary, injected by the proxy in front of fake-gcs-server: a storage
request fails, another party acts in between two requests, or the process that made the request
dies, before the request reached storage or after it took effect.

The tests drive these by what goes over the wire, never by patching a function, so they hold
however the code that makes the requests is arranged.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from scripts.local.gcs import Call, DropConnection, FakeGcs

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def hook(gcs: FakeGcs, fn: Callable[[Call, str], object]) -> Iterator[None]:
    gcs.hooks.append(fn)
    try:
        yield
    finally:
        gcs.hooks.remove(fn)


@contextlib.contextmanager
def failing(gcs: FakeGcs, matches: Callable[[Call], bool], status: int = 503) -> Iterator[list[Call]]:
    """Every matching request is answered `status`, as GCS answers during an outage."""
    failed: list[Call] = []

    def fail(call: Call, phase: str):
        if phase == "before" and matches(call):
            failed.append(call)
            return status, json.dumps({"error": {"code": status, "message": "injected"}}).encode()
        return None

    with hook(gcs, fail):
        yield failed


@contextlib.contextmanager
def between(gcs: FakeGcs, matches: Callable[[Call], bool], action: Callable[[], object]) -> Iterator[list]:
    """The first matching request waits while `action` runs (another delivery, another reviewer),
    then goes on; `action`'s result is in the list."""
    done: list = []
    lock = threading.Lock()

    def interleave(call: Call, phase: str):
        if phase != "before" or not matches(call):
            return None
        with lock:
            if done:
                return None
            done.append(None)
        done[0] = action()
        return None

    with hook(gcs, interleave):
        yield done


class Child:
    """A handler in a process of its own (tests/crash_child.py), which the proxy can kill at its
    n-th storage request: before that request reaches storage, or after it took effect."""

    def __init__(self, gcs: FakeGcs, env: dict[str, str]):
        self.gcs, self.env = gcs, env
        self.requests: list[Call] = []

    def run(
        self, kind: str, payload: dict, kill_at: int | None = None, phase: str = "before"
    ) -> subprocess.CompletedProcess:
        """Run one job to its end, or until it is killed at storage request `kill_at` (1-based)."""
        self.requests = []
        process: list[subprocess.Popen] = []
        ready = threading.Event()
        serving = threading.local()  # the proxy answers each request in a thread of its own
        counting = threading.Lock()

        def count(call: Call, when: str):
            if when == "before":
                with counting:
                    self.requests.append(call)
                    serving.number = len(self.requests)
            # The n-th request itself, also when requests sent side by side overlap.
            if kill_at is not None and serving.number == kill_at and when == phase:
                ready.wait(10)
                process[0].send_signal(signal.SIGKILL)
                process[0].wait()
                raise DropConnection
            return None

        with hook(self.gcs, count):
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.crash_child", kind, json.dumps(payload)],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            process.append(child)
            ready.set()
            stdout, stderr = child.communicate(timeout=120)
        return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
