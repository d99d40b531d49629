"""How the functions are built: Cloud Build as our own `builder` account, pushing to a repository
this stack declares, reading the source Cloud Functions copies into its own bucket.

Facts this relies on (docs/gcp-rules.md, "Function builds"):
- gen2 builds read the uploaded source from the Google-managed bucket
  `gcf-v2-sources-<project number>-<region>`, not from the bucket we uploaded to
  (https://github.com/hashicorp/terraform-provider-google/issues/20571);
- a custom build account needs Logs Writer and Artifact Registry writer
  (https://cloud.google.com/functions/docs/securing/build-custom-sa).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.foundation import Foundation
from infra.iam import Grant, Grants, bucket_condition, sa


def gcf_sources_bucket(project_number: str, region: str) -> str:
    return f"gcf-v2-sources-{project_number}-{region}"


class FunctionBuild(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Foundation, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:build:FunctionBuild", name, None, opts)
        s, apis = ctx.settings, ctx.apis
        self.builder = ctx.accounts.builder
        after: Sequence[pulumi.Resource] = [apis.service("artifactregistry"), apis.service("iam")]
        self.repository = gcp.artifactregistry.Repository(
            "repository-functions",
            project=s.project,
            location=s.region,
            repository_id=f"{s.prefix}-functions",
            format="DOCKER",
            description="Images of the predict, move and sweep functions, built by Cloud Build",
            labels=s.labels,
            cleanup_policies=[
                {"id": "keep-recent", "action": "KEEP", "most_recent_versions": {"keep_count": 10}}
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
        self.grants = self._grants(ctx)
        self.register_outputs({"repository": self.repository.id})

    def _grants(self, ctx: Foundation) -> list[Grant]:
        """What Cloud Build needs to build the functions as the builder account."""
        s, apis = ctx.settings, ctx.apis
        member = sa(ctx.accounts.builder.email)
        iam = Grants(self, [apis.service("cloudresourcemanager"), apis.service("iam")])
        sources = pulumi.Output.from_input(ctx.agents.project_number).apply(
            lambda n: gcf_sources_bucket(n, s.region)
        )
        iam.project(
            "iam-builder-gcf-sources",
            s.project,
            member,
            "roles/storage.objectViewer",
            "Cloud Build fetches each function's source from the bucket Cloud Functions copies it to; that "
            "bucket is Google's, so the grant is on the project, limited by a condition to that bucket",
            condition=bucket_condition("only the gcf-v2-sources bucket", sources),
        )
        iam.project(
            "iam-builder-logs",
            s.project,
            member,
            "roles/logging.logWriter",
            "Cloud Build writes the functions' build logs; log writing is granted on the project only",
        )
        iam.repository(
            "iam-builder-repository",
            self.repository,
            member,
            "roles/artifactregistry.writer",
            "Cloud Build pushes the function images to this stack's own repository, and nowhere else",
        )
        return iam.grants
