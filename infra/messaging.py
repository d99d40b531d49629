"""Pub/Sub: the predictions topic, and its dead-letter topic with a retained subscription where a
person can read what ended there (`<prefix>-predictions-dead-letter-held`). The push subscription
to the move function is infra/push.py: it is built once move exists."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings

DEAD_LETTER_RETENTION = "604800s"  # 7 days, the maximum


class Messaging(pulumi.ComponentResource):
    def __init__(self, name: str, settings: Settings, apis, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:messaging:Topics", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=[apis.service("pubsub")])
        p = settings.prefix
        self.predictions, self.dead_letter = (
            gcp.pubsub.Topic(key, name=name, project=settings.project, labels=settings.labels, opts=child)
            for key, name in (
                ("topic-predictions", f"{p}-predictions"),
                ("topic-dead-letter", f"{p}-predictions-dead-letter"),
            )
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
