"""The review app: App Engine standard behind IAP, deployed from a content-named zip.

`gcp.iap.Brand` and `gcp.iap.Client` no longer exist (the IAP OAuth Admin API shut down); the
OAuth client is created once in the console and passed in as config (README: the manual step).
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra import packaging
from infra.config import Settings
from infra.functions import source_object

RUNTIME = "python313"


class ReviewApp(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        buckets,
        accounts,
        project_number: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("quality-inspection:review:ReviewApp", name, None, opts)
        s = settings
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
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.source = source_object("review-app", packaging.review_app_files(), buckets.sources, self)
        self.version = gcp.appengine.StandardAppVersion(
            "review-app-version",
            project=s.project,
            service="default",
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
            env_variables={
                "PREDICTION_BUCKET": buckets.prediction.name,
                "REVIEW_AUTH": "iap",
                "IAP_AUDIENCE": pulumi.Output.concat("/projects/", project_number, "/apps/", s.project),
            },
            service_account=accounts.review.email,
            instance_class="F1",  # 384 MB: one worker process, concurrency from threads
            automatic_scaling={
                "max_concurrent_requests": 50,
                "standard_scheduler_settings": {"max_instances": 5},
            },
            delete_service_on_destroy=False,  # the default service cannot be deleted
            noop_on_destroy=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.application]),
        )
        self.url = self.application.default_hostname.apply(lambda host: f"https://{host}")
        self.register_outputs({"url": self.url})
