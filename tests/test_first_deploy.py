"""A fresh-project rehearsal of `pulumi up`, under mocks.

Mocks cannot see GCP's rules, so each rule the first deploy depends on is one check here, with its
source, applied to the whole resource graph the program registers: inputs, explicit `depends_on`
and the resources each input came from (scripts.program.mocks records what the engine would be told).
docs/gcp-rules.md lists the same rules for people.
"""

from __future__ import annotations

import pytest

from scripts.program.mocks import PROJECT_NUMBER, VARIANTS, dev_config, run_program

REGION = "europe-west4"
FUNCTION = "gcp:cloudfunctionsv2/function:Function"
SLEEP = "time:index/sleep:Sleep"


class Graph:
    """The registered resources by name, and what each one waits for."""

    def __init__(self, mocks):
        self.nodes = mocks.graph
        self.inputs = {r["name"]: r["inputs"] for r in mocks.resources}
        self.types = {r["name"]: r["type"] for r in mocks.resources}
        self._by_urn = {node.urn: name for name, node in self.nodes.items()}

    def upstream(self, name: str) -> set[str]:
        """Every resource `name` waits for, directly or through others."""
        seen, todo = set(), [name]
        while todo:
            for urn in self.nodes[todo.pop()].dependencies:
                dep = self._by_urn.get(urn)
                if dep and dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def of_type(self, suffix: str) -> list[str]:
        return [name for name, t in self.types.items() if t.endswith(suffix)]

    def grants(self) -> list[str]:
        return [n for n, t in self.types.items() if t.rsplit(":", 1)[-1].endswith(("IAMMember", "IamMember"))]

    def grants_to(self, member: str) -> list[str]:
        return [n for n in self.grants() if self.inputs[n]["member"] == member]


@pytest.fixture(scope="module")
def graph(day_zero):
    return Graph(day_zero[0])


def _email(account_id: str) -> str:
    return account_id.rsplit("/", 1)[-1]


def test_function_builds_can_read_the_bucket_cloud_functions_copies_their_source_to(graph):
    """Gen2 builds fetch the source from `gcf-v2-sources-<project number>-<region>`, a bucket Google
    owns, not from the bucket the program uploaded to; a custom build account without read there
    fails with "Access to bucket gcf-v2-sources-… denied".
    Source: https://github.com/hashicorp/terraform-provider-google/issues/20571 and
    https://github.com/GoogleCloudPlatform/marketing-analytics-jumpstart/issues/153"""
    bucket = f"gcf-v2-sources-{PROJECT_NUMBER}-{REGION}"
    for function in graph.of_type("Function"):
        builder = "serviceAccount:" + _email(graph.inputs[function]["buildConfig"]["serviceAccount"])
        readable = [
            g
            for g in graph.grants_to(builder)
            if graph.inputs[g]["role"] == "roles/storage.objectViewer"
            and (
                graph.inputs[g].get("bucket") == bucket
                or f'"projects/_/buckets/{bucket}"'
                in (graph.inputs[g].get("condition") or {}).get("expression", "")
            )
        ]
        assert readable, f"{function}'s build account cannot read {bucket}"
        for grant in readable:
            assert grant in graph.upstream(function), f"{function} does not wait for {grant}"


def test_function_images_go_to_a_declared_repository_and_the_builder_writes_only_there(graph):
    """Without `docker_repository` Cloud Functions pushes to `gcf-artifacts`, a repository it creates
    itself, so a writer grant can only be project-wide. Source:
    https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions#BuildConfig"""
    repositories = {
        f"projects/my-factory-project/locations/{REGION}/repositories/{graph.inputs[r]['repositoryId']}": r
        for r in graph.of_type("artifactregistry/repository:Repository")
    }
    for function in graph.of_type("Function"):
        build = graph.inputs[function]["buildConfig"]
        assert build.get("dockerRepository") in repositories, function
        builder = "serviceAccount:" + _email(build["serviceAccount"])
        writes = [
            g for g in graph.grants_to(builder) if graph.inputs[g]["role"] == "roles/artifactregistry.writer"
        ]
        assert writes and all(graph.types[g].endswith("RepositoryIamMember") for g in writes)
    project_writers = [
        g
        for g in graph.of_type("projects/iAMMember:IAMMember")
        if graph.inputs[g]["role"] == "roles/artifactregistry.writer"
    ]
    assert project_writers == []


def _trigger_needs(graph, function: str) -> set[str]:
    f = graph.inputs[function]
    members = {
        "serviceAccount:" + f["serviceConfig"]["serviceAccountEmail"],
        "serviceAccount:" + _email(f["buildConfig"]["serviceAccount"]),
    }
    if "eventTrigger" in f:
        members |= {
            "serviceAccount:" + f["eventTrigger"]["serviceAccountEmail"],
            f"serviceAccount:service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com",
        }
    after_function = {g for g in graph.grants() if function in graph.upstream(g)}
    return {g for m in members for g in graph.grants_to(m)} - after_function


def test_functions_and_their_triggers_wait_for_iam_propagation(graph):
    """New grants and service agents take time to take effect: Eventarc triggers created seconds
    after their grants fail on the first apply in a fresh project. A declared wait between them is
    the cure. Sources: https://github.com/hashicorp/terraform-provider-google/issues/25294,
    https://github.com/hashicorp/terraform-provider-google/issues/14584,
    https://github.com/pulumi/pulumi-gcp/issues/1290"""
    for function in graph.of_type("Function"):
        sleeps = [s for s in graph.upstream(function) if graph.types[s] == SLEEP]
        assert sleeps, f"{function} is created the moment its grants are"
        covered = set().union(*(graph.upstream(s) for s in sleeps))
        assert _trigger_needs(graph, function) <= covered
        if "eventTrigger" in graph.inputs[function]:
            assert "agent-eventarc" in covered


def test_the_push_subscription_waits_for_its_grants_to_propagate(graph):
    """The same propagation rule for push delivery: the pusher's run.invoker and the Pub/Sub agent's
    dead-letter grants must be in effect before deliveries start. Sources as above, and
    https://cloud.google.com/pubsub/docs/handling-failures#grant_forwarding_permissions"""
    [push] = [s for s in graph.of_type("pubsub/subscription:Subscription") if "pushConfig" in graph.inputs[s]]
    pusher = "serviceAccount:" + graph.inputs[push]["pushConfig"]["oidcToken"]["serviceAccountEmail"]
    sleeps = [s for s in graph.upstream(push) if graph.types[s] == SLEEP]
    assert sleeps
    covered = set().union(*(graph.upstream(s) for s in sleeps))
    needed = [g for g in graph.grants_to(pusher) if push not in graph.upstream(g)]
    needed += [
        g
        for g in graph.grants()
        if graph.inputs[g].get("topic", "").endswith("dead-letter")
        and "gcp-sa-pubsub" in graph.inputs[g]["member"]
    ]
    assert needed and set(needed) <= covered


def test_the_schedule_waits_for_its_callers_grant_to_propagate(graph):
    """Cloud Scheduler calls the sweep with an OIDC token for the sweeper; until the sweeper's
    run.invoker is in effect the calls are refused. Sources as above, and
    https://cloud.google.com/scheduler/docs/http-target-auth"""
    [job] = graph.of_type("cloudscheduler/job:Job")
    caller = "serviceAccount:" + graph.inputs[job]["httpTarget"]["oidcToken"]["serviceAccountEmail"]
    invokers = [g for g in graph.grants_to(caller) if graph.inputs[g]["role"] == "roles/run.invoker"]
    sleeps = [s for s in graph.upstream(job) if graph.types[s] == SLEEP]
    assert invokers and sleeps
    assert set(invokers) <= set().union(*(graph.upstream(s) for s in sleeps))


# The API each kind of resource is created through.
API_OF = {
    "gcp:storage/": "storage",
    "gcp:pubsub/": "pubsub",
    "gcp:cloudfunctionsv2/": "cloudfunctions",
    "gcp:cloudrunv2/": "run",
    "gcp:artifactregistry/": "artifactregistry",
    "gcp:appengine/": "appengine",
    "gcp:iap/": "iap",
    "gcp:serviceaccount/": "iam",
    "gcp:projects/iAMCustomRole": "iam",
    "gcp:projects/iAMMember": "cloudresourcemanager",
    "gcp:vertex/": "aiplatform",
    "gcp:cloudscheduler/": "cloudscheduler",
    "gcp:monitoring/": "monitoring",
    "gcp:logging/": "logging",
    "gcp:projects/serviceIdentity": None,
}


def test_every_resource_waits_for_the_api_it_is_created_through(graph):
    """A resource created before its API is enabled fails with SERVICE_DISABLED, and enabling takes
    minutes to propagate. A component's `depends_on` does not reach its children, so each resource
    must wait itself. Source: https://cloud.google.com/service-usage/docs/enable-disable and
    https://www.pulumi.com/docs/iac/concepts/options/dependson/"""
    missing = []
    for name, t in graph.types.items():
        api = next((api for prefix, api in API_OF.items() if t.startswith(prefix)), None)
        if api and f"api-{api}" not in graph.upstream(name):
            missing.append(f"{name} ({t}) does not wait for {api}.googleapis.com")
    assert missing == []


def test_lookups_wait_for_the_apis_they_call(monkeypatch):
    """Data-source lookups run during preview; in a fresh project they fail until their API is on.
    Source: https://github.com/hashicorp/terraform-provider-google/issues/14584"""
    import pulumi_gcp as gcp

    seen = {}

    def spy(module, name):
        original = getattr(module, name)

        def call(*args, opts=None, **kwargs):
            seen[name] = [getattr(d, "_name", None) for d in (opts.depends_on or [])] if opts else []
            return original(*args, opts=opts, **kwargs)

        monkeypatch.setattr(module, name, call)

    spy(gcp.organizations, "get_project_output")
    spy(gcp.storage, "get_project_service_account_output")
    run_program(dev_config())
    assert "api-cloudresourcemanager" in seen["get_project_output"]
    assert "api-storage" in seen["get_project_service_account_output"]


def test_day_zero_deploys_without_any_model(day_zero):
    """A grant on an endpoint or model fails unless it exists, and the training bucket is made by
    this very stack: the first deploy must need no model. Source: Vertex AI's setIamPolicy on an
    endpoint answers NOT_FOUND for a missing endpoint
    (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/setIamPolicy)."""
    graph = Graph(day_zero[0])
    assert not graph.of_type("AiEndpointIamMember")
    assert not [g for g in graph.grants() if "model" in g]
    env = graph.inputs["function-predict"]["serviceConfig"]["environmentVariables"]
    assert env["CLASSIFIER_BACKEND"] == "none" and "ONNX_MODEL" not in env and "VERTEX_ENDPOINT" not in env


@pytest.mark.parametrize(
    "config",
    [
        {"classifierBackend": "onnx", "onnxModel": "gs://acme-qi-training/models/model.onnx"},
        {"classifierBackend": "tflite", "tfliteModel": "gs://acme-qi-training/models/model.tflite"},
    ],
    ids=["onnx", "tflite"],
)
def test_a_model_grant_waits_for_the_bucket_it_names_and_reads_only_the_models_folder(config):
    """The same rule once a model is configured: the grant names our training bucket, so it must
    wait for it, and read only where models live (a TF Lite model's card.json, and a legacy
    export's dict.txt, too)."""
    mocks, _ = run_program(dev_config(**config))
    graph = Graph(mocks)
    grant = graph.inputs["iam-predict-model"]
    assert grant["bucket"] == "acme-qi-training" and "bucket-training" in graph.upstream("iam-predict-model")
    assert grant["condition"]["expression"] == (
        'resource.name.startsWith("projects/_/buckets/acme-qi-training/objects/models/")'
    )
    assert "iam-predict-model" in graph.upstream("function-predict")
    env = graph.inputs["function-predict"]["serviceConfig"]["environmentVariables"]
    assert env["CLASSIFIER_BACKEND"] == config["classifierBackend"]


def test_a_vertex_grant_allows_prediction_only():
    """`roles/aiplatform.user` also allows changing, undeploying and deleting endpoints; prediction
    needs only `aiplatform.endpoints.predict`. Source:
    https://cloud.google.com/vertex-ai/docs/general/access-control#aiplatform.user"""
    mocks, _ = run_program(dev_config(**VARIANTS["vertex"]))
    graph = Graph(mocks)
    grants = graph.of_type("AiEndpointIamMember")
    assert grants, "predict (and the sweep, which runs predict's core) need the endpoint"
    for grant in grants:
        role = graph.inputs[grant]["role"]
        [custom] = [r for r in graph.of_type("IAMCustomRole") if role.endswith(graph.inputs[r]["roleId"])]
        assert graph.inputs[custom]["permissions"] == ["aiplatform.endpoints.predict"]
        assert custom in graph.upstream(grant)


def test_each_app_engine_version_gets_all_traffic_and_old_ones_are_removed(graph):
    """Creating an App Engine version does not move traffic to it (except a service's first), and the
    provider does not migrate it: declare the split. Source: https://github.com/pulumi/pulumi-gcp/issues/718.
    Each service has one version under a fixed id, which the provider updates in place (POST under
    the same id) and never replaces, so `delete_service_on_destroy` deletes the service on destroy
    only (magic-modules StandardAppVersion.yaml and appversion_delete.go.tmpl); the `default`
    service cannot be deleted and keeps it off."""
    versions, splits = graph.of_type("StandardAppVersion"), graph.of_type("EngineSplitTraffic")
    assert len(versions) == len(splits) == 3  # default (serves nothing), review, audit
    for version in versions:
        [split] = [s for s in splits if graph.inputs[s]["service"] == graph.inputs[version]["service"]]
        assert version in graph.upstream(split)
        assert graph.inputs[split]["split"]["allocations"] == {graph.inputs[version]["versionId"]: "1"}
        assert graph.inputs[version].get("noopOnDestroy") is False, "destroy would leave it serving"
        assert graph.inputs[version]["versionId"] == "live"
        is_default = graph.inputs[version]["service"] == "default"
        assert graph.inputs[version].get("deleteServiceOnDestroy") is (not is_default)


def _zip_object(graph, version: str) -> str:
    url = graph.inputs[version]["deployment"]["zip"]["sourceUrl"]
    bucket, name = url.removeprefix("https://storage.googleapis.com/").split("/", 1)
    return f"projects/_/buckets/{bucket}/objects/{name}"


APPSPOT = "serviceAccount:my-factory-project@appspot.gserviceaccount.com"


def _build_grants(graph, version: str, member: str) -> dict[str, str]:
    """The grants `member` needs to build `version`, by what they are for."""
    from tests.test_iam_conditions import admits

    found = {}
    for g in graph.grants_to(member):
        i = graph.inputs[g]
        condition = (i.get("condition") or {}).get("expression", "")
        if i["role"] == "roles/storage.objectViewer" and admits(condition, _zip_object(graph, version)):
            found["source"] = g
        elif i["role"].endswith("_appEngineStaging") and admits(
            condition, "projects/_/buckets/staging.my-factory-project.appspot.com/objects/ae/manifest.json"
        ):
            found["staging"] = g
        elif i["role"] == "roles/logging.logWriter" and "project" in i:
            found["logs"] = g
        elif i["role"] == "roles/artifactregistry.writer" and i.get("repository") == "gae-standard":
            found["images"] = g
    return found


def test_the_build_account_can_build_each_version_which_waits_for_it_and_runtime_accounts_cannot(graph):
    """Issue 21, findings 3 and 4; issue 29, findings 5 and 7. The provider's own example deploys
    versions whose account holds nothing but object read, so that account fetches the zip and does
    not build (magic-modules app_engine_standard_app_version.tf.tmpl); the build ran as the
    application's default account, which the provider's tests saw refused at the staging bucket
    (https://github.com/GoogleCloudPlatform/magic-modules/pull/11326). So the default account can
    build (read the zip, use the staging bucket, write logs, push to gae-standard), each version's
    own account can read its zip and nothing shared, and each version waits until those grants
    have propagated, as the functions do."""
    for version in graph.of_type("StandardAppVersion"):
        runtime = "serviceAccount:" + graph.inputs[version]["serviceAccount"]
        sleeps = [s for s in graph.upstream(version) if graph.types[s] == SLEEP]
        covered = set().union(*(graph.upstream(s) for s in sleeps)) if sleeps else set()
        for member, needed in ((APPSPOT, {"source", "staging", "logs", "images"}), (runtime, {"source"})):
            grants = _build_grants(graph, version, member)
            assert set(grants) == needed, (version, member, grants)
            assert set(grants.values()) <= covered, f"{version} does not wait for {member}'s grants"


def test_no_grant_or_api_depends_on_the_compute_engine_default_account(graph):
    """The Compute Engine default account exists only once the Compute API is enabled, which this
    stack never does; the last program granted it App Engine's build (issue 21, finding 3)."""
    members = {graph.inputs[g]["member"] for g in graph.grants()}
    assert not [m for m in members if "-compute@developer.gserviceaccount.com" in m]
    assert "compute.googleapis.com" not in {
        graph.inputs[a]["service"] for a in graph.of_type("projects/service:Service")
    }


def test_alert_policies_and_the_dashboard_wait_for_the_metrics_they_name(graph):
    """Issue 21, finding 1: Monitoring answers 404 "Cannot find metric(s)" on a policy naming a
    log-based metric for up to about 10 minutes after the metric is made, and the provider retries
    only concurrent edits. Sources: https://github.com/hashicorp/terraform-provider-google/issues/11102,
    https://github.com/GoogleCloudPlatform/cloud-foundation-fabric/pull/3739"""
    metrics = set(graph.of_type("logging/metric:Metric"))
    for resource in graph.of_type("monitoring/alertPolicy:AlertPolicy") + graph.of_type(
        "monitoring/dashboard:Dashboard"
    ):
        sleeps = [s for s in graph.upstream(resource) if graph.types[s] == SLEEP]
        assert sleeps, f"{resource} is created the moment its metrics are"
        assert all(graph.inputs[s]["createDuration"] == "600s" for s in sleeps)
        assert metrics <= set().union(*(graph.upstream(s) for s in sleeps))


def _wait_before(graph, resource: str) -> dict:
    [sleep] = [
        s for s in graph.upstream(resource) if graph.types[s] == SLEEP and s.startswith("wait-iam-predict")
    ]
    return graph.inputs[sleep]


def test_a_grant_added_later_makes_what_needs_it_wait_again(graph):
    """Issue 21, finding 8: a Sleep waits only when it is created, so a model grant added after the
    first deploy got no wait. Each wait names what it waits for in `triggers`, which replaces the
    Sleep when they change (https://www.pulumi.com/registry/packages/time/api-docs/sleep/)."""
    with_model = Graph(
        run_program(dev_config(classifierBackend="onnx", onnxModel="gs://acme-qi-training/models/m.onnx"))[0]
    )
    before, after = _wait_before(graph, "function-predict"), _wait_before(with_model, "function-predict")
    assert before["triggers"]["grants"] != after["triggers"]["grants"]
    assert "iam-predict-model" in with_model.upstream("wait-iam-predict")
    again = Graph(run_program(dev_config())[0])
    assert _wait_before(again, "function-predict")["triggers"] == before["triggers"], (
        "the same grants wait once"
    )


def test_no_two_grants_of_a_stack_are_the_same_binding():
    """Issue 21, finding 9: a member both reviewer and auditor got two resources for one binding, so
    removing them from one list revoked the other. Each service now has its own binding."""
    both = Graph(
        run_program(dev_config(reviewers=["user:sam@example.com"], auditors=["user:sam@example.com"]))[0]
    )
    seen = {}
    for g in both.grants():
        i = both.inputs[g]
        where = tuple(sorted((k, str(v)) for k, v in i.items() if k not in ("member", "role", "condition")))
        key = (i["member"], i["role"], where, str(i.get("condition")))
        assert key not in seen, f"{g} and {seen[key]} are one binding"
        seen[key] = g
    sam = {both.inputs[g]["service"] for g in both.grants_to("user:sam@example.com")}
    assert sam == {"acme-qi-review", "acme-qi-audit"}
    auditing_only = Graph(run_program(dev_config(reviewers=[], auditors=["user:sam@example.com"]))[0])
    [kept] = auditing_only.grants_to("user:sam@example.com")
    [before] = [
        g for g in both.grants_to("user:sam@example.com") if both.inputs[g]["service"] == "acme-qi-audit"
    ]
    assert (kept, auditing_only.inputs[kept]) == (before, both.inputs[before]), (
        "unchanged, so Pulumi keeps it"
    )


def test_nothing_writes_a_record_line_before_the_sink_may_deliver_it(graph):
    """Issue 29, finding 8: the sink's writer needs dataEditor on the dataset, and a line the sink
    cannot write is lost. Everything that writes record lines (the functions and the review
    service) waits for that grant to propagate."""
    [writer] = [g for g in graph.grants() if graph.inputs[g]["role"] == "roles/bigquery.dataEditor"]
    writers = graph.of_type(FUNCTION) + [
        v for v in graph.of_type("StandardAppVersion") if graph.inputs[v]["service"].endswith("-review")
    ]
    assert len(writers) == 4
    for resource in writers:
        sleeps = [s for s in graph.upstream(resource) if graph.types[s] == SLEEP]
        assert any(writer in graph.upstream(s) for s in sleeps), f"{resource} writes before the sink may"


MEMBER_CONFIGS = {
    "punctuation": {
        "reviewers": ["user:jo.smith@example.com", "user:jo-smith@example.com", "user:jo_smith@example.com"],
        "auditors": ["user:jo.smith@example.com", "user:jo-smith@example.com"],
        "reportReaders": ["user:jo.smith@example.com", "user:jo-smith@example.com"],
    },
    "prefixes": {
        "reviewers": [
            "user:qa@example.com",
            "group:qa@example.com",
            "serviceAccount:qa@example.com",
            "domain:example.com",
        ],
        "reportReaders": ["group:qa@example.com", "user:qa@example.com", "serviceAccount:qa@example.com"],
    },
    "reviewers who audit and read": {
        "reviewers": ["user:sam@example.com", "domain:example.com"],
        "auditors": ["user:sam@example.com", "domain:example.com"],
        "reportReaders": ["user:sam@example.com", "domain:example.com"],
    },
    "odd but valid characters": {
        "reviewers": [
            "user:o'neil+qa@example.com",
            "user:o-neil-qa@example.com",
            "group:o.neil.qa@example.com",
        ],
    },
    "every backend and model at once": {
        "classifierBackend": "onnx",
        "onnxModel": "gs://acme-qi-training/models/model.onnx",
        "anomalyModel": "gs://acme-qi-training/models/anomaly/line-1.npz",
        "reportReaders": ["user:quality-lead@example.com"],
        "pubsubAgentTokenCreator": True,
    },
    "existing application": {"appEngine": "existing", "iapClientId": None, "iapClientSecret": None},
    "adopting what a destroy kept": {"adoptKept": True},
}


@pytest.mark.parametrize("name", sorted(MEMBER_CONFIGS))
def test_no_configuration_registers_two_resources_with_one_urn(name):
    """Issue 29, finding 2: members that differ only by punctuation got the same resource name, and
    the engine refuses a duplicate URN at preview. Mocks do not, so run_program checks it as the
    engine would (scripts/program/mocks.py) and raises DuplicateUrn."""
    mocks, _ = run_program(dev_config(**MEMBER_CONFIGS[name]))
    assert mocks.duplicates == [] and len(mocks.urns) > 100


def test_a_renamed_grant_keeps_its_earlier_name_as_an_alias_where_that_name_was_unique():
    """Names now end in a digest of the member; an upgrade must rename a grant in place, not
    replace it (a replaced IAM member deletes the binding its successor re-added)."""
    from infra.iam import member_key

    alone = member_key("iam-reviewer", "user:alice@example.com", ["user:alice@example.com"])
    assert alone.name.startswith("iam-reviewer-user-alice-example-com-")
    assert alone.former == ("iam-reviewer-user-alice-example-com",)
    twins = ["user:jo.smith@example.com", "user:jo-smith@example.com"]
    first, second = (member_key("iam-reviewer", m, twins) for m in twins)
    assert first.name != second.name and first.former == second.former == ()


def test_the_sweep_admits_only_internal_traffic(graph):
    """Issue 21, finding 11: Cloud Scheduler in the same project counts as internal traffic
    (https://cloud.google.com/run/docs/securing/ingress), so the sweep needs no public ingress; a
    person runs the job instead (scripts/sweep.py)."""
    for function in graph.of_type("Function"):
        assert graph.inputs[function]["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_ONLY", function


def test_the_pubsub_agent_mints_push_tokens_only_where_the_project_needs_it(graph):
    """Only projects created before 2021-04-08 need the Pub/Sub service agent to hold Token Creator
    for push authentication. Source:
    https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions"""

    def creators(g):
        return [n for n in g.grants() if g.inputs[n]["role"] == "roles/iam.serviceAccountTokenCreator"]

    assert creators(graph) == []
    old = Graph(run_program(dev_config(pubsubAgentTokenCreator="true"))[0])
    assert [old.inputs[n]["member"] for n in creators(old)] == [
        f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
    ]


def test_the_trigger_and_the_push_subscription_have_their_own_identities(graph):
    """One identity per caller, so that a grant or an audit log line names one path."""
    trigger = graph.inputs["function-predict"]["eventTrigger"]["serviceAccountEmail"]
    [push] = [s for s in graph.of_type("pubsub/subscription:Subscription") if "pushConfig" in graph.inputs[s]]
    assert trigger != graph.inputs[push]["pushConfig"]["oidcToken"]["serviceAccountEmail"]


BROADER_THAN_THE_WORK = {
    "roles/aiplatform.user": "changes, undeploys and deletes endpoints",
    "roles/storage.objectUser": "also updates metadata, ACL-free overwrite, restore",
    "roles/storage.objectAdmin": "manages object IAM",
    "roles/storage.admin": "administers buckets",
    "roles/iam.serviceAccountTokenCreator": "mints access and ID tokens, beyond signBlob",
}


def test_no_predefined_role_is_broader_than_the_work(graph):
    """Least privilege: where a predefined role allows more than the work, a custom role names the
    permissions used. Sources: https://cloud.google.com/iam/docs/roles-permissions/storage,
    https://cloud.google.com/iam/docs/service-account-permissions#token-creator-role"""
    broad = [
        (g, graph.inputs[g]["role"])
        for g in graph.grants()
        if graph.inputs[g]["role"] in BROADER_THAN_THE_WORK
    ]
    assert broad == []
