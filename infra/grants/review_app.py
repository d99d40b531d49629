"""What the review app's two services may do: the review service works the queue and signs image
URLs as itself; the audit service reads the decided photos (and their maps) and signs as itself.
Each service's account also reads its own zip, for App Engine (infra/project.py)."""

from __future__ import annotations

from infra.context import Context
from infra.iam import Grant, Grants, bucket_condition, sa
from inspection import layout


def grants(ctx: Context, parent) -> list[Grant]:
    """The review service works the queue and signs image URLs as itself; the audit service reads
    the decided photos (and their maps, when an anomaly model keeps them) and signs as itself.
    Each service's own account reads its zip, and builds nothing (infra/project.py). Reading the
    records is the records' grant (infra/records.py)."""
    s, apis, buckets, accounts, roles = ctx.settings, ctx.apis, ctx.buckets, ctx.accounts, ctx.roles
    iam = Grants(parent, [apis.service("iam"), apis.service("storage"), apis.service("cloudresourcemanager")])
    review, audit = sa(accounts.review.email), sa(accounts.audit.email)
    iam.bucket(
        "iam-review-prediction",
        buckets.prediction,
        review,
        roles.name("objectReview"),
        "the review service lists the queue, leases, decides and undoes",
    )
    iam.service_account(
        "iam-review-sign-self",
        accounts.review,
        review,
        roles.name("signBlobOnly"),
        "the review service signs image URLs as itself through IAM signBlob, with no key file",
    )
    shown = [(layout.HUMAN_DECIDED, "the photo a reviewer decided")]
    if s.keeps_heatmaps:
        shown.append((layout.HEATMAPS, "the anomaly map the reviewer saw over it"))
    for folder, what in shown:
        iam.bucket(
            f"iam-audit-{folder.replace('_', '-')}",
            buckets.prediction,
            audit,
            roles.name("objectRead"),
            f"the audit view shows {what}, by a URL it signs",
            condition=bucket_condition(f"only {folder}/", buckets.prediction.name, folder),
        )
    iam.service_account(
        "iam-audit-sign-self",
        accounts.audit,
        audit,
        roles.name("signBlobOnly"),
        "the audit service signs the URLs of the photos and maps it shows as itself, with no key file",
    )
    grants = iam.grants
    for key, member in (("review", review), ("audit", audit)):
        grants += ctx.app_engine.zip_read(parent, key, member, f"App Engine, for the {key} service")
    return grants
