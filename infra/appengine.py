"""App Engine services as this program deploys them: one content-named zip, one version under a
fixed id holding all traffic, who may pass IAP to it, and the whole service gone on `destroy`.

Facts this relies on (docs/gcp-rules.md, "App Engine"):
- the provider updates a version by posting it again under the same id (`update_verb: POST` to
  the service's versions), and only a changed id replaces it (`version_id` is immutable)
  (https://github.com/GoogleCloudPlatform/magic-modules/blob/main/mmv1/products/appengine/StandardAppVersion.yaml):
  so a new zip is an update in place of the one version, never a second version;
- with `delete_service_on_destroy`, deleting the version deletes its whole service
  (https://github.com/GoogleCloudPlatform/magic-modules/blob/main/mmv1/templates/terraform/custom_delete/appversion_delete.go.tmpl).
  A version holding all traffic cannot be deleted on its own, so that is how `destroy` gets past
  it. Because the version is never replaced, this happens on `destroy` only. A stack deployed by an
  earlier release (content-named ids, the flag off in its state) is replaced once: the new version
  takes the traffic, then the old one is deleted alone, as its state says;
- a new version gets no traffic unless it is its service's first, and the provider does not move
  it (https://github.com/pulumi/pulumi-gcp/issues/718): `EngineSplitTraffic` names the version,
  which matters for that one replacement;
- the `default` service cannot be deleted and must exist before any other
  (https://cloud.google.com/appengine/docs/standard/reference/app-yaml#service).

No dynamic provider: Pulumi starts a Python dynamic provider in its own process, from the `main`
folder, where this package cannot be imported (https://github.com/pulumi/pulumi/issues/7453), so
every `preview` failed.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.iam import Grant, Grants, member_key

RUNTIME = "python313"
# One version per service, updated in place. Reserved ids are "default", "latest" and "ah-…".
VERSION_ID = "live"


def service_url(service: pulumi.Input[str], default_hostname: pulumi.Input[str]) -> pulumi.Output[str]:
    """A service's own address: https://<service>-dot-<the application's hostname>."""
    return pulumi.Output.concat("https://", service, "-dot-", default_hostname)


class AppService:
    """One App Engine standard service under `parent`, deployed from the zip `source`."""

    def __init__(
        self,
        key: str,
        parent: pulumi.Resource,
        *,
        project: str,
        service: str,
        source: gcp.storage.BucketObject,
        sources_bucket,
        account_email: pulumi.Input[str],
        env: dict,
        after: Sequence[pulumi.Resource],
        instance_class: str = "F1",
        max_instances: int = 5,
        entrypoint: str = "gunicorn -b :$PORT --workers 1 --threads 8 --timeout 60 main:app",
        outlives_stack: bool = False,
    ):
        self.service, self.source = service, source
        kept = pulumi.ResourceOptions(retain_on_delete=True) if outlives_stack else pulumi.ResourceOptions()
        self.version = gcp.appengine.StandardAppVersion(
            f"{key}-version",
            project=project,
            service=service,
            version_id=VERSION_ID,
            runtime=RUNTIME,
            entrypoint={"shell": entrypoint},
            deployment={
                "zip": {
                    "source_url": pulumi.Output.concat(
                        "https://storage.googleapis.com/", sources_bucket.name, "/", self.source.name
                    )
                }
            },
            env_variables=env,
            service_account=account_email,
            instance_class=instance_class,  # F1: 384 MB, one worker process, concurrency from threads
            automatic_scaling={
                "max_concurrent_requests": 50,
                "standard_scheduler_settings": {"max_instances": max_instances},
            },
            # destroy deletes the service with its version; `default` cannot be deleted, and outlives us
            delete_service_on_destroy=not outlives_stack,
            noop_on_destroy=False,
            opts=pulumi.ResourceOptions.merge(
                kept, pulumi.ResourceOptions(parent=parent, depends_on=list(after))
            ),
        )
        self.traffic = gcp.appengine.EngineSplitTraffic(
            f"{key}-traffic",
            project=project,
            service=self.version.service,
            migrate_traffic=False,
            split={"shard_by": "IP", "allocations": self.version.version_id.apply(lambda v: {v: "1"})},
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[self.version]),
        )

    def admit(
        self, iam: Grants, key: str, project: str, app_id, members: Sequence[str], who: str
    ) -> list[Grant]:
        """IAP access to this service, and only this service, for each member."""
        found = []
        for member in members:
            found.append(
                iam.app_engine_service(
                    member_key(f"iam-{key}", member, members),
                    project,
                    app_id,
                    self.version.service,
                    member,
                    "roles/iap.httpsResourceAccessor",
                    f"a configured {who} may pass IAP to this stack's {who} service, and to no other",
                )
            )
        return found
