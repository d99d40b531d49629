"""What move may do: take each photo out of inbound, place it, advance its claims, dead-letter."""

from __future__ import annotations

from infra.context import Context
from infra.grants.common import claim_advance
from infra.iam import Grants


def grants(ctx: Context, iam: Grants, member) -> None:
    """Move takes each photo out of inbound, places it, advances its claims, and dead-letters."""
    buckets, messaging, roles = ctx.buckets, ctx.messaging, ctx.roles
    take, place = roles.name("objectTake"), roles.name("objectPlace")
    iam.bucket(
        "iam-move-inbound",
        buckets.inbound,
        member,
        take,
        "move copies the photo out of inbound and deletes exactly the copied generation",
    )
    iam.bucket(
        "iam-move-prediction",
        buckets.prediction,
        member,
        place,
        "move writes ok/, defect/ and unclear/ without overwriting, and reads its copies back",
    )
    claim_advance(iam, roles, buckets, member, "move")
    iam.topic(
        "iam-move-dead-letter",
        messaging.dead_letter,
        member,
        "roles/pubsub.publisher",
        "move sends messages it cannot parse to the dead-letter topic",
    )
