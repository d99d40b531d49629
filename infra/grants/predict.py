"""What predict may do: read and take photos out of inbound, place quarantined files and anomaly
maps, advance its claims, publish predictions, and be triggered by storage events. The model it
serves is read by common.model_grant, as the sweep's is."""

from __future__ import annotations

from infra.context import Context
from infra.grants.common import claim_advance
from infra.iam import Grants, sa


def grants(ctx: Context, iam: Grants, member) -> None:
    """Predict reads and quarantines photos, advances its claims, publishes, and is triggered."""
    buckets, messaging, roles = ctx.buckets, ctx.messaging, ctx.roles
    take, place = roles.name("objectTake"), roles.name("objectPlace")
    iam.bucket(
        "iam-predict-inbound",
        buckets.inbound,
        member,
        take,
        "predict reads each new photo, and removes an unusable one after quarantining it",
    )
    iam.bucket(
        "iam-predict-prediction",
        buckets.prediction,
        member,
        place,
        "predict quarantines unusable files in rejected/, and keeps the anomaly maps of images "
        "for a person or defect/ in heatmaps/, without overwriting anything",
    )
    claim_advance(iam, roles, buckets, member, "predict")
    iam.topic(
        "iam-predict-publish",
        messaging.predictions,
        member,
        "roles/pubsub.publisher",
        "predict publishes each prediction",
    )
    trigger_grants(iam, ctx)


def trigger_grants(iam: Grants, ctx: Context) -> None:
    """What a storage trigger needs in the project. The Cloud Storage agent's publisher binding is
    the same binding in every stack of the project, so it outlives this one on destroy."""
    s, agents = ctx.settings, ctx.agents
    shared = Grants(iam.parent, iam.after, retain=True)
    shared.project(
        "iam-gcs-agent-publisher",
        s.project,
        sa(agents.gcs),
        "roles/pubsub.publisher",
        "the Cloud Storage service agent publishes object events to the topic Eventarc creates for the "
        "trigger; that topic does not exist before the trigger, so the grant is on the project (kept on "
        "destroy: every stack's trigger relies on this one binding)",
    )
    iam.grants += shared.grants
    iam.project(
        "iam-trigger-event-receiver",
        s.project,
        sa(ctx.accounts.trigger.email),
        "roles/eventarc.eventReceiver",
        "the trigger's identity receives the storage events; Eventarc accepts this role only on the project",
    )
