"""IAM as data: a Grant is one member, one role, one resource, and the reason for it.

Each component declares the grants its own work needs (as cloud-foundation-fabric modules do) and
keeps them in `self.grants`; the program collects them, and docs/iam.md is generated from them.
Every grant is additive. Where a predefined role allows more than the work, a custom role from
`CustomRoles` names exactly the permissions used (docs/gcp-rules.md, "Least privilege").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.kept import kept


@dataclass(frozen=True)
class Grant:
    principal: pulumi.Input[str]
    role: pulumi.Input[str]
    target: pulumi.Input[str]  # what the grant is on, for people
    why: str
    resource: pulumi.Resource
    condition: str = ""  # an IAM condition's title, when the grant has one
    kept: bool = False  # retained on destroy: the same binding may be another stack's
    # Who uses it: "" is the principal's own code (the permission trace checks it against the calls
    # that code makes: scripts/iam_trace.py); otherwise the platform acting as the principal.
    used_by: str = ""
    untraced: str = ""  # why a permission the grant gives is in no traced call, if one is not


def sa(email: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("serviceAccount:", email)


@dataclass(frozen=True)
class MemberKey:
    """The resource name of a grant to one configured member, and the name an earlier release gave it."""

    name: str
    former: tuple[str, ...] = field(default=())

    def suffixed(self, suffix: str) -> MemberKey:
        """The key of another grant to the same member."""
        return MemberKey(self.name + suffix, tuple(f + suffix for f in self.former))


def member_key(stem: str, member: str, members: Sequence[str]) -> MemberKey:
    """A resource name for `stem`'s grant to `member` that no other member's can take.

    Members that differ only by punctuation (`user:jo.smith@…`, `user:jo-smith@…`) read the same
    once made a name, and the engine refuses a second resource with the same URN. So the name ends
    in a digest of the member itself (lower-cased: IAM emails are case-insensitive, and config
    refuses two spellings of one member). Earlier releases named it without the digest; where that
    name was unique it is an alias, so an upgrade renames the grant in place instead of replacing
    it, which would delete the binding it had just re-added."""
    readable = _readable(member)
    digest = hashlib.sha256(member.lower().encode()).hexdigest()[:8]
    former = f"{stem}-{readable}"
    shared = sum(1 for m in members if _readable(m) == readable)
    return MemberKey(f"{former}-{digest}", (former,) if shared == 1 else ())


def _readable(member: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in member).strip("-").lower()


def _opts(
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
    retain: bool = False,
    former: Sequence[str] = (),
) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=list(after),
        retain_on_delete=retain or None,
        aliases=[pulumi.Alias(name=name) for name in former] or None,
    )


class Grants:
    """Helpers that create one grant each and keep it; `after` is what every grant waits for
    (the APIs: a component's depends_on does not reach its children).

    `retain`: the grants outlive this stack on `destroy`. Only the owner of the project's shared
    pieces uses it, for bindings every stack of the project relies on (docs/deploy.md, "One project, several
    stacks"): deleting an additive member removes the binding for everyone who declared it
    (https://github.com/hashicorp/terraform-provider-google/issues/13648)."""

    def __init__(
        self,
        parent: pulumi.Resource,
        after: Sequence[pulumi.Resource] = (),
        retain: bool = False,
        used_by: str = "",
    ):
        self.parent, self.after, self.retain, self.used_by = parent, list(after), retain, used_by
        self.grants: list[Grant] = []

    def _member(
        self,
        kind,
        key: str | MemberKey,
        target,
        member,
        role,
        why: str,
        condition=None,
        untraced: str = "",
        **where,
    ) -> Grant:
        """One additive member of `kind` (an IAM member resource type) where `where` says."""
        extra = {"condition": condition} if condition else {}
        key = key if isinstance(key, MemberKey) else MemberKey(key)
        opts = _opts(self.parent, self.after, self.retain, key.former)
        resource = kind(key.name, member=member, role=role, opts=opts, **where, **extra)
        grant = Grant(
            member, role, target, why, resource, _title(condition), self.retain, self.used_by, untraced
        )
        self.grants.append(grant)
        return grant

    def bucket(
        self, key: str, bucket, member, role, why: str, *, condition: dict | None = None, untraced: str = ""
    ) -> Grant:
        name = bucket.name if hasattr(bucket, "name") else bucket
        target = pulumi.Output.concat("bucket ", name)
        return self._member(
            gcp.storage.BucketIAMMember, key, target, member, role, why, condition, untraced, bucket=name
        )

    def topic(self, key: str, topic, member, role, why: str) -> Grant:
        target = pulumi.Output.concat("topic ", topic.name)
        where = {"project": topic.project, "topic": topic.name}
        return self._member(gcp.pubsub.TopicIAMMember, key, target, member, role, why, **where)

    def subscription(self, key: str, subscription, member, role, why: str) -> Grant:
        target = pulumi.Output.concat("subscription ", subscription.name)
        where = {"project": subscription.project, "subscription": subscription.name}
        return self._member(gcp.pubsub.SubscriptionIAMMember, key, target, member, role, why, **where)

    def project(
        self,
        key: str | MemberKey,
        project: str,
        member,
        role,
        why: str,
        *,
        condition: dict | None = None,
        untraced: str = "",
    ) -> Grant:
        target = f"project {project}"
        return self._member(
            gcp.projects.IAMMember, key, target, member, role, why, condition, untraced, project=project
        )

    def service_account(self, key: str, account, member, role, why: str) -> Grant:
        target = pulumi.Output.concat("service account ", account.email)
        kind = gcp.serviceaccount.IAMMember
        return self._member(kind, key, target, member, role, why, service_account_id=account.name)

    def run_service(self, key: str, project: str, location: str, service, member, role, why: str) -> Grant:
        target = pulumi.Output.concat("Cloud Run service ", service)
        where = {"project": project, "location": location, "name": service}
        return self._member(gcp.cloudrunv2.ServiceIamMember, key, target, member, role, why, **where)

    def invoker(self, key: str, function, member, why: str) -> Grant:
        """run.invoker on the Cloud Run service behind a gen2 function."""
        service = function.service_config.apply(lambda c: c.service)
        return self.run_service(
            key, function.project, function.location, service, member, "roles/run.invoker", why
        )

    def repository(self, key: str, repository, member, role, why: str) -> Grant:
        target = pulumi.Output.concat("Artifact Registry repository ", repository.repository_id)
        where = {
            "project": repository.project,
            "location": repository.location,
            "repository": repository.repository_id,
        }
        return self._member(gcp.artifactregistry.RepositoryIamMember, key, target, member, role, why, **where)

    def endpoint(
        self, key: str, project: str, location: str, endpoint_id: str, member, role, why: str
    ) -> Grant:
        target = f"Vertex AI endpoint {endpoint_id}"
        where = {"project": project, "location": location, "endpoint": endpoint_id}
        return self._member(gcp.vertex.AiEndpointIamMember, key, target, member, role, why, **where)

    def app_engine_service(
        self, key: str | MemberKey, project: str, app_id, service, member: str, role: str, why: str
    ) -> Grant:
        """IAP access to one App Engine service only, not to the whole application."""
        where = {"project": project, "app_id": app_id, "service": service}
        target = pulumi.Output.concat("App Engine service ", service, " (IAP)")
        return self._member(gcp.iap.AppEngineServiceIamMember, key, target, member, role, why, **where)

    def dataset(self, key: str | MemberKey, dataset, member, role, why: str, *, untraced: str = "") -> Grant:
        target = pulumi.Output.concat("BigQuery dataset ", dataset.dataset_id)
        where = {"project": dataset.project, "dataset_id": dataset.dataset_id}
        return self._member(
            gcp.bigquery.DatasetIamMember, key, target, member, role, why, untraced=untraced, **where
        )


def _title(condition: dict | None) -> str:
    return condition["title"] if condition else ""


def bucket_condition(title: str, bucket: pulumi.Input[str], folder: str = "", name_prefix: str = "") -> dict:
    """An IAM condition that limits a storage role to one bucket (the bucket itself, for listing,
    and its objects), to the objects in one folder of it, or to the objects whose names start with
    `name_prefix`. Storage resource names: https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name"""
    base = pulumi.Output.concat("projects/_/buckets/", bucket)
    if folder or name_prefix:
        start = f"{folder}/" if folder else name_prefix
        expression = pulumi.Output.concat('resource.name.startsWith("', base, "/objects/", start, '")')
    else:
        expression = pulumi.Output.concat(
            'resource.name == "', base, '" || resource.name.startsWith("', base, '/")'
        )
    return {"title": title, "expression": expression}


# The permissions each kind of work needs, and no more (docs/gcp-rules.md, "Least privilege").
CUSTOM_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "objectTake": (
        "read an object generation and delete exactly it after copying (the source side of a move)",
        ("storage.objects.get", "storage.objects.delete"),
    ),
    "objectPlace": (
        "create objects that may not overwrite, and read them back (the destination side of a move)",
        ("storage.objects.get", "storage.objects.create"),
    ),
    "objectRedrive": (
        "list a bucket, read objects and delete exactly one generation (the re-drive sweep's source side)",
        ("storage.objects.list", "storage.objects.get", "storage.objects.delete"),
    ),
    "objectQueue": (
        "create objects that may not overwrite, read them, and list a folder to measure it (the sweep)",
        ("storage.objects.list", "storage.objects.get", "storage.objects.create"),
    ),
    "claimAdvance": (
        "replace a move's claim with its next state (GCS asks for delete to overwrite an object); "
        "granted with a condition that admits claims/ only",
        ("storage.objects.delete",),
    ),
    "objectReview": (
        "list, read, create and delete objects (leases, decisions, undo and the audit trail)",
        ("storage.objects.list", "storage.objects.get", "storage.objects.create", "storage.objects.delete"),
    ),
    "objectRead": (
        "read objects, and nothing else (a model's files, granted with a condition on their folder)",
        ("storage.objects.get",),
    ),
    "messagesConsume": (
        "pull and acknowledge a subscription's messages, without attaching topics or seeking snapshots",
        ("pubsub.subscriptions.consume",),
    ),
    "queryJobs": (
        "run BigQuery query jobs in the project; what they may read is granted on the dataset",
        ("bigquery.jobs.create",),
    ),
    "predictOnly": (
        "online prediction on one Vertex AI endpoint, without changing, undeploying or deleting it",
        ("aiplatform.endpoints.predict",),
    ),
    "appEngineStaging": (
        "read and write App Engine's staging bucket, where its builds keep their inputs; granted with "
        "a condition that admits that bucket only",
        (
            "storage.buckets.get",
            "storage.objects.list",
            "storage.objects.get",
            "storage.objects.create",
            "storage.objects.delete",
        ),
    ),
    "signBlobOnly": (
        "sign bytes as a service account (V4 signed URLs) without minting access or ID tokens",
        ("iam.serviceAccounts.signBlob",),
    ),
}


class CustomRoles(pulumi.ComponentResource):
    """Project custom roles named `<prefix>_<role>`; `self.name(role)` is what grants use.

    They outlive the stack (infra/kept.py): a deleted role's id stays taken until day 37, so
    deleting them on `destroy` blocked the next `up` under the same prefix for a month.
    """

    def __init__(self, name: str, settings, after: Sequence[pulumi.Resource], opts=None):
        super().__init__("quality-inspection:iam:CustomRoles", name, None, opts)
        prefix = settings.prefix.replace("-", "_")
        self.roles = {
            key: gcp.projects.IAMCustomRole(
                f"role-{key}",
                project=settings.project,
                role_id=f"{prefix}_{key}",
                title=f"quality-inspection {key}",
                description=purpose,
                permissions=list(permissions),
                stage="GA",
                opts=pulumi.ResourceOptions.merge(
                    _opts(self, after), kept(settings, f"projects/{settings.project}/roles/{prefix}_{key}")
                ),
            )
            for key, (purpose, permissions) in CUSTOM_ROLES.items()
        }
        self.register_outputs({})

    def name(self, key: str) -> pulumi.Output[str]:
        return self.roles[key].name
