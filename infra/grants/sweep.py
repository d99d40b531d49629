"""What the sweep may do: find stranded photos in inbound, quarantine, mark and count, publish, and
replay held messages. The model it serves is read by common.model_grant, as predict's is."""

from __future__ import annotations

from infra.context import Context
from infra.grants.common import claim_advance
from infra.iam import Grants


def grants(ctx: Context, iam: Grants, member) -> None:
    """The sweep finds stranded photos, quarantines, marks and counts, publishes, and replays held
    messages (the model grant is CloudFunction's, as predict's)."""
    buckets, messaging, roles = ctx.buckets, ctx.messaging, ctx.roles
    iam.bucket(
        "iam-sweeper-inbound",
        buckets.inbound,
        member,
        roles.name("objectRedrive"),
        "the sweep lists inbound for stranded images, reads them, and quarantines unusable ones",
    )
    iam.bucket(
        "iam-sweeper-prediction",
        buckets.prediction,
        member,
        roles.name("objectQueue"),
        "the sweep quarantines unusable files in rejected/, marks what it re-drove, counts the "
        "unclear/ queue for the alerts and gives lost queue entries back",
    )
    claim_advance(iam, roles, buckets, member, "sweeper")
    iam.topic(
        "iam-sweeper-publish",
        messaging.predictions,
        member,
        "roles/pubsub.publisher",
        "the sweep publishes predictions of stranded images, and dead-lettered ones again",
    )
    iam.subscription(
        "iam-sweeper-held",
        messaging.dead_letter_held,
        member,
        roles.name("messagesConsume"),
        "the sweep takes dead-lettered predictions off the held subscription to replay them",
    )
