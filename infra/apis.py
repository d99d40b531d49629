"""The Google APIs the pipeline needs, enabled and left enabled on destroy (other things may use them)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings

APIS = (
    "storage",
    "pubsub",
    "run",
    "cloudfunctions",
    "cloudbuild",
    "artifactregistry",
    "eventarc",
    "appengine",
    "iap",
    "aiplatform",
    "iamcredentials",
    "iam",
    "cloudresourcemanager",
    "logging",
    "cloudscheduler",
    "monitoring",
    "bigquery",
)


class Apis(pulumi.ComponentResource):
    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:project:Apis", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.services = {
            api: gcp.projects.Service(
                f"api-{api}",
                project=settings.project,
                service=f"{api}.googleapis.com",
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child,
            )
            for api in APIS
        }
        self.register_outputs({})

    def all(self) -> list[pulumi.Resource]:
        return list(self.services.values())

    def service(self, api: str) -> pulumi.Resource:
        return self.services[api]
