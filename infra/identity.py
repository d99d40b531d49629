"""Identity and IAM: one service account per component, and every grant the program makes.

Every grant is additive (one member per resource), placed on the bucket, topic, subscription,
service or account it concerns wherever GCP allows, and recorded in LEDGER with its reason.
docs/iam.md is generated from LEDGER under mocks (scripts/iam_doc.py); a test keeps it current.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings


@dataclass(frozen=True)
class Grant:
    principal: pulumi.Input[str]
    role: str
    resource: pulumi.Input[str]
    why: str


LEDGER: list[Grant] = []


def _record(resource: pulumi.Resource, principal, role: str, target, why: str) -> pulumi.Resource:
    LEDGER.append(Grant(principal, role, target, why))
    return resource


class Accounts(pulumi.ComponentResource):
    """The service accounts; none has a key, and no default compute account is used anywhere."""

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:identity:Accounts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def account(role: str, title: str) -> gcp.serviceaccount.Account:
            return gcp.serviceaccount.Account(
                f"sa-{role}",
                account_id=f"{settings.prefix}-{role}",
                project=settings.project,
                display_name=f"quality-inspection {title}",
                opts=child,
            )

        self.predict = account("predict", "predict function")
        self.move = account("move", "move function")
        self.review = account("review", "review app")
        self.invoker = account("invoker", "Eventarc trigger and Pub/Sub push identity")
        self.builder = account("builder", "Cloud Build for the functions")
        self.register_outputs({})


class Agents:
    """Google-managed service agents, declared explicitly so grants can name and wait for them."""

    def __init__(self, settings: Settings, apis: list[pulumi.Resource]):
        opts = pulumi.ResourceOptions(depends_on=apis)
        self.project_number = gcp.organizations.get_project_output(project_id=settings.project).number
        self.gcs = gcp.storage.get_project_service_account_output(project=settings.project).email_address
        self.pubsub = gcp.projects.ServiceIdentity(
            "agent-pubsub", project=settings.project, service="pubsub.googleapis.com", opts=opts
        ).email
        self.eventarc = gcp.projects.ServiceIdentity(
            "agent-eventarc", project=settings.project, service="eventarc.googleapis.com", opts=opts
        ).email


def sa(email: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("serviceAccount:", email)


def _bucket(key: str, bucket, member, role: str, why: str) -> pulumi.Resource:
    r = gcp.storage.BucketIAMMember(key, bucket=bucket.name, member=member, role=role)
    return _record(r, member, role, pulumi.Output.concat("bucket ", bucket.name), why)


def _topic(key: str, topic, member, role: str, why: str) -> pulumi.Resource:
    r = gcp.pubsub.TopicIAMMember(key, project=topic.project, topic=topic.name, member=member, role=role)
    return _record(r, member, role, pulumi.Output.concat("topic ", topic.name), why)


def _project(key: str, settings: Settings, member, role: str, why: str) -> pulumi.Resource:
    r = gcp.projects.IAMMember(key, project=settings.project, member=member, role=role)
    return _record(r, member, role, f"project {settings.project}", why)


def pipeline_grants(
    settings: Settings, accounts: Accounts, agents: Agents, buckets, messaging
) -> list[pulumi.Resource]:
    """What the functions, their trigger and their build need before they are created."""
    s, a = settings, accounts
    grants = [
        _bucket(
            "iam-predict-inbound",
            buckets.inbound,
            sa(a.predict.email),
            "roles/storage.objectUser",
            "predict reads each new photo, and deletes an unusable one after quarantining it",
        ),
        _bucket(
            "iam-predict-prediction",
            buckets.prediction,
            sa(a.predict.email),
            "roles/storage.objectUser",
            "predict writes rejected/ and reads the destination to make the quarantine idempotent",
        ),
        _topic(
            "iam-predict-publish",
            messaging.predictions,
            sa(a.predict.email),
            "roles/pubsub.publisher",
            "predict publishes each prediction",
        ),
        _bucket(
            "iam-move-inbound",
            buckets.inbound,
            sa(a.move.email),
            "roles/storage.objectUser",
            "move copies the photo out of inbound and deletes exactly the copied generation",
        ),
        _bucket(
            "iam-move-prediction",
            buckets.prediction,
            sa(a.move.email),
            "roles/storage.objectUser",
            "move writes ok/, defect/, unclear/ and reads existing objects to stay idempotent",
        ),
        _topic(
            "iam-move-dead-letter",
            messaging.dead_letter,
            sa(a.move.email),
            "roles/pubsub.publisher",
            "move sends messages it cannot parse to the dead-letter topic",
        ),
        _project(
            "iam-gcs-agent-publisher",
            s,
            sa(agents.gcs),
            "roles/pubsub.publisher",
            "the Cloud Storage service agent publishes object events to the topic Eventarc creates; "
            "that topic does not exist before the trigger, so the grant is project-wide, as documented",
        ),
        _project(
            "iam-invoker-event-receiver",
            s,
            sa(a.invoker.email),
            "roles/eventarc.eventReceiver",
            "the trigger's identity receives Eventarc events; Eventarc accepts this role only on the project",
        ),
        _bucket(
            "iam-builder-sources",
            buckets.sources,
            sa(a.builder.email),
            "roles/storage.objectViewer",
            "Cloud Build reads the zipped function sources",
        ),
        _project(
            "iam-builder-logs",
            s,
            sa(a.builder.email),
            "roles/logging.logWriter",
            "Cloud Build writes the functions' build logs",
        ),
        _project(
            "iam-builder-artifacts",
            s,
            sa(a.builder.email),
            "roles/artifactregistry.writer",
            "Cloud Build pushes function images to gcf-artifacts, a repository Cloud Functions creates",
        ),
    ]
    if s.backend == "vertex":
        r = gcp.vertex.AiEndpointIamMember(
            "iam-predict-vertex",
            project=s.project,
            location=s.vertex_region,
            endpoint=s.vertex_endpoint_id,
            member=sa(a.predict.email),
            role="roles/aiplatform.user",
        )
        grants.append(
            _record(
                r,
                sa(a.predict.email),
                "roles/aiplatform.user",
                f"Vertex AI endpoint {s.vertex_endpoint_id}",
                "predict calls the endpoint's online prediction",
            )
        )
    elif s.onnx_model.startswith("gs://"):
        bucket = s.onnx_model[5:].split("/", 1)[0]
        r = gcp.storage.BucketIAMMember(
            "iam-predict-model", bucket=bucket, member=sa(a.predict.email), role="roles/storage.objectViewer"
        )
        grants.append(
            _record(
                r,
                sa(a.predict.email),
                "roles/storage.objectViewer",
                f"bucket {bucket}",
                "predict downloads the ONNX model once per instance",
            )
        )
    return grants


def invocation_grants(settings: Settings, accounts: Accounts, functions) -> list[pulumi.Resource]:
    """Who may call the functions: only the invoker identity (Eventarc and our push subscription)."""
    grants = []
    for key, function in (("predict", functions.predict), ("move", functions.move)):
        service = function.service_config.apply(lambda c: c.service)
        r = gcp.cloudrunv2.ServiceIamMember(
            f"iam-invoker-run-{key}",
            project=settings.project,
            location=settings.region,
            name=service,
            member=sa(accounts.invoker.email),
            role="roles/run.invoker",
        )
        why = (
            "Eventarc delivers storage events to predict as the invoker"
            if key == "predict"
            else "the push subscription calls move with the invoker's OIDC token"
        )
        grants.append(
            _record(
                r,
                sa(accounts.invoker.email),
                "roles/run.invoker",
                pulumi.Output.concat("Cloud Run service ", service),
                why,
            )
        )
    return grants


def token_grants(accounts: Accounts, agents: Agents) -> list[pulumi.Resource]:
    """The Pub/Sub agent signs the push subscription's OIDC tokens as the invoker."""
    r = gcp.serviceaccount.IAMMember(
        "iam-pubsub-agent-invoker-token",
        service_account_id=accounts.invoker.name,
        member=sa(agents.pubsub),
        role="roles/iam.serviceAccountTokenCreator",
    )
    return [
        _record(
            r,
            sa(agents.pubsub),
            "roles/iam.serviceAccountTokenCreator",
            pulumi.Output.concat("service account ", accounts.invoker.email),
            "Pub/Sub mints the OIDC token for push deliveries to move",
        )
    ]


def dead_letter_grants(agents: Agents, messaging, push_subscription) -> list[pulumi.Resource]:
    """What the Pub/Sub service agent needs to move failing messages to the dead-letter topic."""
    member = sa(agents.pubsub)
    publish = _topic(
        "iam-pubsub-agent-dead-letter",
        messaging.dead_letter,
        member,
        "roles/pubsub.publisher",
        "Pub/Sub forwards messages that failed 5 deliveries to the dead-letter topic",
    )
    r = gcp.pubsub.SubscriptionIAMMember(
        "iam-pubsub-agent-ack",
        project=push_subscription.project,
        subscription=push_subscription.name,
        member=member,
        role="roles/pubsub.subscriber",
    )
    ack = _record(
        r,
        member,
        "roles/pubsub.subscriber",
        pulumi.Output.concat("subscription ", push_subscription.name),
        "Pub/Sub acknowledges a dead-lettered message on the source subscription",
    )
    return [publish, ack]


def review_grants(settings: Settings, accounts: Accounts, buckets, app) -> list[pulumi.Resource]:
    """The review app's own access, and who may open it."""
    member = sa(accounts.review.email)
    grants = [
        _bucket(
            "iam-review-prediction",
            buckets.prediction,
            member,
            "roles/storage.objectUser",
            "the app leases, moves and lists images in the prediction bucket",
        ),
        _bucket(
            "iam-review-sources",
            buckets.sources,
            member,
            "roles/storage.objectViewer",
            "App Engine deploys the app's zip from the sources bucket",
        ),
    ]
    r = gcp.serviceaccount.IAMMember(
        "iam-review-sign-self",
        service_account_id=accounts.review.name,
        member=member,
        role="roles/iam.serviceAccountTokenCreator",
    )
    grants.append(
        _record(
            r,
            member,
            "roles/iam.serviceAccountTokenCreator",
            pulumi.Output.concat("service account ", accounts.review.email),
            "the app signs image URLs through IAM signBlob, with no key file",
        )
    )
    for reviewer in settings.reviewers:
        key = "iam-reviewer-" + "".join(ch if ch.isalnum() else "-" for ch in reviewer).strip("-").lower()
        r = gcp.iap.WebTypeAppEngingIamMember(
            key,
            project=settings.project,
            app_id=app.application.app_id,
            member=reviewer,
            role="roles/iap.httpsResourceAccessor",
        )
        grants.append(
            _record(
                r,
                reviewer,
                "roles/iap.httpsResourceAccessor",
                "the review app (IAP)",
                "a configured reviewer may pass IAP to the review app",
            )
        )
    return grants
