"""Grants more than one deployable needs: advancing a move's claim, and reading the served models."""

from __future__ import annotations

from infra.context import Context
from infra.iam import Grants, bucket_condition
from inspection import backends, layout


def claim_advance(iam: Grants, roles, buckets, member, key: str) -> None:
    """Overwriting an object needs storage.objects.delete as well as create
    (https://cloud.google.com/storage/docs/access-control/iam-json); a move overwrites only its
    own claim, so the grant admits claims/ and nothing else."""
    iam.bucket(
        f"iam-{key}-claims",
        buckets.prediction,
        member,
        roles.name("claimAdvance"),
        f"{key} records each move's progress in its claim, which replaces the claim object",
        condition=bucket_condition("only claims/", buckets.prediction.name, layout.CLAIMS),
    )


def model_grant(iam: Grants, ctx: Context, member, key: str) -> None:
    """Access to exactly the configured models (a classifier's, and an anomaly model beside it), only
    when configured; the backend says which kind (inspection/backends.py). A model in one of our
    buckets makes the grant wait for it."""
    s, roles, buckets = ctx.settings, ctx.roles, ctx.buckets
    for index, (backend, location) in enumerate(s.served):
        name = f"iam-{key}-model" if index == 0 else f"iam-{key}-second-opinion"
        if backend.grant == backends.ENDPOINT_GRANT:
            endpoint = Grants(iam.parent, [*iam.after, ctx.apis.service("aiplatform")])
            _, _, _, region, _, endpoint_id = location.split("/")
            endpoint.endpoint(
                f"iam-{key}-vertex",
                s.project,
                region,
                endpoint_id,
                member,
                roles.name("predictOnly"),
                f"{key} asks the endpoint for online predictions, and nothing else",
            )
            iam.grants += endpoint.grants
        elif backend.grant == backends.FOLDER_GRANT:
            bucket_name, path = layout.split_gs_uri(location)
            folder = path.rpartition("/")[0]
            ours = buckets.by_name.get(bucket_name)
            # A project's custom role can be granted only inside that project
            # (https://cloud.google.com/iam/docs/understanding-custom-roles), and a bucket this stack
            # does not declare may be another project's: there the predefined reader role stands in.
            iam.bucket(
                name,
                ours if ours is not None else bucket_name,
                member,
                roles.name("objectRead") if ours is not None else "roles/storage.objectViewer",
                f"{key} downloads the {'model' if index == 0 else 'anomaly model beside it'} once per "
                "instance, from the folder models live in",
                condition=bucket_condition(f"only {folder}", bucket_name, folder) if folder else None,
                untraced=""
                if ours is not None
                else "the model's bucket is not this stack's and may be another project's, where this "
                "project's custom roles cannot be granted; the reader role also lists the folder",
            )
