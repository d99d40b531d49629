"""Pub/Sub for the local stack: Google's emulator where it is installed, else an in-process stand-in.

Either way the move function is reached the way the cloud reaches it: an HTTP push of
`{"message": …, "subscription": …}`, redelivered until it answers 2xx, then dead-lettered.
"""

from __future__ import annotations

import base64
import glob
import itertools
import os
import queue
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime

import requests

from inspection import publishing
from inspection.publishing import MAX_DELIVERY_ATTEMPTS
from scripts.local.ports import HOST, die_with_parent, free_port, terminate

JAR_GLOB = "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar"


def find_emulator_jar() -> str | None:
    """The emulator jar of an installed gcloud SDK, if any, and Java to run it."""
    if not shutil.which("java"):
        return None
    roots = [
        os.environ.get("CLOUDSDK_ROOT_DIR", ""),
        "/usr/lib/google-cloud-sdk",
        "/usr/share/google-cloud-sdk",
    ]
    gcloud = shutil.which("gcloud")
    if gcloud:
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(gcloud))))
    for root in filter(None, roots):
        jars = sorted(glob.glob(os.path.join(root, JAR_GLOB)))
        if jars:
            return jars[-1]
    return None


class PubSubEmulator:
    """Google's Pub/Sub emulator as a child process; sets PUBSUB_EMULATOR_HOST for this process."""

    description = "Google's Pub/Sub emulator"

    def __init__(self, jar: str, port: int = 0, project: str = "local"):
        self.jar, self.port, self.project = jar, port or free_port(), project
        self._process: subprocess.Popen | None = None

    def start(self) -> PubSubEmulator:
        self._process = subprocess.Popen(
            ["java", "-jar", self.jar, f"--host={HOST}", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        os.environ["PUBSUB_EMULATOR_HOST"] = f"{HOST}:{self.port}"
        from google.cloud import pubsub_v1

        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        deadline = time.monotonic() + 60
        while True:
            try:
                self.publisher.list_topics(request={"project": f"projects/{self.project}"}, timeout=2)
                return self
            except Exception:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Pub/Sub emulator did not start") from None
                time.sleep(0.2)

    def push_topic(self, topic: str, endpoint: str, dead_letter_topic: str) -> None:
        """A topic pushing to `endpoint`, and a held pull subscription on its dead-letter topic."""
        for name in (topic, dead_letter_topic):
            self.publisher.create_topic(name=name)
        self.subscriber.create_subscription(
            request={
                "name": _subscription(topic, "push"),
                "topic": topic,
                "push_config": {"push_endpoint": endpoint},
                "dead_letter_policy": {
                    "dead_letter_topic": dead_letter_topic,
                    "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
                },
            }
        )
        self.subscriber.create_subscription(
            request={"name": _subscription(dead_letter_topic, "held"), "topic": dead_letter_topic}
        )

    def dead_letters(self, dead_letter_topic: str) -> list[bytes]:
        """Messages held on the dead-letter subscription (acknowledged as read)."""
        response = self.subscriber.pull(
            request={"subscription": _subscription(dead_letter_topic, "held"), "max_messages": 100}, timeout=5
        )
        if response.received_messages:
            self.subscriber.acknowledge(
                request={
                    "subscription": _subscription(dead_letter_topic, "held"),
                    "ack_ids": [m.ack_id for m in response.received_messages],
                }
            )
        return [m.message.data for m in response.received_messages]

    def stop(self) -> None:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        terminate(self._process)
        self._process = None


class InProcessPubSub:
    """A stand-in for machines without Java: push delivery with retries and a dead-letter list."""

    description = "an in-process queue (Google's Pub/Sub emulator was not found)"

    def __init__(self, workers: int = 4):
        self._queue: queue.Queue = queue.Queue()
        self._held: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._workers = workers
        self._topics: list[str] = []

    def start(self) -> InProcessPubSub:
        return self

    def push_topic(self, topic: str, endpoint: str, dead_letter_topic: str) -> None:
        self._held.setdefault(dead_letter_topic, [])
        self._topics += [topic, dead_letter_topic]

        def deliver(data: bytes, attributes: dict[str, str]) -> str:
            message_id = str(next(self._ids))
            self._queue.put((topic, endpoint, dead_letter_topic, data, attributes, message_id, 1))
            return message_id

        publishing.register_local_topic(topic, deliver)
        publishing.register_local_topic(
            dead_letter_topic, lambda data, attributes: self._hold(dead_letter_topic, data, attributes)
        )
        publishing.register_local_held(
            _subscription(dead_letter_topic, "held"), lambda limit: self._pull(dead_letter_topic, limit)
        )
        self._topics.append(_subscription(dead_letter_topic, "held"))
        for _ in range(self._workers):
            threading.Thread(target=self._push_loop, daemon=True, name="inprocess-push").start()

    def _hold(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        with self._lock:
            self._held[topic].append((data, dict(attributes)))
        return str(next(self._ids))

    def _pull(self, topic: str, limit: int) -> list[publishing.Held]:
        """Held messages, as a pull subscription hands them out: each one acknowledged or kept."""
        with self._lock:
            taken, self._held[topic] = self._held[topic][:limit], self._held[topic][limit:]
        return [
            publishing.Held(
                data, attributes, done=lambda: None, keep=lambda m=(data, attributes): self._keep(topic, m)
            )
            for data, attributes in taken
        ]

    def _keep(self, topic: str, message: tuple[bytes, dict[str, str]]) -> None:
        with self._lock:
            self._held[topic].append(message)

    def _push_loop(self) -> None:
        session = requests.Session()
        while (item := self._queue.get()) is not None:
            topic, endpoint, dead_letter, data, attributes, message_id, attempt = item
            body = {
                "message": {
                    "data": base64.b64encode(data).decode(),
                    "attributes": attributes,
                    "messageId": message_id,
                    "publishTime": datetime.now(UTC).isoformat(),
                },
                "subscription": _subscription(topic, "push"),
            }
            try:
                ok = session.post(endpoint, json=body, timeout=60).status_code < 300
            except requests.RequestException:
                ok = False
            if ok:
                continue
            if attempt >= MAX_DELIVERY_ATTEMPTS:  # as Pub/Sub forwards it, with the attempts counted
                self._hold(
                    dead_letter,
                    data,
                    {**attributes, "CloudPubSubDeadLetterSourceDeliveryCount": str(attempt)},
                )
                continue
            time.sleep(min(0.1 * 2**attempt, 2.0))
            self._queue.put((*item[:-1], attempt + 1))

    def held_count(self, dead_letter_topic: str) -> int:
        with self._lock:
            return len(self._held.get(dead_letter_topic, []))

    def dead_letters(self, dead_letter_topic: str) -> list[bytes]:
        with self._lock:
            held, self._held[dead_letter_topic] = self._held.get(dead_letter_topic, []), []
        return [data for data, _ in held]

    def stop(self) -> None:
        for name in self._topics:
            publishing.unregister_local(name)
        for _ in range(self._workers):
            self._queue.put(None)


def held_subscription(dead_letter_topic: str) -> str:
    """The pull subscription that keeps what reached the dead-letter topic."""
    return _subscription(dead_letter_topic, "held")


def _subscription(topic: str, suffix: str) -> str:
    project, _, name = topic.removeprefix("projects/").partition("/topics/")
    return f"projects/{project}/subscriptions/{name}-{suffix}"
