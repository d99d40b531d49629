"""The project's one App Engine application, and what every App Engine build needs from the project.

A project has exactly one App Engine application, and it can never be deleted. One stack of the
project creates it (`appEngine: create`) with its IAP OAuth client, its `default` service (which
serves nothing: App Engine wants it before any other) and the `gae-standard` image repository
App Engine builds push to; all three outlive that stack on `destroy`. Every other stack, and the
same stack after a `destroy`, says `appEngine: existing` and reads the application. Each stack
then deploys its own services (infra/review.py). docs/deploy.md, "One project, several stacks".

Who builds (docs/gcp-rules.md, "App Engine"). Google's page names the deploying account as "either
the App Engine default service account or your custom service account"
(https://cloud.google.com/appengine/migration-center/migrate-to-artifact-registry). The provider's
own example deploys versions that run as a custom account holding nothing but object read, so
that account does not build; it fetches the zip
(https://github.com/GoogleCloudPlatform/magic-modules/blob/main/mmv1/templates/terraform/samples/services/appengine/app_engine_standard_app_version.tf.tmpl),
and the build ran as the application's default account, which the provider's tests saw refused at
the staging bucket (https://github.com/GoogleCloudPlatform/magic-modules/pull/11326). So:
- a version's own (runtime) account may read this stack's App Engine zips, and nothing shared;
- the build account (the application's default account, looked up, or `appEngineBuildAccount`)
  may read them too, and has what a build needs on what every stack shares: App Engine's staging
  bucket, log writing, and `gae-standard`. Those three grants are declared once, by the stack that
  owns the application (`appEngine: create`), and outlive it, because every stack's builds rely on
  the same bindings. A stack that finds the application there declares none of them, and so never
  names `gae-standard`, which App Engine itself makes at the first deploy.
Neither is the Compute Engine default account, which exists only once the Compute API is on, and
which this stack never enables.
"""

from __future__ import annotations

from pathlib import Path

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
        self.grants = self.zip_read(self, "appengine", sa(self.build_account), "App Engine's build")
        if s.app_engine == "create":
            self.grants += self._shared_build_grants(sa(self.build_account))
        self.default_service = self._default_service() if s.app_engine == "create" else None
        self.register_outputs({"app_id": self.app_id})

    def zip_read(self, parent: pulumi.Resource, key: str, member, who: str) -> list[Grant]:
        """`member` may read this stack's App Engine zips, and nothing else of its sources bucket:
        the build fetches them, and so does a version's own account."""
        apis, buckets = self.ctx.apis, self.ctx.buckets
        own = Grants(parent, [apis.service("iam"), apis.service("storage"), self.application], used_by=who)
        own.bucket(
            f"iam-{key}-build-source",
            buckets.sources,
            member,
            "roles/storage.objectViewer",
            "App Engine fetches this stack's App Engine zips, and nothing else of the bucket",
            condition=bucket_condition(f"only {ZIP_PREFIX}*", buckets.sources.name, name_prefix=ZIP_PREFIX),
        )
        return own.grants

    def _shared_build_grants(self, member) -> list[Grant]:
        """What every App Engine build of the project needs on what the project's stacks share.
        Declared here only, by the stack that owns the application, and kept on destroy."""
        s, apis, roles = self.ctx.settings, self.ctx.apis, self.ctx.roles
        after = [
            apis.service("iam"),
            apis.service("storage"),
            apis.service("cloudresourcemanager"),
            apis.service("artifactregistry"),
            self.application,
        ]
        shared = Grants(self, after, retain=True, used_by="App Engine's build")
        shared.project(
            "iam-appengine-build-staging",
            s.project,
            member,
            roles.name("appEngineStaging"),
            "App Engine's build keeps its inputs in App Engine's staging bucket; that bucket is Google's, "
            "so the grant is on the project, limited by a condition to that bucket",
            condition=bucket_condition("only App Engine's staging bucket", staging_bucket(s.project)),
        )
        shared.project(
            "iam-appengine-build-logs",
            s.project,
            member,
            "roles/logging.logWriter",
            "App Engine's build writes its logs; log writing is granted on the project only",
        )
        shared.repository(
            "iam-appengine-build-images",
            self.repository,
            member,
            "roles/artifactregistry.writer",
            "App Engine's build pushes the app's image to gae-standard, and nowhere else",
        )
        return shared.grants

    def _default_service(self) -> AppService:
        """The `default` service: a page that says nothing is here. It holds the place App Engine
        wants filled before any other service, and stays when this stack goes."""
        s, accounts, buckets, apis = self.ctx.settings, self.ctx.accounts, self.ctx.buckets, self.ctx.apis
        files = [(path, path.name) for path in sorted(DEFAULT_SERVICE_FILES.iterdir()) if path.is_file()]
        source = packaging.source_object(f"{ZIP_PREFIX}default", files, buckets.sources, self)
        self.grants += self.zip_read(
            self, "gae-default", sa(accounts.gae_default.email), "App Engine, for the default service"
        )
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
