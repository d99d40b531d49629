"""Pub/Sub: publishing (and waiting for the server's acknowledgement), and reading held messages.

A publish that fails raises, so the calling handler fails and the platform retries it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from inspection import calls

PUBLISH_TIMEOUT_S = 60.0
# Deliveries of one message before Pub/Sub forwards it to the dead-letter topic (it allows 5 to
# 100); the push subscription declares it and the local stand-in plays it.
MAX_DELIVERY_ATTEMPTS = 5
PULL_TIMEOUT_S = 10.0


@dataclass
class Held:
    """One message held on a pull subscription; `done()` acknowledges it, `keep()` leaves it there."""

    data: bytes
    attributes: dict[str, str]
    done: Callable[[], None]
    keep: Callable[[], None]


# The local stack can stand in for Pub/Sub in-process when Google's emulator is not installed.
# It registers a callable per topic (and per held subscription) here; the cloud never does.
_local_topics: dict[str, Callable[[bytes, dict[str, str]], str]] = {}
_local_held: dict[str, Callable[[int], list[Held]]] = {}


def register_local_topic(topic: str, deliver: Callable[[bytes, dict[str, str]], str]) -> None:
    """Route publishes to `topic` to an in-process stand-in (local stack only)."""
    _local_topics[topic] = deliver


def register_local_held(subscription: str, pull: Callable[[int], list[Held]]) -> None:
    """Serve pulls from `subscription` from an in-process stand-in (local stack only)."""
    _local_held[subscription] = pull


def unregister_local(name: str) -> None:
    _local_topics.pop(name, None)
    _local_held.pop(name, None)


def _publisher():
    return _publisher_for(calls.current())


@functools.cache
def _publisher_for(deployable: str):
    from google.api_core.gapic_v1.client_info import ClientInfo
    from google.cloud import pubsub_v1  # honours PUBSUB_EMULATOR_HOST

    return pubsub_v1.PublisherClient(client_info=ClientInfo(user_agent=calls.user_agent(deployable)))


_publisher.cache_clear = _publisher_for.cache_clear  # a restarted emulator listens on a new port


@functools.cache
def _subscriber():
    from google.api_core.gapic_v1.client_info import ClientInfo
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient(client_info=ClientInfo(user_agent=calls.user_agent()))


def publish(topic: str, data: bytes, **attributes: str) -> str:
    """Publish and wait until the server has it; returns the message id."""
    calls.record("pubsub.topics.publish", topic)
    local = _local_topics.get(topic)
    if local is not None:
        return local(data, attributes)
    return _publisher().publish(topic, data, **attributes).result(timeout=PUBLISH_TIMEOUT_S)


def held(subscription: str, limit: int) -> Iterator[Held]:
    """Up to `limit` messages waiting on a pull subscription."""
    calls.record("pubsub.subscriptions.pull", subscription)
    local = _local_held.get(subscription)
    if local is not None:
        for message in local(limit):
            yield _recorded(message, subscription)
        return
    from google.api_core import exceptions as gexc

    client = _subscriber()
    try:
        response = client.pull(
            request={"subscription": subscription, "max_messages": limit}, timeout=PULL_TIMEOUT_S
        )
    except gexc.DeadlineExceeded:
        return
    for received in response.received_messages:
        ack_id = received.ack_id
        yield _recorded(
            Held(
                data=received.message.data,
                attributes=dict(received.message.attributes),
                done=lambda a=ack_id: client.acknowledge(
                    request={"subscription": subscription, "ack_ids": [a]}
                ),
                keep=lambda a=ack_id: client.modify_ack_deadline(
                    request={"subscription": subscription, "ack_ids": [a], "ack_deadline_seconds": 0}
                ),
            ),
            subscription,
        )


def _recorded(message: Held, subscription: str) -> Held:
    """The message, its acknowledgement and its return recorded as the calls they are."""

    def done() -> None:
        calls.record("pubsub.subscriptions.acknowledge", subscription)
        message.done()

    def keep() -> None:
        calls.record("pubsub.subscriptions.modifyAckDeadline", subscription)
        message.keep()

    return Held(message.data, message.attributes, done, keep)
