"""Who acts: one service account per component, and the Google-managed service agents.

No account has a key, and no default compute or App Engine account runs anything we deploy.
Grants are not here: each component declares the grants its own work needs (infra/iam.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import Settings

# account → what it is for; one identity per caller, so an auditor can tell them apart.
ACCOUNTS = {
    "predict": "predict function",
    "move": "move function",
    "review": "review app (reviewers)",
    "audit": "review app's audit view (auditors)",
    "trigger": "Eventarc trigger that delivers storage events to predict",
    "pusher": "Pub/Sub push subscription that delivers predictions to move",
    "builder": "Cloud Build for the functions",
    "sweeper": "re-drive sweep, and Cloud Scheduler's identity when it calls the sweep",
}


# Only in the stack that creates the App Engine application: the identity of its `default` service.
DEFAULT_SERVICE = "gae-default"
DEFAULT_SERVICE_TITLE = "App Engine's default service, which serves nothing (infra/project.py)"


class Accounts(pulumi.ComponentResource):
    """The service accounts, as attributes named like ACCOUNTS' keys."""

    def __init__(self, name: str, settings: Settings, after: Sequence[pulumi.Resource], opts=None):
        super().__init__("quality-inspection:identity:Accounts", name, None, opts)
        self.all: dict[str, gcp.serviceaccount.Account] = {}
        wanted = dict(ACCOUNTS)
        if settings.app_engine == "create":
            wanted[DEFAULT_SERVICE] = DEFAULT_SERVICE_TITLE
        for role, title in wanted.items():
            self.all[role] = gcp.serviceaccount.Account(
                f"sa-{role}",
                account_id=f"{settings.prefix}-{role}",
                project=settings.project,
                display_name=f"quality-inspection {title}",
                # App Engine's default service outlives the stack that made it (infra/project.py),
                # and so does the identity it runs as.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(after), retain_on_delete=role == DEFAULT_SERVICE or None
                ),
            )
            setattr(self, role.replace("-", "_"), self.all[role])
        self.register_outputs({})


class Agents:
    """Google-managed service agents, declared or looked up only once their APIs are enabled, so
    that grants can name them (docs/gcp-rules.md, "Service agents")."""

    def __init__(self, settings: Settings, apis):
        def after(*names: str) -> pulumi.InvokeOutputOptions:
            return pulumi.InvokeOutputOptions(depends_on=[apis.service(n) for n in names])

        project = settings.project
        self.project_number = gcp.organizations.get_project_output(
            project_id=project, opts=after("cloudresourcemanager")
        ).number
        self.gcs = gcp.storage.get_project_service_account_output(
            project=project, opts=after("storage")
        ).email_address

        def agent(api: str) -> gcp.projects.ServiceIdentity:
            return gcp.projects.ServiceIdentity(
                f"agent-{api}",
                project=project,
                service=f"{api}.googleapis.com",
                opts=pulumi.ResourceOptions(depends_on=[apis.service(api)]),
            )

        self.pubsub = agent("pubsub").email
        self.eventarc_identity = agent("eventarc")
        self.eventarc = self.eventarc_identity.email
