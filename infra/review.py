"""The review app: App Engine standard behind IAP, deployed from a content-named zip, and the
grants the app, its build and its reviewers need.

- `gcp.iap.Brand` and `gcp.iap.Client` no longer exist (the IAP OAuth Admin API shut down); the
  OAuth client is created once in the console and passed in as config (README: the manual step).
- A new App Engine version gets no traffic, except a service's first version, and the provider
  does not move it (https://github.com/pulumi/pulumi-gcp/issues/718): `EngineSplitTraffic` sends
  all of it to the version this program just deployed, and the replaced version is deleted.
- App Engine builds the app with the project's default Cloud Build account, which neither the
  Admin API's version resource nor the provider lets a program choose. In projects created since
  May 2024 that is the Compute Engine default account
  (https://cloud.google.com/build/docs/cloud-build-service-account-updates); with
  `iam.automaticIamGrantsForDefaultServiceAccounts` enforced it has no roles, so the stack grants
  it exactly what the build needs (config `appEngineBuildAccount` names another account).
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra import packaging
from infra.context import Context
from infra.iam import Grants, sa
from review_app.settings import ReviewSettings

RUNTIME = "python313"
SERVICE = "default"


class ReviewApp(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:review:ReviewApp", name, None, opts)
        settings, apis, buckets, accounts, roles = (
            ctx.settings,
            ctx.apis,
            ctx.buckets,
            ctx.accounts,
            ctx.roles,
        )
        project_number = ctx.agents.project_number
        s = settings
        after = [apis.service("appengine"), apis.service("iap")]
        # One App Engine application per project, and it cannot be deleted: keep it on destroy.
        self.application = gcp.appengine.Application(
            "appengine-application",
            project=s.project,
            location_id=s.app_engine_location,
            iap={
                "enabled": True,
                "oauth2_client_id": s.iap_client_id,
                "oauth2_client_secret": s.iap_client_secret,
            },
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=after),
        )
        iam = Grants(
            self, [apis.service("iam"), apis.service("storage"), apis.service("cloudresourcemanager")]
        )
        member = sa(accounts.review.email)
        iam.bucket(
            "iam-review-prediction",
            buckets.prediction,
            member,
            roles.name("objectReview"),
            "the app lists the queue, leases, decides, undoes and reads the audit trail",
        )
        iam.service_account(
            "iam-review-sign-self",
            accounts.review,
            member,
            roles.name("signBlobOnly"),
            "the app signs image URLs as itself through IAM signBlob, with no key file",
        )
        builder = (
            pulumi.Output.from_input(s.app_engine_build_account)
            if s.app_engine_build_account
            else pulumi.Output.concat(project_number, "-compute@developer.gserviceaccount.com")
        )
        build = sa(builder)
        iam.bucket(
            "iam-appengine-build-sources",
            buckets.sources,
            build,
            "roles/storage.objectViewer",
            "App Engine's build (the project's default Cloud Build account) fetches the app's zip",
        )
        iam.project(
            "iam-appengine-build-logs",
            s.project,
            build,
            "roles/logging.logWriter",
            "App Engine's build writes its logs; log writing is granted on the project only",
        )
        iam.project(
            "iam-appengine-build-images",
            s.project,
            build,
            "roles/artifactregistry.createOnPushWriter",
            "App Engine's build creates and pushes to its own gae-standard repository, which does not exist "
            "before the first build, so no narrower resource can be named",
        )
        self.source = packaging.source_object(
            "review-app", packaging.review_app_files(), buckets.sources, self
        )
        self.version = gcp.appengine.StandardAppVersion(
            "review-app-version",
            project=s.project,
            service=SERVICE,
            version_id=self.source.name.apply(
                lambda n: n.removesuffix(".zip").replace("review-app-", "v-")[:30]
            ),
            runtime=RUNTIME,
            entrypoint={"shell": "gunicorn -b :$PORT --workers 1 --threads 8 --timeout 60 main:app"},
            deployment={
                "zip": {
                    "source_url": pulumi.Output.concat(
                        "https://storage.googleapis.com/", buckets.sources.name, "/", self.source.name
                    )
                }
            },
            env_variables=ReviewSettings.environment(
                prediction_bucket=buckets.prediction.name,
                auth_mode="iap",
                line_segment=s.line_segment,
                allowed_auditors=",".join(
                    m.split(":", 1)[1] if m.startswith("user:") else "@" + m.split(":", 1)[1]
                    for m in s.auditors
                )
                or None,
                iap_audience=pulumi.Output.concat("/projects/", project_number, "/apps/", s.project),
            ),
            service_account=accounts.review.email,
            instance_class="F1",  # 384 MB: one worker process, concurrency from threads
            automatic_scaling={
                "max_concurrent_requests": 50,
                "standard_scheduler_settings": {"max_instances": 5},
            },
            delete_service_on_destroy=False,  # the default service cannot be deleted
            # A replaced version is deleted once traffic has moved to its successor, so versions do
            # not pile up (App Engine caps them per app).
            noop_on_destroy=False,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.application, *(g.resource for g in iam.grants)]
            ),
        )
        self.traffic = gcp.appengine.EngineSplitTraffic(
            "review-app-traffic",
            project=s.project,
            service=self.version.service,
            migrate_traffic=False,
            split={"shard_by": "IP", "allocations": self.version.version_id.apply(lambda v: {v: "1"})},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.version]),
        )
        for who, members in (("reviewer", s.reviewers), ("auditor", s.auditors)):
            for member in members:
                key = f"iam-{who}-" + "".join(ch if ch.isalnum() else "-" for ch in member).strip("-").lower()
                iam.app_engine(
                    key,
                    s.project,
                    self.application.app_id,
                    member,
                    "roles/iap.httpsResourceAccessor",
                    f"a configured {who} may pass IAP to the review app",
                )
        self.grants = iam.grants
        self.url = self.application.default_hostname.apply(lambda host: f"https://{host}")
        self.register_outputs({"url": self.url})
