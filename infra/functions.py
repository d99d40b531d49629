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
        self._child = pulumi.ResourceOptions(parent=self, depends_on=grants)
        self._settings, self._buckets, self._builder = s, buckets, accounts.builder
        self.predict = self._function(
            "predict", "predict_image", "Classify each photo finalized in the inbound bucket and publish it",
            account=accounts.predict, env=predict_env, max_instances=s.predict_max_instances,
            memory="1Gi", timeout=120,  # image decoding and onnxruntime
            event_trigger={
                "event_type": FINALIZED,
                "event_filters": [{"attribute": "bucket", "value": buckets.inbound.name}],
                "retry_policy": "RETRY_POLICY_RETRY",
                "service_account_email": accounts.invoker.email,
                "trigger_region": s.region,
            },
        )  # fmt: skip
        # No event_trigger: our own push subscription (messaging.push_to_move) invokes move.
        self.move = self._function(
            "move", "move_image", "Route each prediction into ok/, defect/ or unclear/",
            account=accounts.move, env=move_env, max_instances=s.move_max_instances,
            memory="256Mi", timeout=60,
        )  # fmt: skip
        self.register_outputs({"predict_uri": self.predict.url, "move_uri": self.move.url})

    def _function(self, kind: str, entry_point: str, description: str, *, account, env, max_instances: int,
                  memory: str, timeout: int, **trigger) -> gcp.cloudfunctionsv2.Function:  # fmt: skip
        """A gen2 function from its content-named zip, on its own account, reachable only internally."""
        s = self._settings
        source = source_object(kind, packaging.function_files(kind), self._buckets.sources, self)
        return gcp.cloudfunctionsv2.Function(
            f"function-{kind}",
            name=f"{s.prefix}-{kind}",
            project=s.project,
            location=s.region,
            description=description,
            build_config={
                "runtime": RUNTIME,
                "entry_point": entry_point,
                "service_account": self._builder.id,
                "source": {"storage_source": {"bucket": self._buckets.sources.name, "object": source.name}},
            },
            service_config={
                "service_account_email": account.email,
                "environment_variables": env,
                "max_instance_count": max_instances,
                "available_memory": memory,
                "timeout_seconds": timeout,
                # Eventarc and Pub/Sub push in the same project count as internal traffic.
                "ingress_settings": "ALLOW_INTERNAL_ONLY",
                "all_traffic_on_latest_revision": True,
            },
            labels=s.labels,
            opts=self._child,
            **trigger,
        )
