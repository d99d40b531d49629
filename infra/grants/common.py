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
    """Access to exactly the configured models (a classifier's, and an anomaly model beside it) and the
    input guard, only
    when configured; the backend says which kind (inspection/backends.py). A model in one of our
    buckets makes the grant wait for it."""
    s, roles = ctx.settings, ctx.roles
    folders = set()
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
            folders.add(location.rpartition("/")[0])
            _read_folder(
                iam,
                ctx,
                member,
                name,
                location,
                f"{key} downloads the {'model' if index == 0 else 'anomaly model beside it'} once per "
                "instance, from the folder models live in",
            )
    guard = s.input_guard
    if guard and guard != backends.NO_GUARD and guard.rpartition("/")[0] not in folders:
        # beside a model file, the model's grant reads it; an endpoint's guard lives elsewhere
        _read_folder(
            iam,
            ctx,
            member,
            f"iam-{key}-guard",
            guard,
            f"{key} downloads the model's input guard once per instance",
        )


def _read_folder(iam: Grants, ctx: Context, member, name: str, location: str, reason: str) -> None:
    """Object reads in the folder of one gs:// file, in its bucket."""
    roles, buckets = ctx.roles, ctx.buckets
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
        reason,
        condition=bucket_condition(f"only {folder}", bucket_name, folder) if folder else None,
        untraced=""
        if ours is not None
        else "the model's bucket is not this stack's and may be another project's, where this "
        "project's custom roles cannot be granted; the reader role also lists the folder",
    )
