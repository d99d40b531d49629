"""IAM as data: a Grant is one member, one role, one resource, and the reason for it.

Each component declares the grants its own work needs (as cloud-foundation-fabric modules do) and
keeps them in `self.grants`; the program collects them, and docs/iam.md is generated from them.
Every grant is additive. Where a predefined role allows more than the work, a custom role from
`CustomRoles` names exactly the permissions used (docs/gcp-rules.md, "Least privilege").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp


@dataclass(frozen=True)
class Grant:
    principal: pulumi.Input[str]
    role: pulumi.Input[str]
    target: pulumi.Input[str]  # what the grant is on, for people
    why: str
    resource: pulumi.Resource
    condition: str = ""  # an IAM condition's title, when the grant has one


def sa(email: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("serviceAccount:", email)


def _opts(parent: pulumi.Resource, after: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, depends_on=list(after))


class Grants:
    """Helpers that create one grant each and keep it; `after` is what every grant waits for
    (the APIs: a component's depends_on does not reach its children)."""

    def __init__(self, parent: pulumi.Resource, after: Sequence[pulumi.Resource] = ()):
        self.parent, self.after = parent, list(after)
        self.grants: list[Grant] = []

    def _keep(self, resource, member, role, target, why: str, condition: str = "") -> Grant:
        grant = Grant(member, role, target, why, resource, condition)
        self.grants.append(grant)
        return grant

    def bucket(self, key: str, bucket, member, role, why: str, *, condition: dict | None = None) -> Grant:
        r = gcp.storage.BucketIAMMember(
            key,
            bucket=bucket.name if hasattr(bucket, "name") else bucket,
            member=member,
            role=role,
            condition=condition,
            opts=_opts(self.parent, self.after),
        )
        name = bucket.name if hasattr(bucket, "name") else bucket
        return self._keep(r, member, role, pulumi.Output.concat("bucket ", name), why, _title(condition))

    def topic(self, key: str, topic, member, role, why: str) -> Grant:
        r = gcp.pubsub.TopicIAMMember(
            key,
            project=topic.project,
            topic=topic.name,
            member=member,
            role=role,
            opts=_opts(self.parent, self.after),
        )
        return self._keep(r, member, role, pulumi.Output.concat("topic ", topic.name), why)

    def subscription(self, key: str, subscription, member, role, why: str) -> Grant:
        r = gcp.pubsub.SubscriptionIAMMember(
            key,
            project=subscription.project,
            subscription=subscription.name,
            member=member,
            role=role,
            opts=_opts(self.parent, self.after),
        )
        return self._keep(r, member, role, pulumi.Output.concat("subscription ", subscription.name), why)

    def project(
        self, key: str, project: str, member, role, why: str, *, condition: dict | None = None
    ) -> Grant:
        r = gcp.projects.IAMMember(
            key,
            project=project,
            member=member,
            role=role,
            condition=condition,
            opts=_opts(self.parent, self.after),
        )
        return self._keep(r, member, role, f"project {project}", why, _title(condition))

    def service_account(self, key: str, account, member, role, why: str) -> Grant:
        r = gcp.serviceaccount.IAMMember(
            key,
            service_account_id=account.name,
            member=member,
            role=role,
            opts=_opts(self.parent, self.after),
        )
        return self._keep(r, member, role, pulumi.Output.concat("service account ", account.email), why)

    def run_service(self, key: str, project: str, location: str, service, member, role, why: str) -> Grant:
        r = gcp.cloudrunv2.ServiceIamMember(
            key,
            project=project,
            location=location,
            name=service,
            member=member,
            role=role,
            opts=_opts(self.parent, self.after),
        )
        return self._keep(r, member, role, pulumi.Output.concat("Cloud Run service ", service), why)

    def repository(self, key: str, repository, member, role, why: str) -> Grant:
        r = gcp.artifactregistry.RepositoryIamMember(
            key,
            project=repository.project,
            location=repository.location,
            repository=repository.repository_id,
            member=member,
            role=role,
            opts=_opts(self.parent, self.after),
        )
        target = pulumi.Output.concat("Artifact Registry repository ", repository.repository_id)
        return self._keep(r, member, role, target, why)

    def endpoint(
        self, key: str, project: str, location: str, endpoint_id: str, member, role, why: str
    ) -> Grant:
        r = gcp.vertex.AiEndpointIamMember(
            key,
            project=project,
            location=location,
            endpoint=endpoint_id,
            member=member,
            role=role,
            opts=_opts(self.parent, self.after),
        )
        return self._keep(r, member, role, f"Vertex AI endpoint {endpoint_id}", why)

    def app_engine(self, key: str, project: str, app_id, member: str, role: str, why: str) -> Grant:
        r = gcp.iap.WebTypeAppEngingIamMember(
            key,
            project=project,
            app_id=app_id,
            member=member,
            role=role,
            opts=_opts(self.parent, self.after),
        )
        return self._keep(r, member, role, "the review app (IAP)", why)


def _title(condition: dict | None) -> str:
    return condition["title"] if condition else ""


def bucket_condition(title: str, bucket: pulumi.Input[str], folder: str = "") -> dict:
    """An IAM condition that limits a storage role to one bucket (the bucket itself, for listing,
    and its objects), or to the objects in one folder of it."""
    base = pulumi.Output.concat("projects/_/buckets/", bucket)
    if folder:
        expression = pulumi.Output.concat('resource.name.startsWith("', base, "/objects/", folder, '/")')
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
    "objectReview": (
        "list, read, create and delete objects (leases, decisions, undo and the audit trail)",
        ("storage.objects.list", "storage.objects.get", "storage.objects.create", "storage.objects.delete"),
    ),
    "predictOnly": (
        "online prediction on one Vertex AI endpoint, without changing, undeploying or deleting it",
        ("aiplatform.endpoints.predict",),
    ),
    "signBlobOnly": (
        "sign bytes as a service account (V4 signed URLs) without minting access or ID tokens",
        ("iam.serviceAccounts.signBlob",),
    ),
}


class CustomRoles(pulumi.ComponentResource):
    """Project custom roles named `<prefix>_<role>`; `self.name(role)` is what grants use.

    A deleted custom role keeps its id for up to 44 days, so a destroyed stack cannot be recreated
    under the same prefix until then (README: destroy).
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
                opts=_opts(self, after),
            )
            for key, (purpose, permissions) in CUSTOM_ROLES.items()
        }
        self.register_outputs({})

    def name(self, key: str) -> pulumi.Output[str]:
        return self.roles[key].name
