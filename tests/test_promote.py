"""The promotion gate on real models: two ONNX models trained by train_local, one of them on a
mislabelled import, a TF Lite export, and a stand-in Vertex endpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scripts import promote
from scripts.local.vertex import VertexStandIn
from scripts.training import sample_data, train_local

EDGE = Path(__file__).parent / "fixtures" / "edge"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """good and also_good learn from correct labels; mislabelled from a set whose ok and defect
    folders were swapped, the mistake a wrong import file makes. test/ is the fixed test split."""
    root = tmp_path_factory.mktemp("promote")
    sample_data.generate(root / "data", train=80, test=30, seed=21)
    sample_data.generate(root / "more", train=120, test=2, seed=22)
    swapped = root / "swapped"
    for split in ("train", "test"):
        for ours, theirs in (("ok_front", "def_front"), ("def_front", "ok_front")):
            shutil.copytree(root / "data" / split / ours, swapped / split / theirs)
    paths = {}
    for name, data in (("good", "data"), ("also_good", "more"), ("mislabelled", "swapped")):
        paths[name] = root / name / "model.onnx"
        train_local.train(root / data, paths[name])
    return paths, root / "data"


def run(capsys, *args: str) -> tuple[int, str]:
    status = promote.main(list(args))
    return status, capsys.readouterr().out


def test_the_gate_refuses_a_worse_model_promotes_a_good_one_and_rolls_back(models, tmp_path, capsys):
    paths, data = models
    registry = str(tmp_path / "promotions.json")
    folder = ["--folder", str(data), "--registry", registry]

    status, printed = run(capsys, str(paths["good"]), *folder)
    assert status == 0 and "PROMOTED" in printed
    assert "none (every image to a person)" in printed, "the first model is judged against day zero"
    assert f"pulumi config set onnxModel {paths['good']}" in printed

    status, printed = run(
        capsys, str(paths["mislabelled"]), "--registry", registry
    )  # the split is remembered
    assert status == 1 and "REFUSED" in printed and "defects as ok" in printed
    assert "defects passed as ok" in printed and "accuracy among auto-decided" in printed, (
        "the table, either way"
    )
    body = json.loads(Path(registry).read_text())
    assert body["serving"]["location"] == str(paths["good"]), "a refused model never serves"
    assert body["verdicts"][-1]["promoted"] is False and body["verdicts"][-1]["refusals"]

    status, printed = run(capsys, str(paths["also_good"]), "--registry", registry)
    assert status == 0 and "PROMOTED" in printed
    assert json.loads(Path(registry).read_text())["previous"][-1]["location"] == str(paths["good"])

    status, printed = run(capsys, "--rollback", "--registry", registry)
    assert status == 0 and "ROLLED BACK" in printed
    assert f"pulumi config set onnxModel {paths['good']}" in printed
    body = json.loads(Path(registry).read_text())
    assert body["serving"]["location"] == str(paths["good"])
    status, printed = run(capsys, "--rollback", "--registry", registry)
    assert status == 0 and "pulumi config set classifierBackend none" in printed, "back to day zero"
    with pytest.raises(SystemExit, match="no previous model"):
        promote.main(["--rollback", "--registry", registry])


def test_a_tflite_candidate_is_compared_with_a_vertex_endpoint(models, tmp_path, capsys, monkeypatch):
    """The endpoint is asked exactly as predict asks it. This stand-in calls every part ok, so it
    passes every defect; the Edge model, which calls every grey part a defect, passes none."""
    _, data = models
    stub = VertexStandIn()
    stub.answer = {"Ok": 0.97, "Defect": 0.03}
    monkeypatch.setenv("VERTEX_API_ENDPOINT", stub.url)
    edge = tmp_path / "edge"
    shutil.copytree(EDGE / "quantized", edge)
    try:
        status, printed = run(
            capsys,
            str(edge / "model.tflite"),
            "--current",
            "projects/demo/locations/europe-west4/endpoints/1234",
            "--folder",
            str(data),
        )
    finally:
        stub.server.shutdown()
    assert stub.requests and stub.requests[0]["path"].endswith("/endpoints/1234:predict")
    assert status == 0 and "vertex:projects/demo/locations/europe-west4/endpoints/1234" in printed
    assert "pulumi config set classifierBackend tflite" in printed
    registry = json.loads((edge / "promotions.json").read_text())
    assert registry["previous"][-1]["backend"] == "vertex", "rollback returns to the endpoint"


@pytest.mark.parametrize(
    ("candidate", "refused"),
    [
        ({"defects_passed_as_ok": 2, "auto_accuracy": 0.990}, []),
        ({"defects_passed_as_ok": 2, "auto_accuracy": 0.986}, []),  # 0.4 points lower: within 0.5
        ({"defects_passed_as_ok": 2, "auto_accuracy": 0.984}, ["0.60 points lower"]),
        ({"defects_passed_as_ok": 3, "auto_accuracy": 0.999}, ["passes 3 defects as ok"]),
    ],
)
def test_the_rule_is_no_more_defects_passed_and_accuracy_within_the_tolerance(candidate, refused):
    serving = {"defects_passed_as_ok": 2, "auto_accuracy": 0.990}
    reasons = promote.judge(serving, candidate, tolerance_points=0.5)
    assert len(reasons) == len(refused) and all(
        r in reason for r, reason in zip(refused, reasons, strict=True)
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["model.onnx", "--tolerance", "7"], "expected 0 to 5"),
        (["model.onnx", "--threshold", "0.4"], "(0.5, 1]"),
        (["model.pt"], "is not a model"),
        (["--rollback"], "needs --registry"),
    ],
)
def test_bad_arguments_stop_with_what_is_allowed(args, complaint, capsys):
    with pytest.raises(SystemExit):
        promote.main(args)
    assert complaint in capsys.readouterr().err


def test_two_promotions_at_once_cannot_both_win(make_bucket):
    """The registry in the training bucket is written only over the generation that was read."""
    bucket = make_bucket("training")
    location = f"gs://{bucket.name}/models/promotions.json"
    first, second = promote.Registry(location).load(), promote.Registry(location).load()
    first.body["serving"] = {"backend": "onnx", "location": "gs://m/first.onnx"}
    first.save()
    second.body["serving"] = {"backend": "onnx", "location": "gs://m/second.onnx"}
    with pytest.raises(SystemExit, match="changed while this ran"):
        second.save()
    assert promote.Registry(location).load().serving.location == "gs://m/first.onnx"
