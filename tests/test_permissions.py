"""The permission trace: every call each deployable makes, on the emulators, checked against the
grants the Pulumi program declares for its account.

The calls are recorded where they leave our code (the storage emulator's proxy, and our Pub/Sub,
Vertex AI, IAM and BigQuery adapters); what each needs is Google's per-method table
(scripts/program/permission_map.py, cross-checked with iann0036/iam-dataset); what a predefined role holds
is the dated snapshot scripts/program/iam_roles.json; IAM conditions are evaluated by a CEL implementation.
A permission taken away is a 403 named at the line that makes the call; a permission granted and
never used is a finding too."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from infra import iam
from inspection import layout
from scripts import iam_trace
from scripts.iam_trace import DEPLOYABLES, Program
from scripts.program.mocks import VARIANTS
from scripts.program.permission_map import DATASET_NAMES, needs

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def calls():
    from scripts.local import trace

    return trace.run()


@pytest.fixture
def roles(monkeypatch):
    """CUSTOM_ROLES to change for one test; the programs read under them are forgotten after it."""
    Program.of.cache_clear()
    monkeypatch.setattr(iam, "CUSTOM_ROLES", dict(iam.CUSTOM_ROLES))
    yield iam.CUSTOM_ROLES
    monkeypatch.undo()
    Program.of.cache_clear()


def _snapshot() -> dict:
    return json.loads(iam_trace.ROLES.read_text())


def test_every_call_is_granted_and_every_granted_permission_is_used(calls):
    findings = iam_trace.check(calls)
    assert not findings, findings.report()


def test_the_trace_goes_through_every_deployable_and_its_paths(calls):
    """A path the workload skips is a grant the check cannot see: these are the ones that matter."""
    made = defaultdict(set)
    for call in calls:
        made[call.deployable, call.setting].add(call.method)
    assert {d for d, _ in made} >= set(DEPLOYABLES)
    # the main workload serves an ONNX classifier with an anomaly model beside it (issue 25)
    onnx = lambda deployable: made[deployable, "onnx and anomaly"]  # noqa: E731
    assert {"objects.get", "pubsub.topics.publish"} <= onnx("predict")
    assert {"objects.rewrite", "objects.delete", "objects.insert"} <= onnx("move")
    assert {"objects.list", "pubsub.subscriptions.pull", "pubsub.subscriptions.acknowledge"} <= onnx("sweep")
    assert {"objects.insert", "objects.delete", "iamcredentials.serviceAccounts.signBlob"} <= onnx("review")
    assert {"bigquery.jobs.create", "bigquery.tables.getData"} <= onnx("audit")
    # the anomaly maps: predict keeps them, the reviewer's and the auditor's browsers read them
    heatmaps = f"/objects/{layout.HEATMAPS}/"
    for deployable, method in (
        ("predict", "objects.insert"),
        ("review", "objects.get"),
        ("audit", "objects.get"),
    ):
        assert any(
            c.deployable == deployable and c.method == method and heatmaps in c.resource for c in calls
        ), (deployable, method)
    assert "iamcredentials.serviceAccounts.signBlob" in onnx("audit")
    # predict and the sweep both ask the endpoint when the model is on Vertex AI
    assert "aiplatform.endpoints.predict" in made["predict", "vertex"]
    assert "aiplatform.endpoints.predict" in made["sweep", "vertex"]
    # a claim replaced in place, and a write refused by its precondition, are in the trace too
    assert any(c.overwrote and "/objects/claims/" in c.resource for c in calls if c.deployable == "move")
    # every call knows the line of our code that made it
    assert all(c.origin for c in calls if c.deployable in DEPLOYABLES)


def test_a_permission_taken_away_is_a_403_named_at_the_line_that_needs_it(calls, roles):
    purpose, _ = roles["objectTake"]
    roles["objectTake"] = (purpose, ("storage.objects.get",))

    findings = iam_trace.check(calls)

    deletes = [
        m for m in findings.missing if m.startswith("move: storage.objects.delete on projects/_/buckets/")
    ]
    assert deletes, findings.report()
    assert all("-inbound/objects/" in m and "(objects.delete, at inspection/" in m for m in deletes), deletes


def test_a_permission_granted_and_never_used_is_reported(calls, roles):
    purpose, permissions = roles["messagesConsume"]
    roles["messagesConsume"] = (purpose, (*permissions, "pubsub.subscriptions.get"))

    findings = iam_trace.check(calls)

    assert not findings.missing
    assert [u for u in findings.unused if u.startswith("sweep:") and "pubsub.subscriptions.get" in u]


def test_an_iam_condition_is_evaluated_not_assumed():
    """claimAdvance lets move delete (so overwrite) a claim, and nothing outside claims/."""
    program = Program.of("onnx")
    move = program.accounts["move"]
    bucket = f"projects/_/buckets/{program.prefix}-prediction/objects/"

    def roles(name: str) -> set[str]:
        return {b.role.rsplit("_", 1)[-1] for b in program.allowing(move, "storage.objects.delete", name)}

    assert "claimAdvance" in roles(bucket + "claims/line-1/a.jpeg.json")
    assert roles(bucket + "ok/line-1/a.jpeg") == set()


def test_the_documented_trace_is_the_trace(calls):
    documented = json.loads(iam_trace.SUMMARY.read_text())
    assert documented == iam_trace.summary(calls), "the trace changed: run `make docs`"


def test_every_method_traced_has_its_permissions_in_the_table(calls):
    unknown = set()
    for call in calls:
        try:
            needs(call.method)
        except KeyError:
            unknown.add(call.method)
    assert not unknown


@pytest.mark.unit
def test_the_table_agrees_with_iam_dataset_where_both_name_a_method():
    """Every permission we say a method needs is one iann0036/iam-dataset's map lists for it."""
    mapped = _snapshot()["methods"]
    for theirs, ours in DATASET_NAMES.items():
        assert theirs in mapped, theirs
        assert {n.permission for n in needs(ours)} <= set(mapped[theirs]), ours


@pytest.mark.unit
def test_custom_roles_name_permissions_that_exist():
    known = set(_snapshot()["permissions"])
    for key, (_, permissions) in iam.CUSTOM_ROLES.items():
        assert set(permissions) <= known, key


@pytest.mark.unit
def test_the_snapshot_names_its_source_and_covers_every_predefined_role_granted():
    snapshot = _snapshot()
    assert snapshot["source"] == "https://github.com/iann0036/iam-dataset" and len(snapshot["commit"]) == 40
    for variant in VARIANTS:
        program = Program.of(variant)
        for binding in program.bindings:
            if binding.role.startswith("roles/"):
                assert binding.role in snapshot["roles"], (variant, binding.role)
