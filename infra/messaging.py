"""Pub/Sub: the predictions topic, its dead-letter topic with a retained subscription, and the push
subscription that delivers predictions to the move function.

Why our own push subscription: the subscription Eventarc creates for a gen2 Pub/Sub trigger cannot
be given a dead-letter policy, so messages that keep failing would be dropped after the retry
window (gcp-facts.md). Ours retries with backoff, then dead-letters, and a person can read what
ended there from `<prefix>-predictions-dead-letter-held`.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings

MAX_DELIVERY_ATTEMPTS = 5  # Pub/Sub allows 5-100
DEAD_LETTER_RETENTION = "604800s"  # 7 days, the maximum


class Messaging(pulumi.ComponentResource):
    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:messaging:Topics", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        p = settings.prefix
        self.predictions = gcp.pubsub.Topic(
            "topic-predictions",
            name=f"{p}-predictions",
            project=settings.project,
            labels=settings.labels,
            opts=child,
        )
        self.dead_letter = gcp.pubsub.Topic(
            "topic-dead-letter",
            name=f"{p}-predictions-dead-letter",
            project=settings.project,
            labels=settings.labels,
            opts=child,
        )
        self.dead_letter_held = gcp.pubsub.Subscription(
            "subscription-dead-letter-held",
            name=f"{p}-predictions-dead-letter-held",
            project=settings.project,
            topic=self.dead_letter.id,
            message_retention_duration=DEAD_LETTER_RETENTION,
            retain_acked_messages=True,
            ack_deadline_seconds=60,
            expiration_policy={"ttl": ""},  # never expires, even when nobody reads it
            labels=settings.labels,
            opts=child,
        )
        self.register_outputs({"predictions": self.predictions.id, "dead_letter": self.dead_letter.id})


def push_to_move(
    settings: Settings,
    messaging: Messaging,
    move_uri: pulumi.Input[str],
    invoker_email: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> gcp.pubsub.Subscription:
    """Predictions → the move function over HTTPS with an OIDC token, retried, then dead-lettered.

    `move_uri` is the Cloud Run service URI (run.app): Cloud Run checks the token's audience against it.
    """
    return gcp.pubsub.Subscription(
        "subscription-predictions-to-move",
        name=f"{settings.prefix}-predictions-to-move",
        project=settings.project,
        topic=messaging.predictions.id,
        ack_deadline_seconds=120,
        push_config={
            "push_endpoint": move_uri,
            "oidc_token": {"service_account_email": invoker_email, "audience": move_uri},
        },
        dead_letter_policy={
            "dead_letter_topic": messaging.dead_letter.id,
            "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
        },
        retry_policy={"minimum_backoff": "10s", "maximum_backoff": "600s"},
        expiration_policy={"ttl": ""},
        labels=settings.labels,
        opts=opts,
    )
