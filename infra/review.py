"""The review app: this stack's two App Engine services behind IAP, one per role.

- `<prefix>-review` (ROLE=review), where reviewers decide the unclear images, runs as the review
  account, which may list, lease and move images in the prediction bucket;
- `<prefix>-audit` (ROLE=audit), where auditors read who decided what, runs as the audit account,
  which may read this stack's records in BigQuery, and the decided photos (human_decided/) and
  their anomaly maps (heatmaps/) it shows beside them, by URLs it signs as itself.

Each service admits through IAP only its own members (service-level bindings, so a member in both
lists holds two bindings that are removed independently), and the app checks the verified email
against the same list where the list names people (user:, domain:); a group is IAP's to check.
Both deploy from the same zip.
"""

from __future__ import annotations

import pulumi

from infra import packaging
from infra.appengine import AppService, service_url
from infra.context import Context
from infra.grants import review_app as review_grants
from infra.iam import Grants
from infra.project import ZIP_PREFIX
from infra.waits import propagation_wait
from inspection.settings import EVERYONE_IAP_ADMITS, ReviewSettings


def allow_list(members: tuple[str, ...]) -> str:
    """ALLOWED_REVIEWERS / ALLOWED_AUDITORS from the stack's members: emails and @domains. `*` (IAP
    alone decides) when a member is a group or a service account, which the app cannot see into;
    "," (no one) when there are no members at all, as an unset list is."""
    if not members:
        return ","
    if any(not m.startswith(("user:", "domain:")) for m in members):
        return EVERYONE_IAP_ADMITS
    return ",".join(
        m.split(":", 1)[1] if m.startswith("user:") else "@" + m.split(":", 1)[1] for m in members
    )


class ReviewApp(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:review:ReviewApp", name, None, opts)
        s, apis, buckets, accounts, app_engine, records = (
            ctx.settings,
            ctx.apis,
            ctx.buckets,
            ctx.accounts,
            ctx.app_engine,
            ctx.records,
        )
        self.grants = review_grants.grants(ctx, self)
        wait = propagation_wait(
            "wait-iam-review-app", s, self, [*self.grants, *app_engine.grants, *records.grants]
        )
        self.source = packaging.source_object(
            f"{ZIP_PREFIX}review-app", packaging.review_app_files(), buckets.sources, self
        )
        after = [wait, app_engine.application, apis.service("appengine")]
        if app_engine.default_service is not None:  # App Engine wants `default` before any other
            after += [app_engine.default_service.traffic]
        common = {
            "project": s.project,
            "source": self.source,
            "sources_bucket": buckets.sources,
            "after": after,
        }
        shared_env = {
            "prediction_bucket": buckets.prediction.name,
            "auth_mode": "iap",
            "line_segment": s.line_segment,
            "iap_audience": app_engine.iap_audience,
        }
        self.review = AppService(
            "review",
            self,
            service=f"{s.prefix}-review",
            account_email=accounts.review.email,
            env=ReviewSettings.environment(
                **shared_env, role="review", allowed_reviewers=allow_list(s.reviewers)
            ),
            **common,
        )
        self.audit = AppService(
            "audit",
            self,
            service=f"{s.prefix}-audit",
            account_email=accounts.audit.email,
            env=ReviewSettings.environment(
                **shared_env, role="audit", allowed_auditors=allow_list(s.auditors), records=records.location
            ),
            max_instances=2,
            **common,
        )
        access = Grants(self, [apis.service("iap"), app_engine.application])
        self.review.admit(access, "reviewer", s.project, app_engine.app_id, s.reviewers, "reviewer")
        self.audit.admit(access, "auditor", s.project, app_engine.app_id, s.auditors, "auditor")
        self.grants += access.grants
        self.url = service_url(self.review.version.service, app_engine.default_hostname)
        self.audit_url = service_url(self.audit.version.service, app_engine.default_hostname)
        self.register_outputs({"url": self.url, "audit_url": self.audit_url})
