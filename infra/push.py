"""The push subscription that delivers predictions to the move function, retried, then
dead-lettered to the topics infra/messaging.py declares.

Why our own push subscription: the subscription Eventarc creates for a gen2 Pub/Sub trigger cannot
be given a dead-letter policy, so messages that keep failing would be dropped after the retry
window (https://github.com/hashicorp/terraform-provider-google/issues/17697). Ours retries with
backoff, then dead-letters, and a person can read what
ended there from `<prefix>-predictions-dead-letter-held`.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.context import Context
from infra.iam import Grants, sa
from infra.waits import propagation_wait
from inspection.publishing import MAX_DELIVERY_ATTEMPTS


class PushToMove(pulumi.ComponentResource):
    """Predictions → the move function over HTTPS with an OIDC token, retried, then dead-lettered,
    and the grants that delivery needs.

    The push endpoint and audience are the Cloud Run service URI (run.app), which is the audience
    Cloud Run checks (https://cloud.google.com/run/docs/triggering/pubsub-push).
    """

    def __init__(self, name: str, ctx: Context, *, move, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:messaging:PushToMove", name, None, opts)
        settings, apis, messaging, pusher, agents = (
            ctx.settings,
            ctx.apis,
            ctx.messaging,
            ctx.accounts.pusher,
            ctx.agents,
        )
        s = settings
        iam = Grants(self, [apis.service("run"), apis.service("iam"), apis.service("pubsub")])
        move_uri = move.uri
        if s.pubsub_agent_token_creator:
            iam.service_account(
                "iam-pubsub-agent-pusher-token",
                pusher,
                sa(agents.pubsub),
                "roles/iam.serviceAccountTokenCreator",
                "Pub/Sub mints the push OIDC token as the pusher; only projects created before "
                "2021-04-08 need "
                "this grant (pubsubAgentTokenCreator: true)",
            )
        iam.topic(
            "iam-pubsub-agent-dead-letter",
            messaging.dead_letter,
            sa(agents.pubsub),
            "roles/pubsub.publisher",
            f"Pub/Sub forwards messages that failed {MAX_DELIVERY_ATTEMPTS} deliveries to the "
            "dead-letter topic",
        )
        # The pusher's run.invoker on move is move's own grant (infra/functions.py); deliveries wait
        # for it as for the Pub/Sub agent's.
        invoker = [g for g in move.grants if g.role == "roles/run.invoker"]
        self.propagation = propagation_wait("wait-iam-push", s, self, [*iam.grants, *invoker])
        self.subscription = gcp.pubsub.Subscription(
            "subscription-predictions-to-move",
            name=f"{s.prefix}-predictions-to-move",
            project=s.project,
            topic=messaging.predictions.id,
            ack_deadline_seconds=120,
            push_config={
                "push_endpoint": move_uri,
                "oidc_token": {"service_account_email": pusher.email, "audience": move_uri},
            },
            dead_letter_policy={
                "dead_letter_topic": messaging.dead_letter.id,
                "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
            },
            retry_policy={"minimum_backoff": "10s", "maximum_backoff": "600s"},
            expiration_policy={"ttl": ""},
            labels=s.labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.propagation, apis.service("pubsub")]),
        )
        iam.subscription(
            "iam-pubsub-agent-ack",
            self.subscription,
            sa(agents.pubsub),
            "roles/pubsub.subscriber",
            "Pub/Sub acknowledges a dead-lettered message on the source subscription",
        )
        self.grants = iam.grants
        self.register_outputs({"subscription": self.subscription.id})
