"""The functions (Cloud Run functions, gen2): predict, move, and the grants their work and their
triggers need. Each is one `CloudFunction`: its zip, its grants, a wait, the function, and who may
invoke it; the sweep (infra/sweep.py) is a third.

First-deploy facts this relies on (docs/gcp-rules.md):
- grants and new service agents take time to take effect, and an Eventarc trigger created seconds
  after its grants fails in a fresh project: a declared wait sits between them
  (https://github.com/hashicorp/terraform-provider-google/issues/25294);
- a storage trigger needs the Cloud Storage service agent to publish, and the trigger's identity
  to receive events (https://cloud.google.com/eventarc/standard/docs/roles-permissions).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pulumi
import pulumi_gcp as gcp

from infra import packaging
from infra.context import Context
from infra.grants import move as move_grants
from infra.grants import predict as predict_grants
from infra.grants.common import model_grant
from infra.iam import Grant, Grants, sa
from infra.waits import propagation_wait
from inspection.messages import FINALIZED
from inspection.settings import MoveSettings, PredictSettings

RUNTIME = "python312"
FUNCTION_APIS = ("cloudfunctions", "run", "cloudbuild", "artifactregistry", "eventarc")
GRANT_APIS = ("iam", "storage", "pubsub", "cloudresourcemanager")


class CloudFunction:
    """One gen2 function and everything it needs, declared under `parent`:

    - its content-named zip (with only its classifier backend's runtime, where it has one);
    - the grants its work needs, declared by `grants(iam, member)`, and the model grant when it
      classifies;
    - a wait after those grants (and the build's), repeated whenever they change;
    - the function, on its own account, internal ingress unless told otherwise;
    - run.invoker for exactly the caller that delivers to it.
    """

    def __init__(
        self,
        kind: str,
        ctx: Context,
        parent: pulumi.Resource,
        *,
        entry_point: str,
        description: str,
        account,
        env: dict,
        grants: Callable[[Grants, pulumi.Output], None],
        invoker: tuple[str, pulumi.Input[str], str],  # (who, their member, why)
        classifies: bool = False,
        max_instances: int,
        memory: str,
        timeout: int,
        ingress: str = "ALLOW_INTERNAL_ONLY",
        waits_for: tuple[pulumi.Resource, ...] = (),
        **trigger,
    ):
        s, apis, buckets, build = ctx.settings, ctx.apis, ctx.buckets, ctx.build
        self.member = sa(account.email)
        iam = Grants(parent, [apis.service(n) for n in GRANT_APIS])
        grants(iam, self.member)
        if classifies:
            model_grant(iam, ctx, self.member, kind)
        self.wait = propagation_wait(
            f"wait-iam-{kind}", s, parent, [*iam.grants, *build.grants], [*waits_for]
        )
        source = packaging.source_object(
            kind,
            packaging.function_files(kind, tuple(b.name for b, _ in s.served) if classifies else None),
            buckets.sources,
            parent,
        )
        self.function = gcp.cloudfunctionsv2.Function(
            f"function-{kind}",
            **s.placed(kind),
            description=description,
            build_config={
                "runtime": RUNTIME,
                "entry_point": entry_point,
                "service_account": build.builder.id,
                "docker_repository": build.repository.id,
                "source": {"storage_source": {"bucket": buckets.sources.name, "object": source.name}},
            },
            service_config={
                "service_account_email": account.email,
                "environment_variables": env,
                "max_instance_count": max_instances,
                "available_memory": memory,
                "timeout_seconds": timeout,
                "ingress_settings": ingress,
                "all_traffic_on_latest_revision": True,
            },
            labels=s.labels,
            opts=pulumi.ResourceOptions(
                parent=parent,
                # its record lines reach the records only once the sink may write them
                depends_on=[self.wait, ctx.records.delivery, *(apis.service(n) for n in FUNCTION_APIS)],
            ),
            **trigger,
        )
        who, caller, why = invoker
        invoke = Grants(parent, [apis.service("run")], used_by=f"the {who}'s delivery (Google's platform)")
        invoke.invoker(f"iam-{who}-run-{kind}", self.function, caller, why)
        self.grants: list[Grant] = iam.grants + invoke.grants
        self.uri = self.function.service_config.apply(lambda c: c.uri)


class Functions(pulumi.ComponentResource):
    """Predict, triggered by new photos in inbound, and move, pushed by our own subscription."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:functions:Functions", name, None, opts)
        s, buckets, messaging, a, agents = ctx.settings, ctx.buckets, ctx.messaging, ctx.accounts, ctx.agents
        self.predict = CloudFunction(
            "predict",
            ctx,
            self,
            entry_point="predict_image",
            description="Classify each photo finalized in the inbound bucket and publish it",
            account=a.predict,
            env=PredictSettings.environment(**predict_fields(ctx)),
            grants=functools.partial(predict_grants.grants, ctx),
            invoker=(
                "trigger",
                sa(a.trigger.email),
                "Eventarc delivers storage events to predict as the trigger",
            ),
            classifies=True,
            max_instances=s.predict_max_instances,
            memory="1Gi",
            timeout=120,  # decoding, a model in the function
            waits_for=(agents.eventarc_identity,),
            event_trigger={
                "event_type": FINALIZED,
                "event_filters": [{"attribute": "bucket", "value": buckets.inbound.name}],
                "retry_policy": "RETRY_POLICY_RETRY",
                "service_account_email": a.trigger.email,
                "trigger_region": s.region,
            },
        )

        # No event_trigger: our own push subscription (infra/push.py) invokes move.
        self.move = CloudFunction(
            "move",
            ctx,
            self,
            entry_point="move_image",
            description="Route each prediction into ok/, defect/ or unclear/",
            account=a.move,
            env=MoveSettings.environment(
                prediction_bucket=buckets.prediction.name,
                threshold=s.threshold,
                dead_letter_topic=messaging.dead_letter.id,
                inbound_bucket=buckets.inbound.name,
                line_segment=s.line_segment,
            ),
            grants=functools.partial(move_grants.grants, ctx),
            invoker=(
                "pusher",
                sa(a.pusher.email),
                "the push subscription calls move with the pusher's OIDC token",
            ),
            max_instances=s.move_max_instances,
            memory="256Mi",
            timeout=60,
        )
        self.grants = self.predict.grants + self.move.grants
        self.register_outputs({"predict_uri": self.predict.uri, "move_uri": self.move.uri})


def predict_fields(ctx: Context) -> dict:
    """PredictSettings' fields as this stack sets them; the sweep runs the same core."""
    s = ctx.settings
    return {
        "predictions_topic": ctx.messaging.predictions.id,
        "prediction_bucket": ctx.buckets.prediction.name,
        "inbound_bucket": ctx.buckets.inbound.name,
        "backend": s.backend,
        "model": s.model or None,
        "second_opinion": s.second_opinion or None,
        "input_guard": s.input_guard or None,
        "threshold": s.threshold,
        "label_map": s.label_map,
        "line_segment": s.line_segment,
    }
