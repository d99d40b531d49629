"""The Pulumi program under mocks: no CLI, no plugins, no network. Each test pins one invariant."""

from __future__ import annotations

import json

import pytest

from scripts.program.mocks import PROJECT_NUMBER, VARIANTS, VERTEX_GUARD, dev_config, run_program

PROJECT = "my-factory-project"
SA = f"@{PROJECT}.iam.gserviceaccount.com"
IAM_TYPES = ("IAMMember", "IamMember")
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the Pulumi wire format marks a secret value


@pytest.fixture(scope="module")
def program(day_zero):
    mocks, ledger = day_zero
    return mocks.resources, ledger


def of_type(resources, suffix: str) -> list[dict]:
    return [r for r in resources if r["type"].endswith(suffix)]


def one(resources, name: str) -> dict:
    [found] = [r for r in resources if r["name"] == name]
    return found["inputs"]


def iam(resources) -> list[dict]:
    return [r for r in resources if r["type"].split(":")[-1].endswith(IAM_TYPES)]


# --- policy checks (the same rules the CrossGuard pack in policy/ applies) ----------------------------


def test_the_program_breaks_no_policy_rule(program):
    from policy import rules

    resources, _ = program
    broken = {r["name"]: rules.violations(r["type"], r["inputs"]) for r in resources}
    assert {name: found for name, found in broken.items() if found} == {}
    assert rules.shared_accounts((r["type"], r["name"], r["inputs"]) for r in resources) == []


PROJECT_IAM, BUCKET_IAM = "gcp:projects/iAMMember:IAMMember", "gcp:storage/bucketIAMMember:BucketIAMMember"
TOPIC_IAM, BUCKET = "gcp:pubsub/topicIAMMember:TopicIAMMember", "gcp:storage/bucket:Bucket"
FUNCTION, APP = (
    "gcp:cloudfunctionsv2/function:Function",
    "gcp:appengine/standardAppVersion:StandardAppVersion",
)
BUILD = {"buildConfig": {"serviceAccount": "builder@p.iam.gserviceaccount.com", "dockerRepository": "r"}}
DEFAULT_COMPUTE = "1-compute@developer.gserviceaccount.com"


@pytest.mark.parametrize(
    ("resource_type", "props", "complaint"),
    [
        (PROJECT_IAM, {"role": "roles/editor", "member": "user:a@x.com"}, "primitive"),
        (BUCKET_IAM, {"role": "roles/storage.objectViewer", "member": "allUsers"}, "allUsers"),
        (TOPIC_IAM, {"role": "roles/pubsub.publisher", "member": "allAuthenticatedUsers"}, "allUsers"),
        (PROJECT_IAM, {"role": "roles/storage.admin", "member": "user:a@x.com"}, "project-level"),
        (
            "gcp:projects/iAMBinding:IAMBinding",
            {"role": "roles/run.invoker", "members": ["user:a@x.com"]},
            "authoritative",
        ),
        ("gcp:serviceaccount/key:Key", {"serviceAccountId": "x"}, "keys are forbidden"),
        (BUCKET, {"publicAccessPrevention": "enforced"}, "uniform"),
        (BUCKET, {"uniformBucketLevelAccess": True, "publicAccessPrevention": "inherited"}, "public access"),
        (FUNCTION, {"serviceConfig": {}, **BUILD}, "default compute"),
        (FUNCTION, {"serviceConfig": {"serviceAccountEmail": DEFAULT_COMPUTE}, **BUILD}, "default service"),
        (APP, {"serviceAccount": "p@appspot.gserviceaccount.com"}, "default service account"),
        (PROJECT_IAM, {"role": "roles/storage.objectViewer", "member": "user:a@x.com"}, "condition"),
        (
            PROJECT_IAM,
            {"role": "roles/artifactregistry.writer", "member": "user:a@x.com"},
            "grant writer on it",
        ),
        (
            PROJECT_IAM,
            {"role": "roles/artifactregistry.createOnPushWriter", "member": "user:a@x.com"},
            "declare the repository",
        ),
        (BUCKET_IAM, {"role": "roles/storage.objectUser", "member": "user:a@x.com"}, "custom role"),
        (
            "gcp:vertex/aiEndpointIamMember:AiEndpointIamMember",
            {"role": "roles/aiplatform.user", "member": "user:a@x.com"},
            "aiplatform.endpoints.predict",
        ),
        (
            "gcp:serviceaccount/iAMMember:IAMMember",
            {
                "role": "roles/iam.serviceAccountTokenCreator",
                "member": "serviceAccount:x@p.iam.gserviceaccount.com",
            },
            "signBlob",
        ),
        (
            FUNCTION,
            {
                "serviceConfig": {"serviceAccountEmail": "f@p.iam.gserviceaccount.com"},
                "buildConfig": {"serviceAccount": "b@p.iam.gserviceaccount.com"},
            },
            "docker_repository",
        ),
        (APP, {"serviceAccount": "r@p.iam.gserviceaccount.com", "noopOnDestroy": True}, "pile up"),
    ],
)
def test_each_policy_rule_catches_what_it_forbids(resource_type, props, complaint):
    from policy import rules

    assert any(complaint in message for message in rules.violations(resource_type, props))


def test_components_sharing_an_account_are_caught():
    from policy import rules

    function = "gcp:cloudfunctionsv2/function:Function"
    same = {"serviceConfig": {"serviceAccountEmail": "x@p.iam.gserviceaccount.com"}}
    assert rules.shared_accounts([(function, "a", same), (function, "b", same)])


def test_every_bucket_is_uniform_private_labelled_and_prefixed(program):
    resources, _ = program
    buckets = of_type(resources, "storage/bucket:Bucket")
    assert sorted(b["inputs"]["name"] for b in buckets) == [
        "acme-qi-inbound",
        "acme-qi-prediction",
        "acme-qi-sources",
        "acme-qi-training",
    ]
    for bucket in buckets:
        inputs = bucket["inputs"]
        assert inputs["uniformBucketLevelAccess"] is True
        assert inputs["publicAccessPrevention"] == "enforced"
        assert inputs["labels"]["app"] == "quality-inspection"
        assert inputs["location"] == "europe-west4"


def test_project_level_storage_roles_are_limited_to_one_bucket(program):
    resources, _ = program
    for grant in of_type(resources, "projects/iAMMember:IAMMember"):
        if grant["inputs"]["role"].startswith("roles/storage."):
            assert "resource.name ==" in grant["inputs"]["condition"]["expression"], grant["name"]


def test_no_service_account_keys(program):
    resources, _ = program
    assert not [r for r in resources if r["type"].startswith("gcp:serviceaccount/key")]


def test_functions_use_their_own_accounts_and_never_a_default_one(program):
    resources, _ = program
    accounts = set()
    for name in ("function-predict", "function-move"):
        function = one(resources, name)
        email = function["serviceConfig"]["serviceAccountEmail"]
        assert email.endswith(SA) and "compute@developer" not in email and "appspot" not in email
        assert function["buildConfig"]["serviceAccount"].endswith(
            f"{PROJECT}-builder{SA}".replace(PROJECT + "-", "acme-qi-")
        )
        accounts.add(email)
    review = one(resources, "review-version")["serviceAccount"]
    audit = one(resources, "audit-version")["serviceAccount"]
    default = one(resources, "appengine-default-version")["serviceAccount"]
    trigger = one(resources, "function-predict")["eventTrigger"]["serviceAccountEmail"]
    accounts |= {review, audit, default, trigger}
    assert accounts == {
        f"acme-qi-{c}{SA}" for c in ("predict", "move", "review", "audit", "gae-default", "trigger")
    }


# --- every grant, exactly ---------------------------------------------------------------------------


def test_the_iam_grants_are_exactly_these(program):
    resources, ledger = program
    pubsub_agent = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
    gcs_agent = f"serviceAccount:service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"

    def sa(c):
        return f"serviceAccount:acme-qi-{c}{SA}"

    role = f"projects/{PROJECT}/roles/acme_qi_"
    appspot = f"serviceAccount:{PROJECT}@appspot.gserviceaccount.com"
    logging_agent = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"
    # What an App Engine build needs, for the account it runs as (infra/project.py); a version's own
    # account reads its zip, and holds no build rights (issue 29).
    app_engine_builds = {
        (appspot, role + "appEngineStaging", f"project {PROJECT}"),
        (appspot, "roles/logging.logWriter", f"project {PROJECT}"),
        (appspot, "roles/artifactregistry.writer", "Artifact Registry repository gae-standard"),
    } | {
        (member, "roles/storage.objectViewer", "bucket acme-qi-sources")
        for member in (appspot, sa("review"), sa("audit"), sa("gae-default"))
    }
    expected = app_engine_builds | {
        (sa("predict"), role + "objectTake", "bucket acme-qi-inbound"),
        (sa("predict"), role + "objectPlace", "bucket acme-qi-prediction"),
        (sa("predict"), "roles/pubsub.publisher", "topic acme-qi-predictions"),
        (sa("move"), role + "objectTake", "bucket acme-qi-inbound"),
        (sa("move"), role + "objectPlace", "bucket acme-qi-prediction"),
        (sa("move"), role + "claimAdvance", "bucket acme-qi-prediction"),
        (sa("predict"), role + "claimAdvance", "bucket acme-qi-prediction"),
        (sa("sweeper"), role + "claimAdvance", "bucket acme-qi-prediction"),
        (sa("move"), "roles/pubsub.publisher", "topic acme-qi-predictions-dead-letter"),
        (sa("review"), role + "objectReview", "bucket acme-qi-prediction"),
        (sa("review"), role + "signBlobOnly", f"service account acme-qi-review{SA}"),
        (sa("trigger"), "roles/eventarc.eventReceiver", f"project {PROJECT}"),
        (sa("trigger"), "roles/run.invoker", "Cloud Run service acme-qi-predict"),
        (sa("pusher"), "roles/run.invoker", "Cloud Run service acme-qi-move"),
        (sa("sweeper"), role + "objectRedrive", "bucket acme-qi-inbound"),
        (sa("sweeper"), role + "objectQueue", "bucket acme-qi-prediction"),
        (sa("sweeper"), "roles/pubsub.publisher", "topic acme-qi-predictions"),
        (sa("sweeper"), role + "messagesConsume", "subscription acme-qi-predictions-dead-letter-held"),
        (sa("sweeper"), "roles/run.invoker", "Cloud Run service acme-qi-sweep"),
        (sa("builder"), "roles/storage.objectViewer", f"project {PROJECT}"),
        (sa("builder"), "roles/logging.logWriter", f"project {PROJECT}"),
        (sa("builder"), "roles/artifactregistry.writer", "Artifact Registry repository acme-qi-functions"),
        (gcs_agent, "roles/pubsub.publisher", f"project {PROJECT}"),
        (pubsub_agent, "roles/pubsub.publisher", "topic acme-qi-predictions-dead-letter"),
        (pubsub_agent, "roles/pubsub.subscriber", "subscription acme-qi-predictions-to-move"),
        (logging_agent, "roles/bigquery.dataEditor", "BigQuery dataset acme_qi_records"),
        (sa("audit"), "roles/bigquery.dataViewer", "BigQuery dataset acme_qi_records"),
        (sa("audit"), role + "queryJobs", f"project {PROJECT}"),
        # the audit view shows the decided photo, by a URL it signs as itself
        (sa("audit"), role + "objectRead", "bucket acme-qi-prediction"),
        (sa("audit"), role + "signBlobOnly", f"service account acme-qi-audit{SA}"),
        (
            "user:alice@example.com",
            "roles/iap.httpsResourceAccessor",
            "App Engine service acme-qi-review (IAP)",
        ),
        (
            "group:quality-reviewers@example.com",
            "roles/iap.httpsResourceAccessor",
            "App Engine service acme-qi-review (IAP)",
        ),
        (
            "user:auditor@example.com",
            "roles/iap.httpsResourceAccessor",
            "App Engine service acme-qi-audit (IAP)",
        ),
    }
    assert {(g["principal"], g["role"], g["resource"]) for g in ledger} == expected
    assert len(ledger) == len(expected)
    # every IAM resource the program creates is in the ledger, with a reason
    assert len(iam(resources)) == len(ledger)
    assert sorted((r["inputs"]["member"], r["inputs"]["role"]) for r in iam(resources)) == sorted(
        (g["principal"], g["role"]) for g in ledger
    )
    assert all(len(g["why"]) > 20 for g in ledger)


def test_iam_doc_is_current():
    from pathlib import Path

    from scripts.iam_doc import render

    assert Path("docs/iam.md").read_text() == render(), "docs/iam.md is stale: run `make docs`"


# --- key properties ---------------------------------------------------------------------------------


def test_predict_is_triggered_by_finalized_objects_in_inbound(program):
    resources, _ = program
    f = one(resources, "function-predict")
    assert f["buildConfig"]["runtime"] == "python312"
    assert f["buildConfig"]["entryPoint"] == "predict_image"
    trigger = f["eventTrigger"]
    assert trigger["eventType"] == "google.cloud.storage.object.v1.finalized"
    assert trigger["eventFilters"] == [{"attribute": "bucket", "value": "acme-qi-inbound"}]
    assert trigger["retryPolicy"] == "RETRY_POLICY_RETRY"
    assert trigger["triggerRegion"] == "europe-west4"
    service = f["serviceConfig"]
    assert service["environmentVariables"] == {
        "PREDICTIONS_TOPIC": f"projects/{PROJECT}/topics/acme-qi-predictions",
        "PREDICTION_BUCKET": "acme-qi-prediction",
        "INBOUND_BUCKET": "acme-qi-inbound",  # the only bucket predict acts on (issue 30)
        "CLASSIFIER_BACKEND": "none",
        "PREDICTION_THRESHOLD": "0.9",  # which images' anomaly maps to keep: those move will not pass
        "LABEL_MAP": "Defect=defect,Ok=ok",
        "LINE_SEGMENT": "1",
    }
    assert (service["maxInstanceCount"], service["availableMemory"], service["timeoutSeconds"]) == (
        10,
        "1Gi",
        120,
    )
    assert service["ingressSettings"] == "ALLOW_INTERNAL_ONLY"


def test_move_is_pushed_by_our_own_subscription_with_a_dead_letter_topic(program):
    resources, _ = program
    f = one(resources, "function-move")
    assert "eventTrigger" not in f
    assert f["buildConfig"]["runtime"] == "python312" and f["buildConfig"]["entryPoint"] == "move_image"
    assert f["serviceConfig"]["environmentVariables"] == {
        "PREDICTION_BUCKET": "acme-qi-prediction",
        "PREDICTION_THRESHOLD": "0.9",
        "INBOUND_BUCKET": "acme-qi-inbound",
        "LINE_SEGMENT": "1",
        "DEAD_LETTER_TOPIC": f"projects/{PROJECT}/topics/acme-qi-predictions-dead-letter",
    }
    assert f["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_ONLY"
    push = one(resources, "subscription-predictions-to-move")
    move_url = (
        "https://acme-qi-move-abc123-ew.a.run.app"  # the Cloud Run URI, which Cloud Run checks as audience
    )
    assert push["topic"] == f"projects/{PROJECT}/topics/acme-qi-predictions"
    assert push["pushConfig"]["pushEndpoint"] == move_url
    assert push["pushConfig"]["oidcToken"] == {
        "serviceAccountEmail": f"acme-qi-pusher{SA}",
        "audience": move_url,
    }
    assert push["deadLetterPolicy"] == {
        "deadLetterTopic": f"projects/{PROJECT}/topics/acme-qi-predictions-dead-letter",
        "maxDeliveryAttempts": 5,
    }
    assert push["retryPolicy"] == {"minimumBackoff": "10s", "maximumBackoff": "600s"}
    held = one(resources, "subscription-dead-letter-held")
    assert held["topic"] == f"projects/{PROJECT}/topics/acme-qi-predictions-dead-letter"
    assert held["messageRetentionDuration"] == "604800s" and held["expirationPolicy"] == {"ttl": ""}


def test_prediction_bucket_keeps_versions_and_the_live_sources_stay(program):
    """App Engine re-posts a version's zip on every version update, so an age rule on the sources
    bucket breaks a config-only change after that many days (issue 21, finding 7). Pulumi deletes
    a zip itself once no resource names it; the zips are rebuilt from the repository, so destroy
    may take them with the bucket. Data buckets are never force-destroyed."""
    resources, _ = program
    prediction = one(resources, "bucket-prediction")
    assert prediction["versioning"] == {"enabled": True}
    assert prediction["lifecycleRules"][0]["condition"]["daysSinceNoncurrentTime"] == 30
    sources = one(resources, "bucket-sources")
    assert not sources.get("lifecycleRules") and sources["forceDestroy"] is True
    for data in ("bucket-inbound", "bucket-prediction", "bucket-training"):
        assert one(resources, data)["forceDestroy"] is False


def test_apis_are_enabled_and_kept_on_destroy(program):
    resources, _ = program
    services = of_type(resources, "projects/service:Service")
    names = {s["inputs"]["service"] for s in services}
    for api in (
        "storage",
        "pubsub",
        "run",
        "cloudfunctions",
        "cloudbuild",
        "artifactregistry",
        "eventarc",
        "appengine",
        "iap",
        "aiplatform",
        "iamcredentials",
    ):
        assert f"{api}.googleapis.com" in names
    assert all(s["inputs"]["disableOnDestroy"] is False for s in services)


def test_review_app_runs_behind_iap_with_its_own_account(program):
    resources, _ = program
    app = one(resources, "appengine-application")
    assert app["locationId"] == "europe-west"
    assert SECRET_SIG in app["iap"], (
        "the IAP block carries the client secret, so it must stay a Pulumi secret"
    )
    iap = app["iap"]["value"]
    assert iap["enabled"] is True
    assert iap["oauth2ClientId"].endswith(".apps.googleusercontent.com")
    assert iap["oauth2ClientSecret"] == "stand-in-secret"
    review, audit = one(resources, "review-version"), one(resources, "audit-version")
    for version in (review, audit):
        assert version["runtime"] == "python313"
        assert (
            version["entrypoint"]["shell"].startswith("gunicorn ")
            and "main:app" in version["entrypoint"]["shell"]
        )
        assert version["deployment"]["zip"]["sourceUrl"].startswith(
            "https://storage.googleapis.com/acme-qi-sources/appengine-review-app-"
        )
    assert (review["service"], audit["service"]) == ("acme-qi-review", "acme-qi-audit")
    common = {
        "PREDICTION_BUCKET": "acme-qi-prediction",
        "REVIEW_AUTH": "iap",
        "IAP_AUDIENCE": f"/projects/{PROJECT_NUMBER}/apps/{PROJECT}",
        "LINE_SEGMENT": "1",
    }
    # A group is IAP's to check, so with one among the reviewers the app leaves the list to IAP.
    assert review["envVariables"] == {**common, "ROLE": "review", "ALLOWED_REVIEWERS": "*"}
    assert audit["envVariables"] == {
        **common,
        "ROLE": "audit",
        "ALLOWED_AUDITORS": "auditor@example.com",
        "RECORDS": f"bigquery:{PROJECT}.acme_qi_records",
    }
    admitted = {
        (r["inputs"]["service"], r["inputs"]["member"])
        for r in of_type(resources, "AppEngineServiceIamMember")
    }
    assert admitted == {
        ("acme-qi-review", "user:alice@example.com"),
        ("acme-qi-review", "group:quality-reviewers@example.com"),
        ("acme-qi-audit", "user:auditor@example.com"),
    }
    assert not of_type(resources, "WebTypeAppEngingIamMember"), "no one may pass IAP to the whole application"


def test_onnx_backend_swaps_the_vertex_grant_for_the_model_bucket():
    onnx = dev_config(classifierBackend="onnx", onnxModel="gs://acme-qi-training/models/model.onnx")
    resources = run_program(onnx)[0].resources
    f = one(resources, "function-predict")["serviceConfig"]["environmentVariables"]
    assert f["CLASSIFIER_BACKEND"] == "onnx" and f["ONNX_MODEL"] == "gs://acme-qi-training/models/model.onnx"
    assert "VERTEX_ENDPOINT" not in f
    roles = {(r["inputs"]["role"], r["inputs"].get("bucket")) for r in iam(resources)}
    assert (f"projects/{PROJECT}/roles/acme_qi_objectRead", "acme-qi-training") in roles
    # a model in a bucket the stack does not declare may be another project's: a predefined role
    elsewhere = dev_config(classifierBackend="onnx", onnxModel="gs://models-of-the-plant/cast/model.onnx")
    roles = {
        (r["inputs"]["role"], r["inputs"].get("bucket")) for r in iam(run_program(elsewhere)[0].resources)
    }
    assert ("roles/storage.objectViewer", "models-of-the-plant") in roles
    switched = dev_config(**VARIANTS["vertex"])
    f = one(run_program(switched)[0].resources, "function-predict")["serviceConfig"]["environmentVariables"]
    assert f["VERTEX_ENDPOINT"] == f"projects/{PROJECT}/locations/europe-west4/endpoints/1234567890123456789"
    assert not of_type(resources, "AiEndpointIamMember")


def test_an_anomaly_model_beside_a_classifier_is_granted_shipped_and_named_to_predict_and_the_sweep():
    """Issue 25: anomalyModel next to tfliteModel. Predict and the sweep read both models, each from
    its own folder only (their runtimes: tests/test_packaging.py). Alone, it is the anomaly backend."""
    config = dev_config(
        classifierBackend="tflite",
        tfliteModel="gs://acme-qi-training/models/edge/model.tflite",
        anomalyModel="gs://acme-qi-training/models/anomaly/line-1.npz",
    )
    resources = run_program(config)[0].resources
    for function in ("function-predict", "function-sweep"):
        env = one(resources, function)["serviceConfig"]["environmentVariables"]
        assert env["TFLITE_MODEL"] == "gs://acme-qi-training/models/edge/model.tflite"
        assert env["ANOMALY_MODEL"] == "gs://acme-qi-training/models/anomaly/line-1.npz"
        assert env["PREDICTION_THRESHOLD"] == "0.9"  # predict keeps maps only of what goes to a person
    folders = {
        r["inputs"]["condition"]["title"]
        for r in iam(resources)
        if r["inputs"].get("member", "").startswith("serviceAccount:acme-qi-predict")
        and r["inputs"].get("condition")
        and r["inputs"]["condition"]["title"].startswith("only models")
    }
    assert folders == {"only models/edge", "only models/anomaly"}
    alone = dev_config(anomalyModel="gs://acme-qi-training/models/anomaly/line-1.npz")
    import pulumi

    from infra import config as stack_config

    pulumi.runtime.set_all_config(alone, [])
    with pytest.raises(stack_config.ConfigError, match="classifierBackend anomaly"):
        stack_config.load()


# --- config validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key", "hint"),
    [
        ({"prefix": "Bad_Prefix"}, "quality-inspection:prefix", "pulumi config set prefix"),
        ({"predictionThreshold": "0.5"}, "quality-inspection:predictionThreshold", "(0.5, 1]"),
        ({"predictionThreshold": "lots"}, "quality-inspection:predictionThreshold", "(0.5, 1]"),
        ({"classifierBackend": "automl"}, "quality-inspection:classifierBackend", "none, vertex, onnx"),
        (
            {"classifierBackend": "vertex", "vertexEndpointId": "my-endpoint"},
            "quality-inspection:vertexEndpointId",
            "train_vertex",
        ),
        ({"classifierBackend": "onnx"}, "quality-inspection:onnxModel", "gs://"),
        ({"pubsubAgentTokenCreator": "yes"}, "quality-inspection:pubsubAgentTokenCreator", "true or false"),
        ({"appEngineBuildAccount": "me"}, "quality-inspection:appEngineBuildAccount", "service account"),
        ({"iamPropagationWait": "2h"}, "quality-inspection:iamPropagationWait", "0s to 600s"),
        ({"reviewers": ["alice@example.com"]}, "quality-inspection:reviewers", "user:"),
        ({"appEngineLocation": "Europe West"}, "quality-inspection:appEngineLocation", "europe-west"),
        ({"iapClientId": "abc"}, "quality-inspection:iapClientId", "manual step"),
        ({"iapClientSecret": None}, "quality-inspection:iapClientSecret", "--secret"),
        ({"labelMap": "Defect=broken"}, "quality-inspection:labelMap", "Defect=defect"),
        ({"retentionDays": "0"}, "quality-inspection:retentionDays", "[1, 365]"),
        ({"gcp:project": None}, "gcp:project", "pulumi config set gcp:project"),
        (
            {"reviewers": ["user:Jo@example.com", "user:jo@example.com"]},
            "quality-inspection:reviewers",
            "names one member twice",
        ),
        ({"adoptKept": "yes"}, "quality-inspection:adoptKept", "true or false"),
        # an endpoint has no folder to find its input guard beside: say where it is, or none
        (
            {**VARIANTS["vertex"], "inputGuard": None},
            "quality-inspection:inputGuard",
            "scripts.training.guard",
        ),
        ({**VARIANTS["onnx"], "inputGuard": "guard.json"}, "quality-inspection:inputGuard", "gs://"),
    ],
)
def test_bad_config_stops_with_the_key_and_the_fix(change, key, hint):
    import pulumi

    from infra import config

    pulumi.runtime.set_all_config(dev_config(**change), [])
    with pytest.raises(config.ConfigError) as error:
        config.load()
    assert key in str(error.value) and hint in str(error.value)


def test_reviewers_may_be_a_comma_separated_string():
    import pulumi

    from infra import config

    pulumi.runtime.set_all_config(dev_config(reviewers="user:a@x.com, domain:x.com"), [])
    assert config.load().reviewers == ("user:a@x.com", "domain:x.com")


def test_the_sweep_runs_on_a_schedule_with_its_own_identity(program):
    """Cloud Scheduler calls the sweep with an OIDC token for the sweeper, who alone may invoke it."""
    resources, _ = program
    job = one(resources, "scheduler-redrive")
    sweep = one(resources, "function-sweep")
    uri = "https://acme-qi-sweep-abc123-ew.a.run.app"
    assert job["schedule"] == "*/10 * * * *" and job["region"] == "europe-west4"
    assert job["httpTarget"]["oidcToken"] == {"serviceAccountEmail": f"acme-qi-sweeper{SA}", "audience": uri}
    assert job["httpTarget"]["uri"] == uri and job["httpTarget"]["httpMethod"] == "POST"
    env = sweep["serviceConfig"]["environmentVariables"]
    assert env["REDRIVE_AFTER_SECONDS"] == "900" and env["INBOUND_BUCKET"] == "acme-qi-inbound"
    assert (
        env["HELD_SUBSCRIPTION"] == f"projects/{PROJECT}/subscriptions/acme-qi-predictions-dead-letter-held"
    )
    assert sweep["serviceConfig"]["serviceAccountEmail"] == f"acme-qi-sweeper{SA}"
    invokers = [r["inputs"]["member"] for r in iam(resources) if r["inputs"].get("name") == "acme-qi-sweep"]
    assert invokers == [f"serviceAccount:acme-qi-sweeper{SA}"]


def test_inbound_keeps_every_generation_until_it_is_routed(program):
    resources, _ = program
    inbound = one(resources, "bucket-inbound")
    assert inbound["versioning"] == {"enabled": True}
    assert inbound["lifecycleRules"][0]["condition"] == {
        "daysSinceNoncurrentTime": 7,
        "withState": "ARCHIVED",
    }
    claims = one(resources, "bucket-prediction")["lifecycleRules"][1]
    assert claims["condition"] == {"age": 30, "matchesPrefixes": ["claims/"]}
    heatmaps = one(resources, "bucket-prediction")["lifecycleRules"][3]
    assert heatmaps == {
        "action": {"type": "Delete"},
        "condition": {"age": 90, "matchesPrefixes": ["heatmaps/"]},
    }


def test_the_records_go_to_a_partitioned_dataset_the_audit_and_report_readers_may_read(program):
    """Issue 24: a BigQuery dataset (region and table expiry from config), a Logging sink of exactly
    the record lines into partitioned tables, its writer identity on that dataset only, and read
    access for the audit service and the report readers (job creation on the project, where BigQuery
    grants it: a custom role with that one permission for the audit service, jobUser for people)."""
    config = dev_config(
        recordsLocation="EU", recordsRetentionDays="400", reportReaders=["user:lead@example.com"]
    )
    resources = run_program(config)[0].resources
    dataset = one(resources, "records-dataset")
    assert (dataset["datasetId"], dataset["location"]) == ("acme_qi_records", "EU")
    assert dataset["defaultPartitionExpirationMs"] == 400 * 24 * 3600 * 1000
    assert dataset["deleteContentsOnDestroy"] is False
    sink = one(resources, "records-sink")
    assert sink["destination"] == f"bigquery.googleapis.com/projects/{PROJECT}/datasets/acme_qi_records"
    assert sink["bigqueryOptions"] == {"usePartitionedTables": True} and sink["uniqueWriterIdentity"] is True
    assert "jsonPayload.record>=1" in sink["filter"] and 'module_id="acme-qi-review"' in sink["filter"]
    on_dataset = {
        (r["inputs"]["member"], r["inputs"]["role"]) for r in of_type(resources, "DatasetIamMember")
    }
    assert on_dataset == {
        (
            f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com",
            "roles/bigquery.dataEditor",
        ),
        (f"serviceAccount:acme-qi-audit{SA}", "roles/bigquery.dataViewer"),
        ("user:lead@example.com", "roles/bigquery.dataViewer"),
    }
    jobs = {
        (r["inputs"]["member"], r["inputs"]["role"].rsplit("/", 1)[-1])
        for r in iam(resources)
        if r["inputs"]["role"] in ("roles/bigquery.jobUser", f"projects/{PROJECT}/roles/acme_qi_queryJobs")
    }
    # Issue 29, finding 6: a reader's job creation is this stack's own role, so the binding is this
    # stack's alone, and leaving `reportReaders` revokes it (it used to be jobUser, kept on delete).
    assert jobs == {
        (f"serviceAccount:acme-qi-audit{SA}", "acme_qi_queryJobs"),
        ("user:lead@example.com", "acme_qi_queryJobs"),
    }
    mocks = run_program(config)[0]
    reader = [n for n in mocks.graph.values() if n.name.startswith("iam-reader-user-lead-example-com-")]
    assert len(reader) == 2 and not any(n.retained for n in reader)
    default = one(program[0], "records-dataset")
    assert default["location"] == "europe-west4" and "defaultPartitionExpirationMs" not in default


def test_the_program_loads_none_of_the_runtime():
    """Issue 33, finding 1: `import infra.program` loaded 143 PIL and google-cloud modules and 21
    `inspection` modules, only for log event names and the review settings. It now reads the
    vocabulary (inspection/events.py, inspection/settings.py) and nothing that runs."""
    import subprocess
    import sys

    code = (
        "import sys, json; import infra.program; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PIL', 'numpy', 'flask', 'onnxruntime', 'review_app', 'functions_framework') "
        "or m.startswith(('google.cloud.', 'google.api_core', 'inspection.')))))"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    runtime = [m for m in loaded if not m.startswith("inspection.")]
    assert runtime == [], runtime
    cores = {
        "inspection.claims",
        "inspection.predicting",
        "inspection.moving",
        "inspection.sweep",
        "inspection.outcomes",
        "inspection.storage",
        "inspection.model.images",
        "inspection.model.classifiers",
    }
    assert cores.isdisjoint(loaded), sorted(cores & set(loaded))


@pytest.mark.parametrize(
    ("variant", "extra", "guard", "shown"),
    [
        (
            "onnx",
            {},
            "gs://acme-qi-training/models/model.guard.json",
            "gs://acme-qi-training/models/model.guard",
        ),
        ("onnx", {"inputGuard": "none"}, "none", "NONE (inputGuard none)"),
        ("vertex", {}, VERTEX_GUARD, VERTEX_GUARD),
        ("day zero", {}, None, "no model"),
    ],
)
def test_a_model_serves_behind_its_input_guard_or_the_stack_output_says_it_does_not(
    variant, extra, guard, shown
):
    """Issue 31: the guard beside a model file by default; an endpoint's where the stack names it,
    read by its own grant on its own folder; none only when asked, and then said on every `up`."""
    import pulumi

    from infra import config, program

    settings = dev_config(**VARIANTS[variant], **extra)
    resources = run_program(settings)[0].resources
    env = one(resources, "function-predict")["serviceConfig"]["environmentVariables"]
    assert env.get("INPUT_GUARD") == guard
    pulumi.runtime.set_all_config(settings, [])
    assert program.guard_output(config.load()).startswith(shown)
    guard_grants = [r["inputs"] for r in iam(resources) if r["name"].endswith("-guard")]
    if variant == "vertex":
        assert {g["condition"]["title"] for g in guard_grants} == {"only models/vertex"}
        assert len(guard_grants) == 2, "predict, and the sweep that runs its core"
    else:
        assert guard_grants == [], "beside a model file, the model's own grant reads it"
