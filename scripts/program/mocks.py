"""Pulumi mocks that fill in what GCP would compute, for tests and the IAM doc generator.

No CLI, no plugins, no network: `pulumi.runtime.set_mocks` must run before the program does.
Every resource the program registers is recorded in `resources`, with its inputs resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

PROJECT_NUMBER = "123456789012"


@dataclass
class Node:
    """One registered resource and the edges Pulumi was told about: explicit `depends_on`, the
    resources its inputs came from, and its parent."""

    type: str
    name: str
    urn: str
    parent: str
    dependencies: set[str] = field(default_factory=set)  # URNs
    retained: bool = False  # retain_on_delete: destroy leaves it in the project
    read: bool = False  # looked up (`.get`), not declared: destroy never touches it
    imported: str = ""  # the `import_` id: adopted from the project, not created


class Mocks(pulumi.runtime.Mocks):
    def __init__(self, project: str):
        self.project = project
        self.resources: list[dict] = []
        self.graph: dict[str, Node] = {}  # resource name → what Pulumi was told it depends on
        self.invokes: list[dict] = []
        self.urns: set[str] = set()
        self.duplicates: list[str] = []  # URNs registered twice: the engine refuses the program

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = dict(args.inputs)
        self.resources.append({"type": args.typ, "name": args.name, "inputs": inputs})
        state = dict(inputs)
        t = args.typ
        if t == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{self.project}.iam.gserviceaccount.com"
            state.update(
                email=email,
                name=f"projects/{self.project}/serviceAccounts/{email}",
                member=f"serviceAccount:{email}",
            )
            return f"projects/{self.project}/serviceAccounts/{email}", state
        if t == "gcp:cloudfunctionsv2/function:Function":
            name = inputs["name"]
            state["url"] = f"https://{inputs['location']}-{self.project}.cloudfunctions.net/{name}"
            state["serviceConfig"] = {
                **inputs.get("serviceConfig", {}),
                "service": name,
                "uri": f"https://{name}-abc123-ew.a.run.app",
            }
            return f"projects/{self.project}/locations/{inputs['location']}/functions/{name}", state
        if t == "gcp:storage/bucket:Bucket":
            state["url"] = f"gs://{inputs['name']}"
            return inputs["name"], state
        if t == "gcp:pubsub/topic:Topic" or t == "gcp:pubsub/subscription:Subscription":
            kind = "topics" if t.endswith("Topic") else "subscriptions"
            return f"projects/{self.project}/{kind}/{inputs['name']}", state
        if t == "gcp:projects/serviceIdentity:ServiceIdentity":
            agent = {"pubsub.googleapis.com": "gcp-sa-pubsub", "eventarc.googleapis.com": "gcp-sa-eventarc"}
            state["email"] = f"service-{PROJECT_NUMBER}@{agent[inputs['service']]}.iam.gserviceaccount.com"
            state["member"] = "serviceAccount:" + state["email"]
        if t == "gcp:appengine/application:Application":
            state.update(
                app_id=self.project, appId=self.project, defaultHostname=f"{self.project}.ew.r.appspot.com"
            )
            return self.project, state
        if t == "gcp:logging/projectSink:ProjectSink":
            state["writerIdentity"] = (
                f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"
            )
        if t == "gcp:bigquery/dataset:Dataset":
            return f"projects/{inputs['project']}/datasets/{inputs['datasetId']}", state
        if t == "gcp:cloudscheduler/job:Job":
            return f"projects/{inputs['project']}/locations/{inputs['region']}/jobs/{inputs['name']}", state
        if t == "gcp:projects/iAMCustomRole:IAMCustomRole":
            state["name"] = f"projects/{inputs['project']}/roles/{inputs['roleId']}"
            return state["name"], state
        if t == "gcp:artifactregistry/repository:Repository":
            location = f"projects/{inputs['project']}/locations/{inputs['location']}"
            repo = f"{location}/repositories/{inputs['repositoryId']}"
            state["name"] = inputs["repositoryId"]
            return repo, state
        if t == "gcp:storage/bucketObject:BucketObject":
            state["mediaLink"] = f"https://storage.googleapis.com/{inputs['bucket']}/{inputs['name']}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        gcs_agent = f"service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
        answers = {
            "gcp:organizations/getProject:getProject": {
                "number": PROJECT_NUMBER,
                "projectId": self.project,
                "name": self.project,
            },
            "gcp:storage/getProjectServiceAccount:getProjectServiceAccount": {
                "emailAddress": gcs_agent,
                "member": "serviceAccount:" + gcs_agent,
            },
            "gcp:appengine/getDefaultServiceAccount:getDefaultServiceAccount": {
                "email": f"{self.project}@appspot.gserviceaccount.com",
                "member": f"serviceAccount:{self.project}@appspot.gserviceaccount.com",
            },
        }
        return answers.get(args.token, {})


def dev_config(path: str = "Pulumi.dev.yaml", **overrides: object) -> dict[str, str]:
    """The example stack's config as Pulumi passes it to a program, plus a stand-in secret."""
    import json

    import yaml

    with open(path) as file:
        raw = yaml.safe_load(file)["config"]
    raw.setdefault("quality-inspection:iapClientSecret", "stand-in-secret")
    raw.update({(k if ":" in k else f"quality-inspection:{k}"): v for k, v in overrides.items()})
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items() if v is not None}


LEDGER_FIELDS = ("principal", "role", "resource", "why", "condition", "urn", "kept", "used_by", "untraced")


def mocked(config: dict[str, str]) -> Mocks:
    """Pulumi's mocks, set up for a program (or one component of it) to run under `config`, with
    the graph the engine would be told recorded."""
    mocks = Mocks(config.get("gcp:project", "project"))
    _record_graph(mocks)
    pulumi.runtime.set_mocks(mocks, preview=False)
    pulumi.runtime.set_all_config(config, ["quality-inspection:iapClientSecret"])
    return mocks


def run_program(config: dict[str, str]) -> tuple[Mocks, list[dict]]:
    """Run the whole program under mocks; returns the mocks (with every resource) and the resolved ledger."""
    from infra import config as stack_config
    from infra import program

    mocks = mocked(config)
    ledger: list[dict] = []

    @pulumi.runtime.test
    def build():
        stack = program.build(stack_config.load())
        rows = [
            pulumi.Output.all(
                g.principal,
                g.role,
                g.target,
                g.why,
                g.condition,
                g.resource.urn,
                g.kept,
                g.used_by,
                g.untraced,
            ).apply(lambda v: dict(zip(LEDGER_FIELDS, v, strict=True)))
            for g in stack.grants()
        ]
        return pulumi.Output.all(*rows).apply(ledger.extend)

    build()
    if mocks.duplicates:
        # Mocks are not the engine: it refuses a second resource with the same URN, at preview.
        raise DuplicateUrn(f"duplicate resource URN(s): {', '.join(mocks.duplicates)}")
    return mocks, ledger


class DuplicateUrn(Exception):
    """What `pulumi preview` answers when a program registers two resources with the same URN."""


def _record_graph(mocks: Mocks) -> None:
    """Keep what the engine would see of each registration: its dependencies, not just its inputs."""
    original = pulumi_mocks.MockMonitor.RegisterResource
    if getattr(original, "records_graph", False):
        original = original.__wrapped__
    original_read = pulumi_mocks.MockMonitor.ReadResource
    if getattr(original_read, "records_graph", False):
        original_read = original_read.__wrapped__

    def read(monitor, request):
        response = original_read(monitor, request)
        current = getattr(pulumi_mocks.MockMonitor, "graph_sink", None)
        if current is not None:
            deps = set(request.dependencies)
            current.graph[request.name] = Node(
                request.type, request.name, response.urn, request.parent, deps, read=True
            )
        return response

    def register(monitor, request):
        response = original(monitor, request)
        current = getattr(pulumi_mocks.MockMonitor, "graph_sink", None)
        if current is not None:
            if response.urn in current.urns:
                current.duplicates.append(response.urn)
            current.urns.add(response.urn)
            deps = set(request.dependencies)
            for property_deps in request.propertyDependencies.values():
                deps.update(property_deps.urns)
            current.graph[request.name] = Node(
                request.type,
                request.name,
                response.urn,
                request.parent,
                deps,
                bool(request.retainOnDelete),
                imported=request.importId,
            )
        return response

    register.records_graph = read.records_graph = True
    register.__wrapped__, read.__wrapped__ = original, original_read
    pulumi_mocks.MockMonitor.RegisterResource = register
    pulumi_mocks.MockMonitor.ReadResource = read
    pulumi_mocks.MockMonitor.graph_sink = mocks


# The example stack with each setting that adds grants: every grant the program can declare.
MODEL_ONNX = "gs://acme-qi-training/models/model.onnx"
MODEL_TFLITE = "gs://acme-qi-training/models/edge/model.tflite"
MODEL_ANOMALY = "gs://acme-qi-training/models/anomaly/line-1.npz"
VERTEX_ENDPOINT = "1234567890123456789"
VERTEX_GUARD = "gs://acme-qi-training/models/vertex/endpoint.guard.json"  # an endpoint has no folder
VARIANTS: dict[str, dict[str, object]] = {
    "day zero": {},
    "onnx": {"classifierBackend": "onnx", "onnxModel": MODEL_ONNX},
    "onnx and anomaly": {"classifierBackend": "onnx", "onnxModel": MODEL_ONNX, "anomalyModel": MODEL_ANOMALY},
    "tflite": {"classifierBackend": "tflite", "tfliteModel": MODEL_TFLITE},
    "vertex": {
        "classifierBackend": "vertex",
        "vertexEndpointId": VERTEX_ENDPOINT,
        "inputGuard": VERTEX_GUARD,
    },
    "report readers": {"reportReaders": ["user:quality-lead@example.com"]},
    "old Pub/Sub agent": {"pubsubAgentTokenCreator": True},
}
