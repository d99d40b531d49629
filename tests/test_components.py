"""Components of the Pulumi program built alone, under Pulumi's mocks: `Buckets` from the settings
and the APIs alone, and one `CloudFunction` from a context that holds only what it reads. A change
inside a component shows here, apart from the whole program (tests/test_infra.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pulumi
import pulumi_gcp as gcp
import pulumiverse_time as time
import pytest

from scripts.program.mocks import Mocks, dev_config, mocked

pytestmark = pytest.mark.unit

PROJECT = "my-factory-project"


def built_alone(make, **config) -> Mocks:
    """Run `make(settings)` under mocks with the example stack's config (and `config` over it)."""
    from infra import config as stack_config

    mocks = mocked(dev_config(**config))

    @pulumi.runtime.test
    def run():
        make(stack_config.load())

    run()
    return mocks


def registered(mocks: Mocks, kind: str) -> dict[str, dict]:
    return {r["name"]: r["inputs"] for r in mocks.resources if r["type"] == kind}


@pytest.mark.parametrize("adopt", [False, True])
def test_buckets_alone_are_private_named_by_prefix_and_keep_the_plants_data(adopt):
    from infra.apis import Apis
    from infra.storage import Buckets

    mocks = built_alone(lambda s: Buckets("buckets", s, Apis("apis", s)), adoptKept=adopt)
    buckets = registered(mocks, "gcp:storage/bucket:Bucket")
    assert sorted(b["name"] for b in buckets.values()) == [
        "acme-qi-inbound",
        "acme-qi-prediction",
        "acme-qi-sources",
        "acme-qi-training",
    ]
    for name, bucket in buckets.items():
        assert bucket["uniformBucketLevelAccess"] is True and bucket["publicAccessPrevention"] == "enforced"
        assert bucket["labels"]["prefix"] == "acme-qi"
        node = mocks.graph[name]
        data = name != "bucket-sources"
        assert bucket["forceDestroy"] is (not data)
        assert node.retained is data, name  # destroy leaves the plant's data (infra/kept.py)
        assert node.imported == (bucket["name"] if data and adopt else ""), name
    assert buckets["bucket-inbound"]["versioning"] == {"enabled": True}
    assert buckets["bucket-prediction"]["versioning"] == {"enabled": True}
    expiring = {
        rule["condition"].get("matchesPrefixes", [None])[0]
        for rule in buckets["bucket-prediction"]["lifecycleRules"]
    }
    assert {"claims/", "redrive/", "heatmaps/"} <= expiring


def test_one_function_alone_runs_as_its_account_after_its_grants_and_the_records_delivery():
    """CloudFunction from a context holding only what it reads: its grants come from the callable
    it is given, it waits for them (and the build's, and the records sink's), and exactly the
    caller it names may invoke it."""
    from infra.functions import CloudFunction
    from infra.iam import Grants

    def make(s):
        apis = SimpleNamespace(service=lambda name: gcp.projects.Service(f"api-{name}", service=name))
        sources = gcp.storage.Bucket("sources", name="acme-qi-sources", location="EU")
        account = gcp.serviceaccount.Account("account-thing", account_id="acme-qi-thing")
        ctx = SimpleNamespace(
            settings=s,
            apis=apis,
            buckets=SimpleNamespace(sources=sources),
            build=SimpleNamespace(
                grants=[],
                builder=gcp.serviceaccount.Account("account-builder", account_id="acme-qi-builder"),
                repository=gcp.artifactregistry.Repository(
                    "repo",
                    project=PROJECT,
                    repository_id="acme-qi-functions",
                    location="europe-west4",
                    format="DOCKER",
                ),
            ),
            records=SimpleNamespace(delivery=time.Sleep("records-delivery", create_duration="1s")),
        )
        parent = pulumi.ComponentResource("test:Alone", "alone")

        def grants(iam: Grants, member) -> None:
            iam.bucket("iam-thing-sources", sources, member, "roles/storage.objectViewer", "reads")

        CloudFunction(
            "move",
            ctx,
            parent,
            entry_point="move_image",
            description="alone",
            account=account,
            env={"PREDICTION_BUCKET": "acme-qi-prediction"},
            grants=grants,
            invoker=("pusher", "serviceAccount:pusher@example.com", "the push calls it"),
            max_instances=3,
            memory="256Mi",
            timeout=60,
        )

    mocks = built_alone(make)
    [function] = registered(mocks, "gcp:cloudfunctionsv2/function:Function").values()
    config = function["serviceConfig"]
    assert config["serviceAccountEmail"] == f"acme-qi-thing@{PROJECT}.iam.gserviceaccount.com"
    assert config["ingressSettings"] == "ALLOW_INTERNAL_ONLY" and config["maxInstanceCount"] == 3
    assert config["environmentVariables"] == {"PREDICTION_BUCKET": "acme-qi-prediction"}
    assert function["buildConfig"]["source"]["storageSource"]["object"].startswith("move-")
    waits_for = {d.rsplit("::", 1)[-1] for d in mocks.graph["function-move"].dependencies}
    assert {"wait-iam-move", "records-delivery"} <= waits_for
    wait = {d.rsplit("::", 1)[-1] for d in mocks.graph["wait-iam-move"].dependencies}
    assert "iam-thing-sources" in wait
    invokers = registered(mocks, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert [(i["member"], i["role"]) for i in invokers.values()] == [
        ("serviceAccount:pusher@example.com", "roles/run.invoker")
    ]
