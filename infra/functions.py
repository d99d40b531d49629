"""The predict and move functions (Cloud Run functions, gen2), packaged from this repository, and
the grants their work and their trigger need.

First-deploy facts this relies on (docs/gcp-rules.md):
- grants and new service agents take time to take effect, and an Eventarc trigger created seconds
  after its grants fails in a fresh project: a declared wait sits between them
  (https://github.com/hashicorp/terraform-provider-google/issues/25294);
- a storage trigger needs the Cloud Storage service agent to publish, and the trigger's identity
  to receive events (https://cloud.google.com/eventarc/standard/docs/roles-permissions).
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumiverse_time as time

from infra import packaging
from infra.config import Settings
from infra.context import Context
from infra.iam import Grants, bucket_condition, sa
from inspection import layout
from inspection.messages import FINALIZED
from inspection.settings import MoveSettings, PredictSettings

RUNTIME = "python312"
FUNCTION_APIS = ("cloudfunctions", "run", "cloudbuild", "artifactregistry", "eventarc")


class Functions(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:functions:Functions", name, None, opts)
        settings, apis, buckets, messaging, accounts, agents, roles, build = (
            ctx.settings,
            ctx.apis,
            ctx.buckets,
            ctx.messaging,
            ctx.accounts,
            ctx.agents,
            ctx.roles,
            ctx.build,
        )
        s, a = settings, accounts
        iam = Grants(self, [apis.service(n) for n in ("iam", "storage", "pubsub", "cloudresourcemanager")])
        take, place = roles.name("objectTake"), roles.name("objectPlace")
        predict, move = sa(a.predict.email), sa(a.move.email)
        iam.bucket(
            "iam-predict-inbound",
            buckets.inbound,
            predict,
            take,
            "predict reads each new photo, and removes an unusable one after quarantining it",
        )
        iam.bucket(
            "iam-predict-prediction",
            buckets.prediction,
            predict,
            place,
            "predict quarantines unusable files in rejected/ without overwriting anything",
        )
        claim_advance(iam, roles, buckets, predict, "predict")
        iam.topic(
            "iam-predict-publish",
            messaging.predictions,
            predict,
            "roles/pubsub.publisher",
            "predict publishes each prediction",
        )
        iam.bucket(
            "iam-move-inbound",
            buckets.inbound,
            move,
            take,
            "move copies the photo out of inbound and deletes exactly the copied generation",
        )
        iam.bucket(
            "iam-move-prediction",
            buckets.prediction,
            move,
            place,
            "move writes ok/, defect/ and unclear/ without overwriting, and reads its copies back",
        )
        claim_advance(iam, roles, buckets, move, "move")
        iam.topic(
            "iam-move-dead-letter",
            messaging.dead_letter,
            move,
            "roles/pubsub.publisher",
            "move sends messages it cannot parse to the dead-letter topic",
        )
        model_grant(iam, s, roles, apis, buckets, predict, "predict")
        iam.project(
            "iam-gcs-agent-publisher",
            s.project,
            sa(agents.gcs),
            "roles/pubsub.publisher",
            "the Cloud Storage service agent publishes object events to the topic Eventarc creates for the "
            "trigger; that topic does not exist before the trigger, so the grant is on the project",
        )
        iam.project(
            "iam-trigger-event-receiver",
            s.project,
            sa(a.trigger.email),
            "roles/eventarc.eventReceiver",
            "the trigger's identity receives the storage events; Eventarc accepts this role only on "
            "the project",
        )
        self.grants = iam.grants
        # One declared wait between every grant and service agent above (and the build's) and the
        # functions and their trigger: IAM propagation is not instant in a fresh project.
        self.propagation = propagation_wait(
            "wait-iam-functions", s, self, [*self.grants, *build.grants], [agents.eventarc_identity]
        )
        child = pulumi.ResourceOptions(
            parent=self, depends_on=[self.propagation, *(apis.service(n) for n in FUNCTION_APIS)]
        )
        common = {"settings": s, "buckets": buckets, "build": build, "opts": child}
        self.predict = function(
            "predict",
            "predict_image",
            "Classify each photo finalized in the inbound bucket and publish it",
            account=a.predict,
            env=PredictSettings.environment(**predict_fields(s, buckets, messaging)),
            max_instances=s.predict_max_instances,
            memory="1Gi",
            timeout=120,  # decoding, onnxruntime
            event_trigger={
                "event_type": FINALIZED,
                "event_filters": [{"attribute": "bucket", "value": buckets.inbound.name}],
                "retry_policy": "RETRY_POLICY_RETRY",
                "service_account_email": a.trigger.email,
                "trigger_region": s.region,
            },
            **common,
        )
        # No event_trigger: our own push subscription (messaging.PushToMove) invokes move.
        self.move = function(
            "move",
            "move_image",
            "Route each prediction into ok/, defect/ or unclear/",
            account=a.move,
            max_instances=s.move_max_instances,
            memory="256Mi",
            timeout=60,
            env=MoveSettings.environment(
                prediction_bucket=buckets.prediction.name,
                threshold=s.threshold,
                dead_letter_topic=messaging.dead_letter.id,
                inbound_bucket=buckets.inbound.name,
                line_segment=s.line_segment,
            ),
            **common,
        )
        invoke = Grants(self, [apis.service("run")])
        invoke.invoker(
            "iam-trigger-run-predict",
            self.predict,
            sa(a.trigger.email),
            "Eventarc delivers storage events to predict as the trigger",
        )
        self.grants += invoke.grants
        self.register_outputs({"predict_uri": self.predict.url, "move_uri": self.move.url})


def propagation_wait(name: str, settings: Settings, parent, grants, others=()) -> time.Sleep:
    """A declared wait after `grants` (and `others`), for IAM propagation (docs/gcp-rules.md)."""
    return time.Sleep(
        name,
        create_duration=settings.iam_propagation,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*(g.resource for g in grants), *others]),
    )


def claim_advance(iam: Grants, roles, buckets, member, key: str) -> None:
    """Overwriting an object needs storage.objects.delete as well as create
    (https://cloud.google.com/storage/docs/access-control/iam-json); a move overwrites only its
    own claim, so the grant admits claims/ and nothing else."""
    iam.bucket(
        f"iam-{key}-claims",
        buckets.prediction,
        member,
        roles.name("claimAdvance"),
        f"{key} records each move's progress in its claim, which replaces the claim object",
        condition=bucket_condition("only claims/", buckets.prediction.name, layout.CLAIMS),
    )


def model_grant(iam: Grants, settings: Settings, roles, apis, buckets, member, key: str) -> None:
    """Access to exactly the configured model, only when one is configured. A model in one of our
    buckets makes the grant wait for that bucket."""
    s = settings
    if s.backend == "vertex":
        endpoint = Grants(iam.parent, [*iam.after, apis.service("aiplatform")])
        endpoint.endpoint(
            f"iam-{key}-vertex",
            s.project,
            s.vertex_region,
            s.vertex_endpoint_id,
            member,
            roles.name("predictOnly"),
            f"{key} asks the endpoint for online predictions, and nothing else",
        )
        iam.grants += endpoint.grants
    elif s.backend in ("onnx", "tflite"):
        bucket_name, path = layout.split_gs_uri(s.onnx_model if s.backend == "onnx" else s.tflite_model)
        folder = path.rpartition("/")[0]
        ours = buckets.by_name.get(bucket_name)
        iam.bucket(
            f"iam-{key}-model",
            ours if ours is not None else bucket_name,
            member,
            "roles/storage.objectViewer",
            f"{key} downloads the model once per instance, from the folder models live in",
            condition=bucket_condition(f"only {folder}", bucket_name, folder) if folder else None,
        )


def predict_fields(settings: Settings, buckets, messaging) -> dict:
    """PredictSettings' fields as this stack sets them; the sweep runs the same core."""
    s = settings
    return {
        "predictions_topic": messaging.predictions.id,
        "prediction_bucket": buckets.prediction.name,
        "backend": s.backend,
        "label_map": s.label_map,
        "line_segment": s.line_segment,
        "vertex_endpoint": s.vertex_endpoint if s.backend == "vertex" else None,
        "onnx_model": s.onnx_model if s.backend == "onnx" else None,
        "tflite_model": s.tflite_model if s.backend == "tflite" else None,
    }


def function(
    kind: str,
    entry_point: str,
    description: str,
    *,
    settings: Settings,
    buckets,
    build,
    account,
    env: dict,
    max_instances: int,
    memory: str,
    timeout: int,
    opts: pulumi.ResourceOptions,
    ingress: str = "ALLOW_INTERNAL_ONLY",
    **trigger,
) -> gcp.cloudfunctionsv2.Function:
    """A gen2 function from its content-named zip, on its own account. Internal ingress by default:
    Eventarc and Pub/Sub push in the same project count as internal traffic."""
    s = settings
    source = packaging.source_object(kind, packaging.function_files(kind), buckets.sources, opts.parent)
    return gcp.cloudfunctionsv2.Function(
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
        opts=opts,
        **trigger,
    )
