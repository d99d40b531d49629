"""The four buckets. Every one: uniform access, public access prevention enforced, labels, and a
name from the prefix (no random suffix)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings
from infra.kept import kept
from inspection import layout

INBOUND_NONCURRENT_DAYS = 7
CLAIM_KEEP_DAYS = 30
REDRIVE_MARK_DAYS = 2  # a re-drive marker matters for one REDRIVE_AFTER window (at most a day)
# An anomaly map helps the reviewer, who decides within days, and the auditor who looks back at a
# decision; after that the decision and its image are the record.
HEATMAP_KEEP_DAYS = 90
DATA = ("training", "inbound", "prediction")  # what holds the plant's photos and decisions


class Buckets(pulumi.ComponentResource):
    def __init__(self, name: str, settings: Settings, apis, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:storage:Buckets", name, None, opts)
        self.settings = settings
        self._after = [apis.service("storage")]
        self.training = self._bucket("training", "training data and model import files")
        # Versioning keeps every uploaded generation readable until it is routed: a camera that
        # uploads snapshot.jpg twice in a row must not lose the first photo. Routing deletes each
        # generation it moved; what is left noncurrent (never routed) goes after a week.
        self.inbound = self._bucket(
            "inbound",
            "where cameras upload photos",
            versioning={"enabled": True},
            lifecycle_rules=[_noncurrent_expiry(INBOUND_NONCURRENT_DAYS)],
        )
        # Versioning keeps an overwritten or deleted decision recoverable for retentionDays.
        self.prediction = self._bucket(
            "prediction",
            "routed images and human decisions",
            versioning={"enabled": True},
            lifecycle_rules=[
                _noncurrent_expiry(settings.retention_days),
                # A move's claim matters while its messages can still arrive (Pub/Sub keeps them at
                # most 7 days, Eventarc retries for 24 hours); after that it is history.
                {
                    "action": {"type": "Delete"},
                    "condition": {"age": CLAIM_KEEP_DAYS, "matches_prefixes": [f"{layout.CLAIMS}/"]},
                },
                {
                    "action": {"type": "Delete"},
                    "condition": {"age": REDRIVE_MARK_DAYS, "matches_prefixes": [f"{layout.REDRIVE}/"]},
                },
                {
                    "action": {"type": "Delete"},
                    "condition": {"age": HEATMAP_KEEP_DAYS, "matches_prefixes": [f"{layout.HEATMAPS}/"]},
                },
            ],
        )
        # No age rule: App Engine re-posts a version's zip on every update, so the live zip must stay
        # (docs/gcp-rules.md, "App Engine"); Pulumi deletes a zip itself once nothing uses it. The
        # zips are rebuilt from the repository, so destroy may delete them with the bucket.
        self.sources = self._bucket(
            "sources", "zipped deployables, named by content hash", force_destroy=True
        )
        self.by_name = {
            f"{settings.prefix}-{role}": bucket
            for role, bucket in (
                ("training", self.training),
                ("inbound", self.inbound),
                ("prediction", self.prediction),
                ("sources", self.sources),
            )
        }
        self.register_outputs(
            {
                "training": self.training.name,
                "inbound": self.inbound.name,
                "prediction": self.prediction.name,
                "sources": self.sources.name,
            }
        )

    def _bucket(self, role: str, purpose: str, **extra) -> gcp.storage.Bucket:
        s = self.settings
        opts = pulumi.ResourceOptions(parent=self, depends_on=self._after)
        if role in DATA:
            # Photos, decisions and training data are never deleted by a tool: destroy leaves the
            # bucket in the project, and the next `up` adopts it (infra/kept.py).
            opts = pulumi.ResourceOptions.merge(opts, kept(s, s.placed(role)["name"]))
        return gcp.storage.Bucket(
            f"bucket-{role}",
            **s.placed(role),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            labels={**s.labels, "purpose": role},
            opts=opts,
            **{"force_destroy": False, **extra},
        )


def _noncurrent_expiry(days: int) -> dict:
    """A lifecycle rule that deletes noncurrent versions `days` after they stopped being current."""
    return {
        "action": {"type": "Delete"},
        "condition": {"days_since_noncurrent_time": days, "with_state": "ARCHIVED"},
    }
