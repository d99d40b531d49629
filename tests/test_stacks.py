"""One project, several stacks: a rehearsal of `up`, `destroy` and `up` again, under mocks.

The program is run for a `dev` and a `prod` stack of one project. `Project` below keeps what exists
in that project, keyed by what makes each thing itself in Google Cloud (a bucket by its name, a
binding by resource, role, member and condition, an App Engine version by service and id), and
applies each registered resource as the provider would:
- creating what exists already is a 409, except where the API is additive or idempotent (an IAM
  member, enabling an API, a service identity) or undeletes (a custom role deleted within 7 days);
- a lookup (`.get`) needs the thing to exist;
- on destroy, each resource goes in reverse dependency order, unless retained; enabling an API,
  a service identity and the traffic split delete nothing; deleting a version that holds its
  service's traffic stops the destroy; the teardown deletes its service with every version.

Sources for each behaviour: docs/gcp-rules.md, "One project, several stacks".
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
import requests

from infra import appengine
from infra.mocks import dev_config, run_program

pytestmark = pytest.mark.unit

PROJECT = "my-factory-project"
DEV = {}
PROD = {
    "prefix": "acme-qi-prod",  # a prefix that starts with dev's: nothing may match both by prefix
    "appEngine": "existing",
    "iapClientId": None,
    "iapClientSecret": None,
    "reviewers": ["user:pat@example.com"],
    "auditors": ["user:quinn@example.com"],
}

# What enabling or creating is idempotent for, and what deleting leaves in place.
ADDITIVE = ("IAMMember", "IamMember")
NO_OP_DELETE = {
    "gcp:projects/service:Service": "disable_on_destroy is false: the API stays enabled",
    "gcp:projects/serviceIdentity:ServiceIdentity": "the provider's delete is a no-op",
    "gcp:appengine/engineSplitTraffic:EngineSplitTraffic": "the provider's delete is a no-op",
}


class DestroyStops(Exception):
    pass


class Conflict(Exception):
    pass


def identity(kind: str, i: dict) -> tuple | None:
    """What makes a registered resource the thing it is in the project (None: nothing in the cloud)."""
    if kind.split(":")[-1].endswith(ADDITIVE):
        where = next(
            f"{k}={i[k]}"
            for k in (
                "bucket",
                "topic",
                "subscription",
                "serviceAccountId",
                "repository",
                "datasetId",
                "endpoint",
                "service",
                "name",
                "project",
            )
            if k in i
        )
        if "service" in i and "appId" in i:
            where = f"app-engine-service={i['service']}"
        condition = (i.get("condition") or {}).get("expression", "")
        return ("binding", where, i["role"], i["member"], condition)
    simple = {
        "gcp:storage/bucket:Bucket": lambda: ("bucket", i["name"]),
        "gcp:storage/bucketObject:BucketObject": lambda: ("object", i["bucket"], i["name"]),
        "gcp:serviceaccount/account:Account": lambda: ("service-account", i["accountId"]),
        "gcp:projects/iAMCustomRole:IAMCustomRole": lambda: ("custom-role", i["roleId"]),
        "gcp:projects/service:Service": lambda: ("api", i["service"]),
        "gcp:projects/serviceIdentity:ServiceIdentity": lambda: ("service-identity", i["service"]),
        "gcp:pubsub/topic:Topic": lambda: ("topic", i["name"]),
        "gcp:pubsub/subscription:Subscription": lambda: ("subscription", i["name"]),
        "gcp:cloudfunctionsv2/function:Function": lambda: ("function", i["location"], i["name"]),
        "gcp:artifactregistry/repository:Repository": lambda: (
            "repository",
            i["location"],
            i["repositoryId"],
        ),
        "gcp:appengine/application:Application": lambda: ("app-engine-application", PROJECT),
        "gcp:appengine/standardAppVersion:StandardAppVersion": lambda: (
            "app-engine-version",
            i["service"],
            i["versionId"],
        ),
        "gcp:appengine/engineSplitTraffic:EngineSplitTraffic": lambda: ("app-engine-traffic", i["service"]),
        "pulumi-python:dynamic:Resource": lambda: ("app-engine-teardown", i["service"]),
        "gcp:logging/metric:Metric": lambda: ("log-metric", i["name"]),
        "gcp:logging/projectSink:ProjectSink": lambda: ("log-sink", i["name"]),
        "gcp:bigquery/dataset:Dataset": lambda: ("dataset", i["datasetId"]),
        "gcp:cloudscheduler/job:Job": lambda: ("scheduler-job", i["region"], i["name"]),
    }
    if kind in simple:
        return simple[kind]()
    return None  # components, waits, and what Google names itself (policies, channels, dashboards)


@dataclass
class Stack:
    name: str
    config: dict
    resources: list[dict] = field(default_factory=list)  # in registration order, with graph facts

    def up(self, project: Project) -> None:
        mocks, _ = run_program(dev_config(**self.config))
        self.resources = []
        for r in mocks.resources:
            node = mocks.graph.get(r["name"])
            self.resources.append({**r, "id": identity(r["type"], r["inputs"]), "node": node})
        project.apply(self)

    def declared(self) -> dict[tuple, dict]:
        return {r["id"]: r for r in self.resources if r["id"] and not r["node"].read}

    def needs(self) -> set[tuple]:
        return {r["id"] for r in self.resources if r["id"]} - {
            r["id"] for r in self.resources if r["type"] == "gcp:storage/bucketObject:BucketObject"
        }


@dataclass
class Project:
    exists: set[tuple] = field(default_factory=set)
    deleted_roles: set[tuple] = field(default_factory=set)  # undeletable for 7 days

    def copy(self) -> Project:
        return Project(set(self.exists), set(self.deleted_roles))

    def apply(self, stack: Stack) -> None:
        for r in stack.resources:
            key = r["id"]
            if key is None:
                continue
            if r["node"].read:
                if key not in self.exists:
                    raise Conflict(f"{stack.name}: {r['name']} looks up {key}, which does not exist")
                continue
            idempotent = key[0] in ("binding", "api", "service-identity", "app-engine-traffic")
            if key in self.exists and not idempotent:
                raise Conflict(f"{stack.name}: {r['name']} creates {key}, which exists (409)")
            self.deleted_roles.discard(key)  # the provider undeletes a role deleted within 7 days
            self.exists.add(key)
            if key[0] == "app-engine-version":
                self.exists.add(("app-engine-service", key[1]))

    def destroy(self, stack: Stack) -> None:
        order = _reverse_dependency_order(stack.resources)
        for r in order:
            key = r["id"]
            if key is None or r["node"].read or r["node"].retained or r["type"] in NO_OP_DELETE:
                continue
            if key[0] == "app-engine-teardown":
                service = key[1]
                self.exists -= {k for k in self.exists if k[:2] in (("app-engine-version", service),)}
                self.exists -= {("app-engine-service", service), key}
                continue
            if key[0] == "app-engine-version" and ("app-engine-service", key[1]) in self.exists:
                versions = [k for k in self.exists if k[:2] == ("app-engine-version", key[1])]
                if versions == [key]:
                    raise DestroyStops(f"{stack.name}: {r['name']} holds all of {key[1]}'s traffic")
            if key[0] == "custom-role":
                self.deleted_roles.add(key)
            self.exists.discard(key)


def _reverse_dependency_order(resources: list[dict]) -> list[dict]:
    """Dependents before what they depend on, as `pulumi destroy` deletes."""
    by_urn = {r["node"].urn: r for r in resources if r["node"]}
    done, order = set(), []

    def visit(r):
        if r["name"] in done:
            return
        done.add(r["name"])
        for dep in r["node"].dependencies | ({r["node"].parent} if r["node"].parent else set()):
            if dep in by_urn:
                visit(by_urn[dep])
        order.append(r)

    for r in resources:
        if r["node"]:
            visit(r)
    return list(reversed(order))


def working(stack: Stack, project: Project) -> list[tuple]:
    """What the stack relies on that the project no longer has."""
    return sorted(stack.needs() - project.exists)


@pytest.fixture
def project_with_two_stacks():
    project, dev, prod = Project(), Stack("dev", DEV), Stack("prod", PROD)
    dev.up(project)
    prod.up(project)
    return project, dev, prod


def test_dev_and_prod_deploy_side_by_side_and_share_only_what_destroy_cannot_take(project_with_two_stacks):
    """Both stacks come up in one project. What both declare is only what deleting leaves in place:
    enabled APIs, service identities, and the bindings every stack's work relies on, which each
    stack keeps on destroy (issue 21, finding 6: the storage agent's publisher role and the build
    grants were removed for both by either's destroy)."""
    _, dev, prod = project_with_two_stacks
    both = set(dev.declared()) & set(prod.declared())
    unsafe = {
        key: (dev.declared()[key]["name"], prod.declared()[key]["name"])
        for key in both
        if not all(
            s.declared()[key]["type"] in NO_OP_DELETE or s.declared()[key]["node"].retained
            for s in (dev, prod)
        )
    }
    assert unsafe == {}
    shared_bindings = sorted((k[2], k[3].split("@")[0]) for k in both if k[0] == "binding")
    assert shared_bindings == [
        ("roles/artifactregistry.writer", f"serviceAccount:{PROJECT}"),
        ("roles/logging.logWriter", f"serviceAccount:{PROJECT}"),
        ("roles/pubsub.publisher", "serviceAccount:service-123456789012"),
    ]


def test_each_stacks_people_reach_only_that_stacks_review_app(project_with_two_stacks):
    _, dev, prod = project_with_two_stacks
    for stack, people, prefix in (
        (
            dev,
            {"user:alice@example.com", "group:quality-reviewers@example.com", "user:auditor@example.com"},
            "acme-qi",
        ),
        (prod, {"user:pat@example.com", "user:quinn@example.com"}, "acme-qi-prod"),
    ):
        admitted = {
            (r["inputs"]["member"], r["inputs"]["service"])
            for r in stack.resources
            if r["type"] == "gcp:iap/appEngineServiceIamMember:AppEngineServiceIamMember"
        }
        assert {member for member, _ in admitted} == people
        assert {service for _, service in admitted} <= {f"{prefix}-review", f"{prefix}-audit"}
        assert not [r for r in stack.resources if "WebTypeAppEnging" in r["type"]]


@pytest.mark.parametrize("first", ["dev", "prod"])
def test_destroying_either_stack_leaves_the_other_fully_working(project_with_two_stacks, first):
    project, dev, prod = project_with_two_stacks
    gone, other = (dev, prod) if first == "dev" else (prod, dev)
    project.destroy(gone)
    assert working(other, project) == []
    assert [k for k in gone.declared() if k in project.exists and k[0] == "app-engine-service"] == []


def test_destroy_then_up_works_in_the_same_project(project_with_two_stacks):
    """After a destroy the application, the default service and gae-standard stay (App Engine cannot
    delete the first two; the other stack's builds need the third), so the stack comes back as
    `existing`; its custom roles are undeleted (within 7 days)."""
    project, dev, _ = project_with_two_stacks
    project.destroy(dev)
    with pytest.raises(Conflict, match=r"gae-standard|app-engine-application|app-engine-version"):
        Stack("dev", {**DEV}).up(project.copy())  # `create` again: what outlived the stack is there
    again = Stack("dev", {**DEV, "appEngine": "existing", "iapClientId": None, "iapClientSecret": None})
    again.up(project)
    assert working(again, project) == []


def test_before_the_teardown_destroy_stopped_at_the_version_holding_all_traffic(project_with_two_stacks):
    """Issue 21, finding 5: the split's delete does nothing and a version holding all traffic
    cannot be deleted, so without the teardown `destroy` always stopped there."""
    project, dev, _ = project_with_two_stacks
    without = Stack("dev", DEV, [r for r in dev.resources if r["type"] != "pulumi-python:dynamic:Resource"])
    with pytest.raises(DestroyStops, match=r"holds all of acme-qi-(review|audit)'s traffic"):
        project.destroy(without)


# --- the teardown against the App Engine Admin API's contract -----------------------------------------


class FakeAdminApi(BaseHTTPRequestHandler):
    """apps.services.delete answers an Operation; operations.get reports it done on the second poll."""

    services: ClassVar[dict] = {}
    polls: ClassVar[dict] = {}

    def do_DELETE(self):
        service = self.path.rsplit("/", 1)[-1]
        if service not in self.services:
            return self._answer(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        del self.services[service]
        self._answer(200, {"name": f"apps/{PROJECT}/operations/op-1", "done": False})

    def do_GET(self):
        self.polls[self.path] = self.polls.get(self.path, 0) + 1
        done = self.polls[self.path] >= 2
        self._answer(
            200,
            {"name": f"apps/{PROJECT}/operations/op-1", "done": done, **({"response": {}} if done else {})},
        )

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def admin_api():
    FakeAdminApi.services, FakeAdminApi.polls = {"acme-qi-review": ["v-1", "v-2"]}, {}
    server = HTTPServer(("127.0.0.1", 0), FakeAdminApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_teardown_deletes_the_whole_service_and_waits_for_it(admin_api):
    session = requests.Session()
    assert (
        appengine.delete_service(PROJECT, "acme-qi-review", session=session, api=admin_api, poll_s=0.01)
        == "deleted"
    )
    assert "acme-qi-review" not in FakeAdminApi.services
    assert FakeAdminApi.polls == {f"/v1/apps/{PROJECT}/operations/op-1": 2}
    # a second destroy (or a service deleted by hand) finds nothing to do
    assert appengine.delete_service(PROJECT, "acme-qi-review", session=session, api=admin_api) == "gone"


def test_the_teardown_never_deletes_the_default_service():
    with pytest.raises(ValueError, match="default"):
        appengine.delete_service(PROJECT, "default", session=requests.Session())
