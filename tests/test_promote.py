"""The promotion gate on real models: two ONNX models trained by train_local, one of them on a
mislabelled import, a TF Lite export, and a stand-in Vertex endpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inspection.backends import guard_beside
from scripts.local.vertex import VertexStandIn
from scripts.training import gate, promote, sample_data, train_local

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


# The sample's test split has 15 defects: enough to prove an escape rate of 20% (14 needed), not 1%.
RULES = ["--escape-target", "0.2", "--max-unclear", "0.9"]


def test_the_gate_refuses_a_worse_model_promotes_a_good_one_and_rolls_back(models, tmp_path, capsys):
    paths, data = models
    registry = str(tmp_path / "promotions.json")
    folder = ["--folder", str(data), "--registry", registry, *RULES]

    status, printed = run(capsys, str(paths["good"]), *folder)
    assert status == 0 and "PROMOTED" in printed, printed
    assert "none (every image to a person)" in printed, "the first model is judged against day zero"
    assert f"pulumi config set onnxModel {paths['good']}" in printed
    assert f"pulumi config set inputGuard {guard_beside(str(paths['good']))}" in printed, "behind its guard"

    status, printed = run(
        capsys, str(paths["mislabelled"]), "--registry", registry, *RULES
    )  # the split is remembered
    assert status == 1 and "REFUSED" in printed and "defects as ok: the escape rate may be" in printed
    assert "passed as ok (95% bound)" in printed and "McNemar exact p" in printed, "the table, either way"
    body = json.loads(Path(registry).read_text())
    assert body["serving"]["location"] == str(paths["good"]), "a refused model never serves"
    assert body["verdicts"][-1]["promoted"] is False and body["verdicts"][-1]["refusals"]

    status, printed = run(capsys, str(paths["also_good"]), "--registry", registry, *RULES)
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


def test_a_model_of_good_parts_is_judged_by_predicts_code_and_served_at_its_own_threshold(
    anomaly_sample, tmp_path, capsys
):
    """Issue 25, the first week: train_anomaly's model goes through the same gate, against day
    zero, at the threshold its card chose from good photos alone; promotion prints every line
    that serves it, the threshold included."""
    sample, model, fitted = anomaly_sample
    registry = str(tmp_path / "promotions.json")
    status, printed = run(capsys, str(model), "--folder", str(sample), "--registry", registry, *RULES)
    assert status == 0 and "PROMOTED" in printed, printed
    assert f"threshold {fitted['threshold']:g}" in printed and "none (every image to a person)" in printed
    assert "pulumi config set classifierBackend anomaly" in printed
    assert f"pulumi config set anomalyModel {model}" in printed
    assert f"pulumi config set predictionThreshold {fitted['threshold']:g}" in printed
    assert 0.5 < fitted["threshold"] < 1


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
            "--unguarded",  # the contract fixture was trained on nothing a guard could be fitted from
            "--current",
            "projects/demo/locations/europe-west4/endpoints/1234",
            "--folder",
            str(data),
            *RULES,
        )
    finally:
        stub.stop()
    assert stub.requests and stub.requests[0]["path"].endswith("/endpoints/1234:predict")
    assert status == 0 and "vertex:projects/demo/locations/europe-west4/endpoints/1234" in printed
    assert "pulumi config set classifierBackend tflite" in printed
    assert "pulumi config set inputGuard none" in printed, "unguarded, as asked, and said so"
    assert "has no input guard beside it: judged without one" in printed, "the endpoint serving now"
    registry = json.loads((edge / "promotions.json").read_text())
    assert registry["previous"][-1]["backend"] == "vertex", "rollback returns to the endpoint"


def test_a_candidate_without_an_input_guard_is_refused_unless_told_so(models, tmp_path, capsys):
    paths, data = models
    bare = tmp_path / "bare" / "model.onnx"
    bare.parent.mkdir()
    shutil.copy(paths["good"], bare)  # the model without the guard train_local wrote beside it
    with pytest.raises(SystemExit, match=r"no input guard at .*model\.guard\.json"):
        promote.main([str(bare), "--folder", str(data), *RULES])
    status, printed = run(capsys, str(bare), "--unguarded", "--folder", str(data), *RULES)
    assert status == 0 and "(no input guard)" in printed and "pulumi config set inputGuard none" in printed


def test_the_gates_statistics_are_the_known_values():
    """Issue 20: 0 escapes in 100 defects still allows 2.95%, 1 in 100 allows 4.66% (one-sided 95%
    Clopper–Pearson); with none passed, 299 defects prove ≤ 1%; McNemar's exact test on 6 images
    only one model gets wrong, all of them the same model, gives p = 0.031."""
    assert gate.escape_upper_bound(0, 100) == pytest.approx(0.0295, abs=5e-5)
    assert gate.escape_upper_bound(1, 100) == pytest.approx(0.0466, abs=5e-5)
    assert gate.defects_needed(0.01) == 299
    assert gate.escape_upper_bound(0, 299) <= 0.01 < gate.escape_upper_bound(0, 298)
    assert gate.mcnemar_p(6, 0) == pytest.approx(0.031, abs=5e-4)
    assert gate.unclear_upper_bound(10, 100) == pytest.approx(0.1604, abs=5e-4)  # Wilson


def _decisions(truth: str, decided: str) -> gate.Decisions:
    """From strings: d = defect, o = ok, ? = sent to a person."""
    names = {"d": "defect", "o": "ok", "?": None}
    return gate.Decisions(tuple(names[c] for c in decided), tuple(names[c] for c in truth))


D300_O100 = "d" * 300 + "o" * 100


@pytest.mark.parametrize(
    ("truth", "serving", "candidate", "refused"),
    [
        # 300 defects, none passed: proven ≤ 1%, and no worse than the serving model
        (D300_O100, D300_O100, D300_O100, []),
        # 100 defects: even a perfect model cannot prove 1%
        (
            "d" * 100 + "o" * 100,
            "d" * 100 + "o" * 100,
            "d" * 100 + "o" * 100,
            ["cannot prove an escape rate ≤ 1.0%: it has 100"],
        ),
        # 2 of 400 defects passed: the bound is 1.57%, above 1%
        ("d" * 400, "d" * 400, "o" * 2 + "d" * 398, ["may be as high as 1.57%"]),
        # wrong on 8 parts the serving model gets right: worse beyond chance
        (D300_O100, D300_O100, "d" * 308 + "o" * 92, ["worse, beyond chance (McNemar exact p = 0.008)"]),
        # 2 worse, 1 better: chance explains it
        (D300_O100, "d" * 301 + "o" * 99, "d" * 300 + "o" + "d" * 2 + "o" * 97, []),
        # half sent to people: above 30% even at best
        ("d" * 300 + "o" * 300, "d" * 300 + "o" * 300, "d" * 300 + "?" * 300, ["photos to people: up to"]),
    ],
    ids=["safe", "too-few-defects", "escapes", "worse", "chance", "too-many-to-people"],
)
def test_the_gate_refuses_what_the_split_proves_unsafe_or_worse(truth, serving, candidate, refused):
    verdict = gate.judge(_decisions(truth, serving), _decisions(truth, candidate), gate.Rules())
    assert len(verdict.refusals) == len(refused), verdict.refusals
    assert all(r in reason for r, reason in zip(refused, verdict.refusals, strict=True))


def test_the_gate_weighs_escapes_above_false_rejects():
    """Issue 31: McNemar weighed a false reject like an escape, so a candidate that fixed five false
    rejects of the serving model and passed five defects it had caught scored p = 1.0 and was
    promoted. Its escape bound still met the target (5 of 2,000 defects)."""
    truth = "d" * 2000 + "o" * 300
    serving = "d" * 2000 + "d" * 5 + "o" * 295  # holds back 5 good parts, passes no defect
    candidate = "o" * 5 + "d" * 1995 + "o" * 300  # passes 5 defects, holds back no good part
    verdict = gate.judge(_decisions(truth, serving), _decisions(truth, candidate), gate.Rules())
    assert verdict.figures["mcnemar_p"] == 1.0 and verdict.figures["escape_upper_bound"] <= 0.01
    assert (verdict.figures["new_escapes"], verdict.figures["fixed_escapes"]) == (5, 0)
    [refusal] = verdict.refusals
    assert "more escapes, beyond chance (exact sign test p = 0.031)" in refusal
    # the other way round, a candidate that holds back good parts to catch defects is not refused for it
    reversed_verdict = gate.judge(_decisions(truth, candidate), _decisions(truth, serving), gate.Rules())
    assert reversed_verdict.refusals == []


def test_a_test_split_that_has_judged_too_often_must_be_renewed():
    """Issue 31: the stored test split was reused for every promotion, which erodes its 95% guarantee."""
    rules = gate.Rules()
    fresh = gate.judge(_decisions(D300_O100, D300_O100), _decisions(D300_O100, D300_O100), rules, 4)
    assert fresh.refusals == [] and fresh.figures["split_verdicts"] == 5
    worn = gate.judge(_decisions(D300_O100, D300_O100), _decisions(D300_O100, D300_O100), rules, 5)
    [refusal] = worn.refusals
    assert "already judged 5 candidates" in refusal and "retrain_from_reviews" in refusal


def test_promote_counts_the_verdicts_each_split_gave_and_a_new_split_starts_afresh(models, tmp_path, capsys):
    paths, data = models
    registry = str(tmp_path / "promotions.json")
    folder = ["--folder", str(data), "--registry", registry, *RULES]
    for _ in range(gate.Rules.split_reuse_limit):
        status, printed = run(capsys, str(paths["good"]), *folder)
        assert status == 0, printed
    status, printed = run(capsys, str(paths["also_good"]), *folder)
    assert status == 1 and "already judged 5 candidates" in printed
    renewed = tmp_path / "renewed"
    shutil.copytree(data, renewed)  # the reviewers' newer decisions, as a split of its own
    status, printed = run(
        capsys, str(paths["also_good"]), "--folder", str(renewed), "--registry", registry, *RULES
    )
    assert status == 0 and "PROMOTED" in printed


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["model.onnx", "--escape-target", "0.7"], "expected a share in (0, 0.5)"),
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
