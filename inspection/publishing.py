"""Publishing to Pub/Sub and waiting for the server's acknowledgement.

A publish that fails raises, so the calling handler fails and the platform retries it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

PUBLISH_TIMEOUT_S = 60.0

# The local stack can stand in for Pub/Sub in-process when Google's emulator is not installed.
# It registers a callable per topic path here; the cloud never does.
_local_topics: dict[str, Callable[[bytes, dict[str, str]], str]] = {}


def register_local_topic(topic: str, deliver: Callable[[bytes, dict[str, str]], str]) -> None:
    """Route publishes to `topic` to an in-process stand-in (local stack only)."""
    _local_topics[topic] = deliver


def unregister_local_topic(topic: str) -> None:
    _local_topics.pop(topic, None)


@functools.cache
def _publisher():
    from google.cloud import pubsub_v1  # honours PUBSUB_EMULATOR_HOST

    return pubsub_v1.PublisherClient()


def publish(topic: str, data: bytes, **attributes: str) -> str:
    """Publish and wait until the server has it; returns the message id."""
    local = _local_topics.get(topic)
    if local is not None:
        return local(data, attributes)
    return _publisher().publish(topic, data, **attributes).result(timeout=PUBLISH_TIMEOUT_S)
