"""The predict and move functions (Cloud Run functions, gen2), packaged from this repository."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra import packaging
from infra.config import Settings

RUNTIME = "python312"
FINALIZED = "google.cloud.storage.object.v1.finalized"


def source_object(
    kind: str, files, bucket: gcp.storage.Bucket, parent: pulumi.Resource
) -> gcp.storage.BucketObject:
    """Upload a deployable named by its content hash; the same source is the same object."""
    name, path = packaging.write(kind, files)
    return gcp.storage.BucketObject(
        f"source-{kind}",
        bucket=bucket.name,
        name=name,
        source=pulumi.FileAsset(str(path)),
        content_type="application/zip",
        opts=pulumi.ResourceOptions(parent=parent),
    )


class Functions(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        buckets,
        messaging,
        accounts,
        grants: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("quality-inspection:functions:Functions", name, None, opts)
        s = settings
        predict_env = {
            "PREDICTIONS_TOPIC": messaging.predictions.id,
            "PREDICTION_BUCKET": buckets.prediction.name,
            "CLASSIFIER_BACKEND": s.backend,
            "LABEL_MAP": s.label_map,
            **(
                {"VERTEX_ENDPOINT": s.vertex_endpoint}
                if s.backend == "vertex"
                else {"ONNX_MODEL": s.onnx_model}
            ),
        }
        move_env = {
            "PREDICTION_BUCKET": buckets.prediction.name,
            "PREDICTION_THRESHOLD": str(s.threshold),
            "DEAD_LETTER_TOPIC": messaging.dead_letter.id,
        }
        # Each function (and so its trigger) waits for its grants itself: a component's depends_on is
        # not a promise about its children, and fresh projects fail exactly here (gcp-facts.md).
        child = pulumi.ResourceOptions(parent=self, depends_on=grants)
        self.predict_source = source_object(
            "predict", packaging.function_files("predict"), buckets.sources, self
        )
        self.move_source = source_object("move", packaging.function_files("move"), buckets.sources, self)
        self.predict = gcp.cloudfunctionsv2.Function(
            "function-predict",
            name=f"{s.prefix}-predict",
            project=s.project,
            location=s.region,
            description="Classify each photo finalized in the inbound bucket and publish the prediction",
            build_config={
                "runtime": RUNTIME,
                "entry_point": "predict_image",
                "service_account": accounts.builder.id,
                "source": {
                    "storage_source": {"bucket": buckets.sources.name, "object": self.predict_source.name}
                },
            },
            service_config={
                "service_account_email": accounts.predict.email,
                "environment_variables": predict_env,
                "max_instance_count": s.predict_max_instances,
                "available_memory": "1Gi",  # image decoding and onnxruntime
                "timeout_seconds": 120,
                "ingress_settings": "ALLOW_INTERNAL_ONLY",
                "all_traffic_on_latest_revision": True,
            },
            event_trigger={
                "event_type": FINALIZED,
                "event_filters": [{"attribute": "bucket", "value": buckets.inbound.name}],
                "retry_policy": "RETRY_POLICY_RETRY",
                "service_account_email": accounts.invoker.email,
                "trigger_region": s.region,
            },
            labels=s.labels,
            opts=child,
        )
        self.move = gcp.cloudfunctionsv2.Function(
            "function-move",
            name=f"{s.prefix}-move",
            project=s.project,
            location=s.region,
            description="Route each prediction into ok/, defect/ or unclear/ (pushed by our subscription)",
            build_config={
                "runtime": RUNTIME,
                "entry_point": "move_image",
                "service_account": accounts.builder.id,
                "source": {
                    "storage_source": {"bucket": buckets.sources.name, "object": self.move_source.name}
                },
            },
            service_config={
                "service_account_email": accounts.move.email,
                "environment_variables": move_env,
                "max_instance_count": s.move_max_instances,
                "available_memory": "256Mi",
                "timeout_seconds": 60,
                "ingress_settings": "ALLOW_INTERNAL_ONLY",  # Pub/Sub push in the same project is internal
                "all_traffic_on_latest_revision": True,
            },
            labels=s.labels,
            opts=child,
        )
        self.register_outputs({"predict_uri": self.predict.url, "move_uri": self.move.url})
