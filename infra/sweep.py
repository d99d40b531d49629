"""The re-drive sweep: a function that Cloud Scheduler calls every few minutes, on its own account.

It runs predict's core on inbound images older than `redriveAfterMinutes` and publishes again the
predictions the push subscription gave up on (inspection/sweep.py). Its ingress is internal:
Cloud Scheduler in the same project counts as internal traffic
(https://cloud.google.com/run/docs/securing/ingress), and a person who wants a sweep now runs the
job (`python -m scripts.sweep`, which asks Cloud Scheduler to run it), so nothing outside
Google's network can reach the function. Cloud Scheduler signs its call with an OIDC token for the
sweeper account (https://cloud.google.com/scheduler/docs/http-target-auth).
"""

from __future__ import annotations

import functools

import pulumi
import pulumi_gcp as gcp

from infra.context import Context
from infra.functions import CloudFunction, predict_fields
from infra.grants import sweep as sweep_grants
from infra.iam import sa
from infra.waits import propagation_wait
from inspection.settings import SweepSettings


class Sweep(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:sweep:Sweep", name, None, opts)
        s, apis, messaging, accounts = (
            ctx.settings,
            ctx.apis,
            ctx.messaging,
            ctx.accounts,
        )
        member = sa(accounts.sweeper.email)
        self.sweep = CloudFunction(
            "sweep",
            ctx,
            self,
            entry_point="sweep",
            description="Re-drive stranded images and dead-lettered predictions",
            account=accounts.sweeper,
            env=SweepSettings.environment(
                **predict_fields(ctx),
                held_subscription=messaging.dead_letter_held.id,
                redrive_after_s=s.redrive_after_minutes * 60,
            ),
            grants=functools.partial(sweep_grants.grants, ctx),
            invoker=("sweeper", member, "Cloud Scheduler calls the sweep with the sweeper's OIDC token"),
            classifies=True,
            max_instances=1,
            memory="1Gi",
            timeout=540,
        )
        self.function, self.grants, uri = self.sweep.function, self.sweep.grants, self.sweep.uri
        invokers = [g for g in self.grants if g.role == "roles/run.invoker"]
        self.job = gcp.cloudscheduler.Job(
            "scheduler-redrive",
            name=f"{s.prefix}-redrive",
            project=s.project,
            region=s.region,
            description="Re-drive stranded images and dead-lettered predictions (docs/pipeline.md)",
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
                    propagation_wait("wait-iam-schedule", s, self, invokers),
                    apis.service("cloudscheduler"),
                ],
            ),
        )
        self.register_outputs({"sweep_uri": uri})
