r"""The promotion gate: a new model serves only if the test split proves it safe enough, and no
worse than the model serving now.

    python -m scripts.training.promote gs://acme-qi-training/models/model-123/tflite/2026-…/model.tflite \
        --import-file gs://acme-qi-training/casting_data/import.csv
    python -m scripts.training.promote gs://acme-qi-training/models/model.onnx   # the split is remembered
    python -m scripts.training.promote --rollback --registry gs://acme-qi-training/models/promotions.json

It runs the candidate and the serving model through predict's own code (backend, input guard,
label map, model card) on the same test split, at the candidate's threshold (chosen on the
validation split when it was trained; never on this split), prints both side by side, and
promotes the candidate only if
(scripts/training/gate.py says how each is computed):

- the split can prove the escape target at all: enough defects that, with none passed as ok, the
  escape rate is proven at or below --escape-target (299 defects for 1%);
- its escape rate (defects it decides ok on its own) is at or below --escape-target at 95%
  confidence (the one-sided Clopper–Pearson bound);
- the share of photos it sends to people is at or below --max-unclear at 95% (Wilson);
- image by image, it is not worse than the serving model beyond chance (McNemar's exact test on
  the images only one of the two gets wrong, at 5%).

A model is a `.onnx`, `.tflite` or `.npz` (train_anomaly's model of good parts) file (path or gs://)
or a Vertex AI endpoint
(projects/P/locations/R/endpoints/ID). With no model serving yet, people decide every image, so
there is nothing to pair the candidate with: the first two rules decide.

A candidate is judged, and served, behind its input guard (inspection/model/guard.py): <model>.guard.json
beside a model file, or `--guard` (an endpoint's, or one scripts.training.guard fitted). Without
one it is refused, unless `--unguarded` says so on purpose; the printed config then sets
`inputGuard none`, which the stack output and the plant report show.

The registry (JSON; default `models/promotions.json` in the candidate's bucket, or beside a local
candidate) remembers the serving model, the ones before it, the test split, and every verdict.
Promoting or rolling back prints the `pulumi config set` lines that make predict serve the model;
`pulumi up` then deploys a new revision, so every instance changes model at once. Exit status: 0
promoted (or rolled back), 1 refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

from inspection import layout
from inspection.errors import ConfigError
from inspection.labels import LabelMap
from inspection.routing import DEFAULT_THRESHOLD, parse_threshold
from scripts import locations
from scripts.training import evaluate, gate
from scripts.training.models import NO_MODEL, ModelRef

REGISTRY_FILE = "promotions.json"


# --- the registry -----------------------------------------------------------------------------------


class Registry:
    """The JSON record of what serves, what served before, the test split and every verdict; on
    gs:// a write is conditional on the generation read, so two promotions at once cannot both win."""

    def __init__(self, location: str):
        self.location = location
        self.generation = 0
        self.body: dict = {"serving": None, "previous": [], "test_set": None, "verdicts": []}

    def load(self) -> Registry:
        raw, self.generation = locations.read_versioned(self.location)
        if raw is not None:
            try:
                self.body.update(json.loads(raw))
            except ValueError as exc:
                raise SystemExit(
                    f"the registry {self.location} is not JSON ({exc}); fix or move it"
                ) from None
        return self

    def save(self) -> None:
        text = json.dumps(self.body, indent=2, sort_keys=True) + "\n"
        try:
            locations.write(self.location, text, "application/json", expect=self.generation)
        except locations.Changed:
            raise SystemExit(
                f"{self.location} changed while this ran (another promotion?); nothing changed; run again"
            ) from None

    @property
    def serving(self) -> ModelRef:
        entry = self.body.get("serving")
        return ModelRef.from_dict(entry) if entry else NO_MODEL


def default_registry(candidate: ModelRef) -> str:
    if locations.remote(candidate.location):
        bucket, _ = layout.split_gs_uri(candidate.location)
        return f"gs://{bucket}/models/{REGISTRY_FILE}"
    if candidate.backend == "vertex":
        raise SystemExit("an endpoint candidate needs --registry (a gs:// or local path)")
    return os.path.join(os.path.dirname(os.path.abspath(candidate.location)), REGISTRY_FILE)


# --- judging ----------------------------------------------------------------------------------------


def table(
    current_name: str, current: gate.Decisions, candidate_name: str, verdict: gate.Verdict, threshold: float
) -> str:
    """Both models side by side, with the bounds and the p-value the rules use."""
    f = verdict.figures
    width = max(len(current_name), len(candidate_name), 16)

    def escapes(d: gate.Decisions) -> str:
        return f"{d.escapes}/{d.defects} (≤{gate.escape_upper_bound(d.escapes, d.defects):.2%})"

    def unclear(d: gate.Decisions) -> str:
        return f"{d.unclear / d.images:.1%} (≤{gate.unclear_upper_bound(d.unclear, d.images):.1%})"

    rows = [
        ("at threshold " + format(threshold, "g"), "serving", "candidate"),
        ("", current_name, candidate_name),
        ("test images", str(current.images), str(f["images"])),
        ("defects in the split", str(current.defects), f"{f['defects']} (≥{f['defects_needed']} to prove)"),
        (
            "passed as ok (95% bound)",
            escapes(current),
            f"{f['escapes']}/{f['defects']} (≤{f['escape_upper_bound']:.2%})",
        ),
        ("errors among auto-decided", str(sum(current.errors)), str(f["errors"])),
        (
            "sent to a person (95% bound)",
            unclear(current),
            f"{f['unclear_share']:.1%} (≤{f['unclear_upper_bound']:.1%})",
        ),
    ]
    if "mcnemar_p" in f:
        rows.append(("only this one wrong", str(f["only_serving_wrong"]), str(f["only_candidate_wrong"])))
        rows.append(("McNemar exact p", "", f"{f['mcnemar_p']:.3f}"))
    return "\n".join(f"{a:30s}  {b:>{width}s}  {c:>{width}s}" for a, b, c in rows)


def decisions(model: ModelRef, items, label_map: LabelMap, threshold: float) -> gate.Decisions:
    """What the model decides on each image, through predict's own assessment."""
    scored = evaluate.score_all(items, model.open(), label_map, progress=False)
    return gate.Decisions.of(evaluate.outcomes(scored), threshold)


def candidate_threshold(args, candidate: ModelRef) -> float:
    """--threshold, else the one the candidate's card was chosen at (on its validation split)."""
    if args.threshold is not None:
        return args.threshold
    try:
        card = candidate.open().card
    except ConfigError:
        card = None
    chosen = (card.evaluation or {}).get("threshold") if card else None
    return float(chosen) if chosen else DEFAULT_THRESHOLD


# --- the command ------------------------------------------------------------------------------------


def promote(args, candidate: ModelRef, current: ModelRef | None, registry: Registry) -> int:
    """Judge the candidate against `current`, or against what the registry says serves."""
    current = current or registry.serving
    test_set = test_set_of(args, registry)
    split = None if test_set["split"] == "all" else test_set["split"]
    items = evaluate.labelled(test_set.get("folder"), test_set.get("import_file"), split)
    if not items:
        raise SystemExit(f"no labelled images in the test split {test_set}")
    label_map = LabelMap.parse(args.label_map, key="--label-map")
    threshold = candidate_threshold(args, candidate)
    print(f"judging on {len(items)} images of {describe_set(test_set)}, threshold {threshold:g}")
    rules = gate.Rules(args.escape_target, args.max_unclear)
    on_current = decisions(current, items, label_map, threshold)
    on_candidate = decisions(candidate, items, label_map, threshold)
    earlier = sum(1 for v in registry.body["verdicts"] if v.get("test_set") == test_set)
    judged = gate.judge(None if current == NO_MODEL else on_current, on_candidate, rules, earlier)
    print(table(short(str(current)), on_current, short(str(candidate)), judged, threshold))
    refusals = judged.refusals
    verdict = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "candidate": candidate.to_dict(),
        "serving": current.to_dict(),
        "test_set": test_set,
        "threshold": threshold,
        "rules": {
            "escape_target": rules.escape_target,
            "max_unclear": rules.max_unclear,
            "alpha": rules.alpha,
            "split_reuse_limit": rules.split_reuse_limit,
        },
        "figures": judged.figures,
        "promoted": not refusals,
        "refusals": refusals,
    }
    registry.body["test_set"] = test_set
    registry.body["verdicts"].append(verdict)
    if refusals:
        registry.save()
        print("\nREFUSED: the serving model stays.")
        for reason in refusals:
            print(f"  - {reason}")
        return 1
    kept = registry.body["serving"] if current == registry.serving else None
    registry.body["previous"].append(kept or current.to_dict())
    registry.body["serving"] = {
        **candidate.to_dict(),
        "promoted_at": verdict["at"],
        "figures": judged.figures,
        "threshold": threshold,
    }
    registry.save()
    print(f"\nPROMOTED: {candidate}. {registry.location} keeps {current} for --rollback.")
    print_config(candidate, threshold)
    return 0


def rollback(registry: Registry) -> int:
    if not registry.body["previous"]:
        raise SystemExit(f"{registry.location} has no previous model to roll back to")
    restored = registry.body["previous"].pop()
    replaced = registry.body["serving"]
    registry.body["serving"] = restored
    registry.body["verdicts"].append(
        {"at": datetime.now(UTC).isoformat(timespec="seconds"), "rollback": True, "replaced": replaced}
    )
    registry.save()
    ref = ModelRef.from_dict(restored)
    print(f"ROLLED BACK to {ref} (replacing {ModelRef.from_dict(replaced) if replaced else NO_MODEL}).")
    print_config(ref, restored.get("threshold"))
    return 0


def print_config(ref: ModelRef, threshold: float | None) -> None:
    """The lines that serve `ref` at the threshold it was judged at (a model judged at one threshold
    and served at another would be unjudged)."""
    if not ref.deployable:
        print(f"note: {ref.location} is local: the local stack can serve it, but predict in the cloud")
        print(
            "reads gs:// only: upload it (with its card.json and <model>.guard.json) and promote that copy."
        )
    print("Serve it:")
    for line in ref.config_lines():
        print(f"  {line}")
    if threshold is not None:
        print(f"  pulumi config set predictionThreshold {threshold:g}")
    print("  pulumi up")


def test_set_of(args, registry: Registry) -> dict:
    """The split given now, else the one the registry remembers: every verdict on the same images."""
    given = None
    if args.folder or args.import_file:
        given = {"folder": args.folder, "import_file": args.import_file, "split": args.split}
        given = {k: v for k, v in given.items() if v}
    remembered = registry.body.get("test_set")
    if given and remembered and given != remembered:
        print(f"note: the test split changes from {describe_set(remembered)} to {describe_set(given)}")
    if not (given or remembered):
        raise SystemExit("no test split yet: give --import-file or --folder (then it is remembered)")
    return given or remembered


def describe_set(test_set: dict) -> str:
    source = test_set.get("import_file") or test_set.get("folder")
    return f"{source} (split {test_set['split']})"


def short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def share(low: float, high: float):
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
        if not low < value < high:
            raise argparse.ArgumentTypeError(
                f"{raw} is out of range: expected a share in ({low:g}, {high:g})"
            )
        return value

    return parse


def threshold(raw: str) -> float:
    try:
        return parse_threshold(raw, "--threshold")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def serving_now(ref: ModelRef) -> ModelRef:
    """The model serving now, judged as it serves: behind the guard beside it, or none."""
    try:
        return ref.guarded()
    except SystemExit:
        print(f"{ref.location} has no input guard beside it: judged without one, as it serves")
        return ref.guarded(unguarded=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.training.promote",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "candidate", nargs="?", help="the model to promote: .onnx, .tflite, .npz or an endpoint"
    )
    parser.add_argument("--rollback", action="store_true", help="serve the previous model again")
    parser.add_argument("--current", help="the model serving now, when the registry does not know it yet")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--import-file", help="the test split's import file (gs:// or local)")
    data.add_argument("--folder", help="a folder in the casting layout")
    parser.add_argument("--split", default="test", help="which split (default test; 'all': every row)")
    parser.add_argument(
        "--threshold",
        type=threshold,
        help="predictionThreshold (default: the candidate card's, chosen on validation)",
    )
    parser.add_argument(
        "--escape-target",
        type=share(0, 0.5),
        default=gate.Rules.escape_target,
        help="the escape rate (defects passed as ok) the plant accepts, proven at 95%% (default 0.01)",
    )
    parser.add_argument(
        "--max-unclear",
        type=share(0, 1),
        default=gate.Rules.max_unclear,
        help="the share of photos people can take, proven at 95%% (default 0.30)",
    )
    parser.add_argument(
        "--registry", help=f"where {REGISTRY_FILE} is (default: beside the candidate's models)"
    )
    parser.add_argument("--label-map", default="", help="as the LABEL_MAP setting")
    parser.add_argument(
        "--guard", help="the candidate's input guard (default: <model>.guard.json beside a model file)"
    )
    parser.add_argument(
        "--unguarded",
        action="store_true",
        help="judge and serve the candidate without an input guard, on purpose: the stack and report say so",
    )
    args = parser.parse_args(argv)
    if args.rollback:
        if args.candidate or not args.registry:
            parser.error("--rollback takes no candidate, and needs --registry")
        return rollback(Registry(args.registry).load())
    if not args.candidate:
        parser.error("give the CANDIDATE model, or --rollback")
    try:
        candidate = ModelRef.parse(args.candidate, key="CANDIDATE").guarded(args.guard, args.unguarded)
        current = serving_now(ModelRef.parse(args.current, key="--current")) if args.current else None
    except ConfigError as exc:
        parser.error(str(exc))
    registry = Registry(args.registry or default_registry(candidate)).load()
    return promote(args, candidate, current, registry)


if __name__ == "__main__":
    sys.exit(main())
