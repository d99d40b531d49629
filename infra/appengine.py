"""App Engine services as this program deploys them: one content-named zip, one version holding all
traffic, who may pass IAP to it, and a teardown that removes the whole service on `destroy`.

Facts this relies on (docs/gcp-rules.md, "App Engine"):
- a new version gets no traffic unless it is its service's first, and the provider does not move
  it (https://github.com/pulumi/pulumi-gcp/issues/718): `EngineSplitTraffic` sends all of it to the
  version just deployed, and a replaced version is deleted once its successor serves;
- a version that holds all traffic cannot be deleted, and the split's delete does nothing, so a
  stack's `destroy` stopped there. The provider's `delete_service_on_destroy` deletes the whole
  service whenever any version is deleted, a replaced one included
  (magic-modules mmv1/templates/terraform/custom_delete/go/appversion_delete.go.tmpl), so it would
  take the new version down with the old. Instead `ServiceTeardown` deletes the service, with all
  its versions, only when the stack is destroyed; the version's own delete then finds it gone,
  which the provider treats as done;
- the `default` service cannot be deleted and must exist before any other
  (https://cloud.google.com/appengine/docs/standard/reference/app-yaml#service).
"""

from __future__ import annotations

import time as clock
from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.iam import Grant, Grants

RUNTIME = "python313"
ADMIN_API = "https://appengine.googleapis.com"


def service_url(service: pulumi.Input[str], default_hostname: pulumi.Input[str]) -> pulumi.Output[str]:
    """A service's own address: https://<service>-dot-<the application's hostname>."""
    return pulumi.Output.concat("https://", service, "-dot-", default_hostname)


class AppService:
    """One App Engine standard service under `parent`, deployed from the zip `source`."""

    def __init__(
        self,
        key: str,
        parent: pulumi.Resource,
        *,
        project: str,
        service: str,
        source: gcp.storage.BucketObject,
        sources_bucket,
        account_email: pulumi.Input[str],
        env: dict,
        after: Sequence[pulumi.Resource],
        instance_class: str = "F1",
        max_instances: int = 5,
        entrypoint: str = "gunicorn -b :$PORT --workers 1 --threads 8 --timeout 60 main:app",
        outlives_stack: bool = False,
    ):
        self.service, self.source = service, source
        kept = pulumi.ResourceOptions(retain_on_delete=True) if outlives_stack else pulumi.ResourceOptions()
        self.version = gcp.appengine.StandardAppVersion(
            f"{key}-version",
            project=project,
            service=service,
            version_id=self.source.name.apply(
                lambda n: "v-" + n.removesuffix(".zip").rsplit("-", 1)[-1][:20]
            ),
            runtime=RUNTIME,
            entrypoint={"shell": entrypoint},
            deployment={
                "zip": {
                    "source_url": pulumi.Output.concat(
                        "https://storage.googleapis.com/", sources_bucket.name, "/", self.source.name
                    )
                }
            },
            env_variables=env,
            service_account=account_email,
            instance_class=instance_class,  # F1: 384 MB, one worker process, concurrency from threads
            automatic_scaling={
                "max_concurrent_requests": 50,
                "standard_scheduler_settings": {"max_instances": max_instances},
            },
            delete_service_on_destroy=False,
            noop_on_destroy=False,  # a replaced version is deleted: versions do not pile up
            opts=pulumi.ResourceOptions.merge(
                kept, pulumi.ResourceOptions(parent=parent, depends_on=list(after))
            ),
        )
        self.traffic = gcp.appengine.EngineSplitTraffic(
            f"{key}-traffic",
            project=project,
            service=self.version.service,
            migrate_traffic=False,
            split={"shard_by": "IP", "allocations": self.version.version_id.apply(lambda v: {v: "1"})},
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[self.version]),
        )
        self.teardown = (
            None
            if outlives_stack
            else ServiceTeardown(
                f"{key}-teardown",
                project=project,
                service=service,
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[self.version, self.traffic]),
            )
        )

    def admit(
        self, iam: Grants, key: str, project: str, app_id, members: Sequence[str], who: str
    ) -> list[Grant]:
        """IAP access to this service, and only this service, for each member."""
        found = []
        for member in members:
            name = f"iam-{key}-" + "".join(ch if ch.isalnum() else "-" for ch in member).strip("-").lower()
            found.append(
                iam.app_engine_service(
                    name,
                    project,
                    app_id,
                    self.version.service,
                    member,
                    "roles/iap.httpsResourceAccessor",
                    f"a configured {who} may pass IAP to this stack's {who} service, and to no other",
                )
            )
        return found


# --- the teardown -------------------------------------------------------------------------------------


def delete_service(
    project: str,
    service: str,
    *,
    session=None,
    api: str = ADMIN_API,
    timeout_s: float = 900.0,
    poll_s: float = 5.0,
) -> str:
    """Delete an App Engine service with all its versions and wait for it: "deleted", or "gone"
    when there was nothing to delete. Admin API `apps.services.delete` answers a long-running
    operation (https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps.services/delete)."""
    if service == "default":
        raise ValueError("App Engine's default service cannot be deleted")
    if session is None:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        session = AuthorizedSession(credentials)
    answer = session.delete(f"{api}/v1/apps/{project}/services/{service}", timeout=60)
    if answer.status_code == 404:
        return "gone"
    if answer.status_code >= 300:
        raise RuntimeError(
            f"deleting App Engine service {service} failed: {answer.status_code} {answer.text[:300]}"
        )
    operation = answer.json()
    deadline = clock.monotonic() + timeout_s
    while not operation.get("done"):
        if clock.monotonic() > deadline:
            raise TimeoutError(
                f"deleting App Engine service {service}: {operation.get('name')} still running"
            )
        clock.sleep(poll_s)
        polled = session.get(f"{api}/v1/{operation['name']}", timeout=60)
        if polled.status_code >= 300:
            raise RuntimeError(
                f"polling {operation['name']} failed: {polled.status_code} {polled.text[:300]}"
            )
        operation = polled.json()
    if "error" in operation:
        raise RuntimeError(f"deleting App Engine service {service} failed: {operation['error']}")
    return "deleted"


class _TeardownProvider(pulumi.dynamic.ResourceProvider):
    """Creating it does nothing; deleting it deletes the service it names."""

    def create(self, props):
        return pulumi.dynamic.CreateResult(
            id_=f"apps/{props['project']}/services/{props['service']}", outs=props
        )

    def delete(self, id, props):
        delete_service(props["project"], props["service"])


class ServiceTeardown(pulumi.dynamic.Resource):
    """On `destroy`, the App Engine service it names goes, with every version. Declare it after the
    service's first version, so that it is deleted before the versions are."""

    def __init__(self, name: str, *, project: str, service: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(_TeardownProvider(), name, {"project": project, "service": service}, opts)
