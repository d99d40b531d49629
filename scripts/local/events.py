"""The local Eventarc: object-finalized notifications → CloudEvents POSTed to the predict function.

The CloudEvent is the one Eventarc sends for `google.cloud.storage.object.v1.finalized` (binary
mode: `ce-*` headers, the object resource as JSON data). A delivery that fails is retried with
backoff, as the deployed trigger's retry policy does; one that never succeeds is kept in `failed`.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid

import requests

from inspection.messages import FINALIZED

MAX_ATTEMPTS = 8


def cloud_event_headers(resource: dict) -> dict[str, str]:
    """Eventarc's binary-mode headers for one finalized object."""
    return {
        "ce-id": uuid.uuid4().hex,
        "ce-specversion": "1.0",
        "ce-type": FINALIZED,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{resource['bucket']}",
        "ce-subject": _header_value(f"objects/{resource['name']}"),
        "ce-time": resource.get("updated") or resource.get("timeCreated") or "",
        "content-type": "application/json",
    }


def _header_value(text: str) -> str:
    """The CloudEvents HTTP binding percent-encodes a header value's characters outside printable
    ASCII, and `%` and `"` (https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/http-protocol-binding.md)."""
    return "".join(
        ch
        if " " <= ch <= "~" and ch not in '%"'
        else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in text
    )


class EventBridge:
    """Deliver finalize events for `bucket` to `endpoint` with a few worker threads."""

    def __init__(self, bucket: str, endpoint: str, workers: int = 2):
        self.bucket, self.endpoint, self.workers = bucket, endpoint, workers
        self.failed: list[dict] = []
        self._queue: queue.Queue = queue.Queue()

    def start(self) -> EventBridge:
        for _ in range(self.workers):
            threading.Thread(target=self._loop, daemon=True, name="eventarc").start()
        return self

    def __call__(self, resource: dict) -> None:
        if resource.get("bucket") == self.bucket:
            self._queue.put((resource, 1))

    def _loop(self) -> None:
        session = requests.Session()
        while (item := self._queue.get()) is not None:
            resource, attempt = item
            try:
                response = session.post(
                    self.endpoint, json=resource, headers=cloud_event_headers(resource), timeout=120
                )
                ok = response.status_code < 300
            except Exception:  # any failure to deliver is retried, as Eventarc retries it
                ok = False
            if ok:
                continue
            if attempt >= MAX_ATTEMPTS:
                self.failed.append(resource)
                continue
            time.sleep(min(0.2 * 2**attempt, 5.0))
            self._queue.put((resource, attempt + 1))

    def stop(self) -> None:
        for _ in range(self.workers):
            self._queue.put(None)
