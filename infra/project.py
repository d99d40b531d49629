"""The project's one App Engine application, and what every App Engine build needs from the project.

A project has exactly one App Engine application, and it can never be deleted. One stack of the
project creates it (`appEngine: create`) with its IAP OAuth client, its `default` service (which
serves nothing: App Engine wants it before any other) and the `gae-standard` image repository
App Engine builds push to; all three outlive that stack on `destroy`. Every other stack, and the
same stack after a `destroy`, says `appEngine: existing` and reads the application. Each stack
then deploys its own services (infra/review.py). README "One project, several stacks".

The build identity (docs/gcp-rules.md, "App Engine"): Google's App Engine page says the deploying
account is "either the App Engine default service account or your custom service account"
(https://cloud.google.com/appengine/migration-center/migrate-to-artifact-registry), and the
provider's own tests saw the default account fail on the staging bucket
(https://github.com/GoogleCloudPlatform/magic-modules/pull/11326,
https://github.com/GoogleCloudPlatform/magic-modules/pull/13815). Which one the Admin API uses
when a version names its own account is not settled, so both get exactly what a build needs:
the version's account, and the application's default account (looked up, not guessed; or
`appEngineBuildAccount`). Neither is the Compute Engine default account, which exists only once
the Compute API is on, and which this stack never enables.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pulumi
import pulumi_gcp as gcp

from infra import packaging
from infra.appengine import AppService
from infra.foundation import Foundation
from infra.iam import Grant, Grants, bucket_condition, sa
from infra.waits import propagation_wait

REPOSITORY = "gae-standard"  # where App Engine's builds push images, in the application's region
ZIP_PREFIX = "appengine-"  # every App Engine zip's name starts so; the build accounts read only those
DEFAULT_SERVICE_FILES = Path(__file__).parent / "appengine_default"


def staging_bucket(project: str) -> str:
    return f"staging.{project}.appspot.com"


class AppEngine(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Foundation, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:project:AppEngine", name, None, opts)
        s, apis = ctx.settings, ctx.apis
        after = [apis.service("appengine"), apis.service("iap")]
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        if s.app_engine == "create":
            # One per project, and App Engine cannot delete it: it stays when this stack goes.
            self.application = gcp.appengine.Application(
                "appengine-application",
                project=s.project,
                location_id=s.app_engine_location,
                iap={
                    "enabled": True,
                    "oauth2_client_id": s.iap_client_id,
                    "oauth2_client_secret": s.iap_client_secret,
                },
                opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=after)),
            )
            self.repository = gcp.artifactregistry.Repository(
                "repository-gae-standard",
                project=s.project,
                location=s.app_engine_region,
                repository_id=REPOSITORY,
                format="DOCKER",
                description="App Engine's build images, for every stack of this project",
                opts=pulumi.ResourceOptions.merge(
                    kept, pulumi.ResourceOptions(depends_on=[apis.service("artifactregistry")])
                ),
            )
        else:
            self.application = gcp.appengine.Application.get(
                "appengine-application", s.project, opts=pulumi.ResourceOptions(parent=self, depends_on=after)
            )
            self.repository = SimpleNamespace(
                project=s.project, location=s.app_engine_region, repository_id=REPOSITORY
            )
        self.app_id = self.application.app_id
        self.default_hostname = self.application.default_hostname
        default_account = gcp.appengine.get_default_service_account_output(
            project=s.project, opts=pulumi.InvokeOutputOptions(depends_on=[self.application])
        ).email
        self.build_account = (
            pulumi.Output.from_input(s.app_engine_build_account)
            if s.app_engine_build_account
            else default_account
        )
        self.iap_audience = pulumi.Output.concat("/projects/", ctx.agents.project_number, "/apps/", s.project)
        self.ctx = ctx
        # Every stack grants the application's default account once, for all of its App Engine zips.
        self.grants = self.build_grants(self, "appengine", sa(self.build_account), ours=False)
        self.default_service = self._default_service() if s.app_engine == "create" else None
        self.register_outputs({"app_id": self.app_id})

    def build_grants(self, parent: pulumi.Resource, key: str, member, ours: bool) -> list[Grant]:
        """What an App Engine build needs, for one account that may run it: read the app's zip, write
        the build's logs, push to gae-standard, and use App Engine's staging bucket. For an account
        this stack does not own, the project-level bindings outlive this stack: another stack's
        builds rely on the very same bindings."""
        s, apis, buckets, roles = self.ctx.settings, self.ctx.apis, self.ctx.buckets, self.ctx.roles
        after = [
            apis.service("iam"),
            apis.service("storage"),
            apis.service("cloudresourcemanager"),
            self.application,
        ]
        build = "App Engine's build"
        own = Grants(parent, after, used_by=build)
        shared = Grants(parent, [*after, apis.service("artifactregistry")], retain=not ours, used_by=build)
        own.bucket(
            f"iam-{key}-build-source",
            buckets.sources,
            member,
            "roles/storage.objectViewer",
            "App Engine's build fetches this stack's App Engine zips, and nothing else of the bucket",
            condition=bucket_condition(f"only {ZIP_PREFIX}*", buckets.sources.name, name_prefix=ZIP_PREFIX),
        )
        own.project(
            f"iam-{key}-build-staging",
            s.project,
            member,
            roles.name("appEngineStaging"),
            "App Engine's build keeps its inputs in App Engine's staging bucket; that bucket is Google's, "
            "so the grant is on the project, limited by a condition to that bucket",
            condition=bucket_condition("only App Engine's staging bucket", staging_bucket(s.project)),
        )
        shared.project(
            f"iam-{key}-build-logs",
            s.project,
            member,
            "roles/logging.logWriter",
            "App Engine's build writes its logs; log writing is granted on the project only",
        )
        shared.repository(
            f"iam-{key}-build-images",
            self.repository,
            member,
            "roles/artifactregistry.writer",
            "App Engine's build pushes the app's image to gae-standard, and nowhere else",
        )
        return own.grants + shared.grants

    def _default_service(self) -> AppService:
        """The `default` service: a page that says nothing is here. It holds the place App Engine
        wants filled before any other service, and stays when this stack goes."""
        s, accounts, buckets, apis = self.ctx.settings, self.ctx.accounts, self.ctx.buckets, self.ctx.apis
        files = [(path, path.name) for path in sorted(DEFAULT_SERVICE_FILES.iterdir()) if path.is_file()]
        source = packaging.source_object(f"{ZIP_PREFIX}default", files, buckets.sources, self)
        self.grants += self.build_grants(self, "gae-default", sa(accounts.gae_default.email), ours=True)
        wait = propagation_wait("wait-iam-appengine-default", s, self, self.grants)
        return AppService(
            "appengine-default",
            self,
            project=s.project,
            service="default",
            source=source,
            sources_bucket=buckets.sources,
            account_email=accounts.gae_default.email,
            env={},
            after=[wait, self.application, apis.service("appengine")],
            max_instances=1,
            entrypoint="gunicorn -b :$PORT --workers 1 --threads 2 main:app",
            outlives_stack=True,
        )
