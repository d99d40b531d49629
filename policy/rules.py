"""The rules every deployment must keep, as pure functions over (resource type, properties).

Properties use Pulumi's wire names (camelCase), which is what both the mocks and CrossGuard see.
No import of pulumi or pulumi_policy here: the rules run in either environment.
"""

from __future__ import annotations

from collections.abc import Iterable

PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
DEFAULT_ACCOUNT_SUFFIXES = ("-compute@developer.gserviceaccount.com", "@appspot.gserviceaccount.com")
# Predefined roles that allow more than any work here needs; a custom role names the permissions
# instead (docs/gcp-rules.md, "Least privilege").
BROADER_THAN_THE_WORK = {
    "roles/aiplatform.user": "use a custom role with aiplatform.endpoints.predict",
    "roles/storage.objectUser": "use a custom role with the object permissions the work uses",
    "roles/storage.objectAdmin": "use a custom role with the object permissions the work uses",
    "roles/storage.admin": "use a custom role with the object permissions the work uses",
    "roles/iam.serviceAccountTokenCreator": "use a custom role with iam.serviceAccounts.signBlob",
}
# The one exception: the Pub/Sub agent in projects created before 2021-04-08 (pubsubAgentTokenCreator).
PUBSUB_AGENT = "@gcp-sa-pubsub.iam.gserviceaccount.com"
FUNCTION = "gcp:cloudfunctionsv2/function:Function"
APP_VERSION = "gcp:appengine/standardAppVersion:StandardAppVersion"


def _is_iam_member(resource_type: str) -> bool:
    kind = resource_type.rsplit(":", 1)[-1]
    return kind.endswith(("IAMMember", "IamMember", "IAMBinding", "IamBinding"))


def violations(resource_type: str, props: dict) -> list[str]:
    """What is wrong with one resource; empty when it is fine."""
    found = []
    if _is_iam_member(resource_type):
        role = props.get("role", "")
        members = [props["member"]] if "member" in props else list(props.get("members") or [])
        if role in PRIMITIVE_ROLES:
            found.append(f"primitive role {role}: grant a predefined role on the resource instead")
        if PUBLIC_MEMBERS & set(members):
            found.append("grants to allUsers or allAuthenticatedUsers are forbidden")
        if (
            resource_type.startswith("gcp:projects/")
            and role.startswith("roles/storage.")
            and not props.get("condition")
        ):
            found.append(f"project-level {role}: grant it on the bucket, or limit it to one with a condition")
        if resource_type.startswith("gcp:projects/") and role.startswith("roles/artifactregistry."):
            found.append(f"project-level {role}: declare the repository and grant writer on it")
        if role in BROADER_THAN_THE_WORK and not (
            role == "roles/iam.serviceAccountTokenCreator" and all(m.endswith(PUBSUB_AGENT) for m in members)
        ):
            found.append(f"{role} allows more than the work: {BROADER_THAN_THE_WORK[role]}")
        if resource_type.endswith("Binding"):
            found.append("authoritative bindings are forbidden: use additive members")
    if resource_type.startswith("gcp:serviceaccount/key:"):
        found.append("service-account keys are forbidden: use the attached service account")
    if resource_type == "gcp:storage/bucket:Bucket":
        if props.get("uniformBucketLevelAccess") is not True:
            found.append("bucket without uniform bucket-level access")
        if props.get("publicAccessPrevention") != "enforced":
            found.append("bucket without public access prevention enforced")
    if resource_type == FUNCTION and not (props.get("buildConfig") or {}).get("dockerRepository"):
        found.append("function without docker_repository: images would go to a repository nobody declared")
    if resource_type == APP_VERSION and props.get("noopOnDestroy") is True:
        found.append("App Engine versions kept on replace pile up: set noop_on_destroy false")
    for account in _accounts(resource_type, props):
        if not account:
            found.append("no explicit service account: the default compute account would be used")
        elif account.endswith(DEFAULT_ACCOUNT_SUFFIXES):
            found.append(f"runs as a default service account ({account})")
    return found


def _accounts(resource_type: str, props: dict) -> list[str]:
    if resource_type == FUNCTION:
        return [
            (props.get("serviceConfig") or {}).get("serviceAccountEmail", ""),
            (props.get("buildConfig") or {}).get("serviceAccount", ""),
        ]
    if resource_type == APP_VERSION:
        return [props.get("serviceAccount", "")]
    return []


def shared_accounts(resources: Iterable[tuple[str, str, dict]]) -> list[str]:
    """Components that run as the same service account; `resources` are (type, name, props)."""
    runtime: dict[str, str] = {}
    found = []
    for resource_type, name, props in resources:
        accounts = _accounts(resource_type, props)
        if not accounts or not accounts[0]:
            continue
        other = runtime.setdefault(accounts[0], name)
        if other != name:
            found.append(f"{name} and {other} share the service account {accounts[0]}")
    return found
