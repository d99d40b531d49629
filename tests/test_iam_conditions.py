"""Every IAM condition the program declares, parsed and evaluated by a real CEL implementation.

IAM conditions are CEL expressions (https://cloud.google.com/iam/docs/conditions-overview). Each
one here is compiled by cel-python, checked against what IAM accepts in a condition (the
attributes and functions of https://cloud.google.com/iam/docs/conditions-attribute-reference, at
most 12 logical operators), and evaluated against resource names it must admit and names it must
refuse. Cloud Storage names its resources `projects/_/buckets/<bucket>` and
`projects/_/buckets/<bucket>/objects/<object>`
(https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name).
"""

from __future__ import annotations

import celpy
import pytest
from lark import Tree

from scripts.program.mocks import MODEL_ANOMALY, PROJECT_NUMBER, VARIANTS, dev_config, run_program

pytestmark = pytest.mark.unit

PROJECT = "my-factory-project"
GCF = f"projects/_/buckets/gcf-v2-sources-{PROJECT_NUMBER}-europe-west4"
STAGING = f"projects/_/buckets/staging.{PROJECT}.appspot.com"
PREDICTION, SOURCES = "projects/_/buckets/acme-qi-prediction", "projects/_/buckets/acme-qi-sources"
TRAINING = "projects/_/buckets/acme-qi-training"
IAM_FUNCTIONS = {"startsWith", "endsWith", "extract", "timestamp", "duration"}
IAM_ROOTS = {"resource", "request", "api"}
MAX_LOGICAL_OPERATORS = 12

# Each condition by its title: (names it must admit, names it must refuse).
CASES = {
    "only the gcf-v2-sources bucket": (
        [GCF, f"{GCF}/objects/acme-qi-predict/function-source.zip"],
        [
            "projects/_/buckets/gcf-v2-sources-999999999999-europe-west4",  # another project's
            f"{GCF}-copy/objects/x",
            "projects/_/buckets/gcf-v2-sources-123456789012-europe-west1/objects/x",  # another region
            f"{SOURCES}/objects/predict.zip",
        ],
    ),
    "only claims/": (
        [f"{PREDICTION}/objects/claims/0a1b2c"],
        [
            f"{PREDICTION}/objects/unclear/line-1/part.jpeg",
            f"{PREDICTION}/objects/claims-not/x",
            f"{PREDICTION}/objects/human_decided/claims/x",
            "projects/_/buckets/acme-qi-prediction-2/objects/claims/x",
            PREDICTION,
        ],
    ),
    "only App Engine's staging bucket": (
        [STAGING, f"{STAGING}/objects/ae/abc/manifest.json"],
        ["projects/_/buckets/staging.other-project.appspot.com/objects/x", f"{SOURCES}/objects/x"],
    ),
    "only appengine-*": (
        [
            f"{SOURCES}/objects/appengine-review-app-0123abcd.zip",
            f"{SOURCES}/objects/appengine-default-9f.zip",
        ],
        [f"{SOURCES}/objects/predict-0123.zip", f"{SOURCES}/objects/x/appengine-x.zip", SOURCES],
    ),
    "only models": (
        [f"{TRAINING}/objects/models/model.onnx", f"{TRAINING}/objects/models/edge/model.tflite"],
        [f"{TRAINING}/objects/data/train/ok/1.jpeg", f"{TRAINING}/objects/models-old/model.onnx", TRAINING],
    ),
    "only models/edge": (
        [f"{TRAINING}/objects/models/edge/model.tflite", f"{TRAINING}/objects/models/edge/card.json"],
        [f"{TRAINING}/objects/models/anomaly/line-1.npz", f"{TRAINING}/objects/models/edge-old/model.tflite"],
    ),
    # an endpoint's input guard (issue 31): its own folder, not the models beside it
    "only models/vertex": (
        [f"{TRAINING}/objects/models/vertex/endpoint.guard.json"],
        [f"{TRAINING}/objects/models/model.onnx", f"{TRAINING}/objects/models/vertex-2/endpoint.guard.json"],
    ),
    "only models/anomaly": (
        [f"{TRAINING}/objects/models/anomaly/line-1.npz"],
        [f"{TRAINING}/objects/models/edge/model.tflite", f"{TRAINING}/objects/models/anomaly-2/x.npz"],
    ),
    # the audit service reads the decided photos and their maps, nothing else of the bucket
    "only human_decided/": (
        [f"{PREDICTION}/objects/human_decided/defect/line-1/part.jpeg"],
        [
            f"{PREDICTION}/objects/unclear/line-1/part.jpeg",
            f"{PREDICTION}/objects/review/leases/ab",
            f"{PREDICTION}/objects/human_decided_old/x",
            PREDICTION,
        ],
    ),
    "only heatmaps/": (
        [f"{PREDICTION}/objects/heatmaps/{'a' * 40}.png"],
        [f"{PREDICTION}/objects/claims/x.json", f"{PREDICTION}/objects/ok/heatmaps/x.png", PREDICTION],
    ),
}


def conditions(config: dict) -> dict[str, str]:
    mocks, _ = run_program(config)
    found = {}
    for r in mocks.resources:
        condition = r["inputs"].get("condition")
        if condition:
            found.setdefault(condition["title"], condition["expression"])
            assert found[condition["title"]] == condition["expression"], "one title, one meaning"
    return found


@pytest.fixture(scope="module")
def declared() -> dict[str, str]:
    """Every condition of the example stack, of each backend that grants a model folder, and of an
    endpoint's guard."""
    found = conditions(dev_config())
    found.update(
        conditions(dev_config(classifierBackend="onnx", onnxModel="gs://acme-qi-training/models/model.onnx"))
    )
    found.update(conditions(dev_config(**VARIANTS["tflite"], anomalyModel=MODEL_ANOMALY)))
    found.update(conditions(dev_config(**VARIANTS["vertex"])))
    return found


def _walk(tree: Tree):
    yield tree
    for child in tree.children:
        if isinstance(child, Tree):
            yield from _walk(child)


def iam_problems(expression: str) -> list[str]:
    """What IAM would refuse in this expression, judged from cel-python's parse tree."""
    tree = celpy.Environment().compile(expression)
    problems = []
    for node in _walk(tree):
        if node.data == "member_dot_arg":
            method = str(node.children[1])
            if method not in IAM_FUNCTIONS:
                problems.append(f"{method}() is not an IAM condition function")
        if node.data == "ident_arg" and str(node.children[0]) not in IAM_FUNCTIONS:
            problems.append(f"{node.children[0]}() is not an IAM condition function")
        if node.data == "ident" and str(node.children[0]) not in IAM_ROOTS:
            problems.append(f"{node.children[0]} is not an IAM condition attribute")
    operators = sum(
        1 for n in _walk(tree) if n.data in ("conditionalor", "conditionaland") and len(n.children) > 1
    )
    if operators > MAX_LOGICAL_OPERATORS:
        problems.append(f"{operators} logical operators; IAM allows {MAX_LOGICAL_OPERATORS}")
    return problems


def admits(expression: str, name: str) -> bool:
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    return bool(program.evaluate({"resource": celpy.json_to_cel({"name": name, "type": "", "service": ""})}))


def test_every_condition_has_admit_and_refuse_cases(declared):
    """A new condition without cases fails here, so none goes unchecked."""
    assert set(declared) == set(CASES)


@pytest.mark.parametrize("title", sorted(CASES))
def test_each_condition_is_valid_cel_that_iam_accepts(declared, title):
    assert iam_problems(declared[title]) == []


@pytest.mark.parametrize("title", sorted(CASES))
def test_each_condition_admits_what_the_work_needs_and_refuses_the_rest(declared, title):
    expression = declared[title]
    must_admit, must_refuse = CASES[title]
    assert [n for n in must_admit if not admits(expression, n)] == []
    assert [n for n in must_refuse if admits(expression, n)] == []


def test_the_checker_catches_what_iam_would_refuse():
    assert iam_problems('resource.name.contains("x")') == ["contains() is not an IAM condition function"]
    assert iam_problems('bucket.startsWith("x")') == ["bucket is not an IAM condition attribute"]
    assert iam_problems(" || ".join(['resource.name == "a"'] * 14))
    assert iam_problems('resource.name.startsWith("projects/_/buckets/b/")') == []
