"""The re-drive sweep: a function that Cloud Scheduler calls every few minutes, on its own account.

It runs predict's core on inbound images older than `redriveAfterMinutes` and publishes again the
predictions the push subscription gave up on (inspection/redrive.py). Its ingress admits calls from
outside Google's network so that `python -m scripts.redrive` can run it on demand; every call still
needs an identity holding run.invoker on it (no public access is granted).
Cloud Scheduler signs its call with an OIDC token for the sweeper account
(https://cloud.google.com/scheduler/docs/http-target-auth).
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.context import Context
from infra.functions import (
    FUNCTION_APIS,
    claim_advance,
    function,
    model_grant,
    predict_fields,
    propagation_wait,
)
from infra.iam import Grants, sa
from inspection.settings import SweepSettings


class Sweep(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:sweep:Sweep", name, None, opts)
        settings, apis, buckets, messaging, accounts, roles, build = (
            ctx.settings,
            ctx.apis,
            ctx.buckets,
            ctx.messaging,
            ctx.accounts,
            ctx.roles,
            ctx.build,
        )
        s, member = settings, sa(accounts.sweeper.email)
        iam = Grants(self, [apis.service(n) for n in ("iam", "storage", "pubsub")])
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
            "roles/pubsub.subscriber",
            "the sweep takes dead-lettered predictions off the held subscription to replay them",
        )
        model_grant(iam, s, roles, apis, buckets, member, "sweeper")
        self.grants = iam.grants
        wait = propagation_wait("wait-iam-sweep", s, self, [*self.grants, *build.grants])
        env = SweepSettings.environment(
            **predict_fields(s, buckets, messaging),
            inbound_bucket=buckets.inbound.name,
            held_subscription=messaging.dead_letter_held.id,
            redrive_after_s=s.redrive_after_minutes * 60,
        )
        self.function = function(
            "sweep",
            "sweep",
            "Re-drive stranded images and dead-lettered predictions",
            settings=s,
            buckets=buckets,
            build=build,
            account=accounts.sweeper,
            env=env,
            max_instances=1,
            memory="1Gi",
            timeout=540,
            ingress="ALLOW_ALL",
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[wait, *(apis.service(n) for n in FUNCTION_APIS)]
            ),
        )
        invoke = Grants(self, [apis.service("run")])
        invoke.invoker(
            "iam-sweeper-run-sweep",
            self.function,
            member,
            "Cloud Scheduler calls the sweep with the sweeper's OIDC token",
        )
        self.grants += invoke.grants
        uri = self.function.service_config.apply(lambda c: c.uri)
        self.job = gcp.cloudscheduler.Job(
            "scheduler-redrive",
            name=f"{s.prefix}-redrive",
            project=s.project,
            region=s.region,
            description="Re-drive stranded images and dead-lettered predictions (README: nothing is lost)",
            schedule=f"*/{s.redrive_every_minutes} * * * *",
            time_zone="Etc/UTC",
            attempt_deadline="600s",
            http_target={
                "uri": uri,
                "http_method": "POST",
                "oidc_token": {"service_account_email": accounts.sweeper.email, "audience": uri},
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    propagation_wait("wait-iam-schedule", s, self, invoke.grants),
                    apis.service("cloudscheduler"),
                ],
            ),
        )
        self.register_outputs({"sweep_uri": uri})
