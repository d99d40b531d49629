"""The promotion gate: a new model serves only if it is no worse than the one serving now.

    python -m scripts.promote gs://acme-qi-training/models/model-123/tflite/2026-…/model.tflite \
        --import-file gs://acme-qi-training/casting_data/import.csv
    python -m scripts.promote gs://acme-qi-training/models/model.onnx       # the test split is remembered
    python -m scripts.promote --rollback --registry gs://acme-qi-training/models/promotions.json

It runs the candidate and the serving model through predict's own code (backend, label map, model
card) on the same test split, prints both side by side, and promotes the candidate only if

- it passes no more defects as ok than the serving model, at the threshold; and
- its accuracy among the images it decides automatically is not lower by more than --tolerance
  percentage points.

A model is a `.onnx` or `.tflite` file (path or gs://) or a Vertex AI endpoint
(projects/P/locations/R/endpoints/ID). With no model serving yet, the candidate is compared with
sending every image to a person, which passes no defect.

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
from inspection.routing import parse_threshold
from scripts.training import evaluate, metrics
from scripts.training.models import NO_MODEL, ModelRef

REGISTRY_FILE = "promotions.json"
DEFAULT_TOLERANCE_POINTS = 0.5
MAX_TOLERANCE_POINTS = 5.0


# --- the registry -----------------------------------------------------------------------------------


class Registry:
    """The JSON record of what serves, what served before, the test split and every verdict; on
    gs:// a write is conditional on the generation read, so two promotions at once cannot both win."""

    def __init__(self, location: str):
        self.location = location
        self.generation = 0
        self.body: dict = {"serving": None, "previous": [], "test_set": None, "verdicts": []}

    def load(self) -> Registry:
        raw = None
        if self.location.startswith("gs://"):
            from inspection import storage

            bucket, name = layout.split_gs_uri(self.location)
            blob = storage.client().bucket(bucket).get_blob(name)
            if blob is not None:
                raw, self.generation = (
                    blob.download_as_bytes(if_generation_match=blob.generation),
                    blob.generation,
                )
        elif os.path.exists(self.location):
            raw = open(self.location, "rb").read()  # noqa: SIM115
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
        if self.location.startswith("gs://"):
            from google.api_core import exceptions as gexc

            from inspection import storage

            bucket, name = layout.split_gs_uri(self.location)
            blob = storage.client().bucket(bucket).blob(name)
            try:
                blob.upload_from_string(text, "application/json", if_generation_match=self.generation)
            except gexc.PreconditionFailed:
                raise SystemExit(
                    f"{self.location} changed while this ran (another promotion?); nothing changed; run again"
                ) from None
        else:
            os.makedirs(os.path.dirname(os.path.abspath(self.location)), exist_ok=True)
            partial = f"{self.location}.{os.getpid()}.part"
            with open(partial, "w") as file:
                file.write(text)
            os.replace(partial, self.location)

    @property
    def serving(self) -> ModelRef:
        entry = self.body.get("serving")
        return ModelRef.from_dict(entry) if entry else NO_MODEL


def default_registry(candidate: ModelRef) -> str:
    if candidate.location.startswith("gs://"):
        bucket, _ = layout.split_gs_uri(candidate.location)
        return f"gs://{bucket}/models/{REGISTRY_FILE}"
    if candidate.backend == "vertex":
        raise SystemExit("an endpoint candidate needs --registry (a gs:// or local path)")
    return os.path.join(os.path.dirname(os.path.abspath(candidate.location)), REGISTRY_FILE)


# --- judging ----------------------------------------------------------------------------------------


def judge(current: dict, candidate: dict, tolerance_points: float) -> list[str]:
    """Why the candidate may not serve; empty when it may."""
    refusals = []
    if candidate["defects_passed_as_ok"] > current["defects_passed_as_ok"]:
        refusals.append(
            f"it passes {candidate['defects_passed_as_ok']} defects as ok; the serving model passes "
            f"{current['defects_passed_as_ok']}"
        )
    drop = (current["auto_accuracy"] - candidate["auto_accuracy"]) * 100
    if drop > tolerance_points + 1e-9:
        refusals.append(
            f"its accuracy among auto-decided images is {drop:.2f} points lower; the tolerance is "
            f"{tolerance_points:g}"
        )
    return refusals


ROWS = (
    ("test images", "test_images", "{:d}"),
    ("accuracy (top label)", "accuracy", "{:.1%}"),
    ("sent to a person", "unclear_share", "{:.1%}"),
    ("  of them unusual input", "unusual", "{:d}"),
    ("accuracy among auto-decided", "auto_accuracy", "{:.2%}"),
    ("defects passed as ok", "defects_passed_as_ok", "{:d}"),
)


def table(current_name: str, current: dict, candidate_name: str, candidate: dict) -> str:
    width = max(len(current_name), len(candidate_name), 12)
    lines = [
        f"{'at threshold ' + format(candidate['threshold'], 'g'):30s}  {'serving':>{width}s}  "
        f"{'candidate':>{width}s}",
        f"{'':30s}  {current_name:>{width}s}  {candidate_name:>{width}s}",
    ]
    for title, key, style in ROWS:
        lines.append(
            f"{title:30s}  {style.format(current[key]):>{width}s}  {style.format(candidate[key]):>{width}s}"
        )
    return "\n".join(lines)


def figures(model: ModelRef, items, label_map: LabelMap, threshold: float) -> dict:
    """The model's card evaluation on these images, through predict's own assessment."""
    scored = evaluate.score_all(items, model.open(), label_map, progress=False)
    return metrics.card_evaluation(evaluate.outcomes(scored), threshold)


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
    print(f"judging on {len(items)} images of {describe_set(test_set)}, threshold {args.threshold:g}")
    found_current = figures(current, items, label_map, args.threshold)
    found_candidate = figures(candidate, items, label_map, args.threshold)
    print(table(short(str(current)), found_current, short(str(candidate)), found_candidate))
    refusals = judge(found_current, found_candidate, args.tolerance)
    verdict = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "candidate": candidate.to_dict(),
        "serving": current.to_dict(),
        "test_set": test_set,
        "threshold": args.threshold,
        "tolerance_points": args.tolerance,
        "figures": {"serving": found_current, "candidate": found_candidate},
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
        "figures": found_candidate,
    }
    registry.save()
    print(f"\nPROMOTED: {candidate}. {registry.location} keeps {current} for --rollback.")
    print_config(candidate)
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
    print_config(ref)
    return 0


def print_config(ref: ModelRef) -> None:
    if not ref.deployable:
        print(f"note: {ref.location} is local: the local stack can serve it, but predict in the cloud")
        print("reads gs:// only: upload it (a .tflite with dict.txt and card.json) and promote that copy.")
    print("Serve it:")
    for line in ref.config_lines():
        print(f"  {line}")
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


def tolerance(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of percentage points") from None
    if not 0 <= value <= MAX_TOLERANCE_POINTS:
        raise argparse.ArgumentTypeError(
            f"{raw} is out of range: expected 0 to {MAX_TOLERANCE_POINTS:g} points"
        )
    return value


def threshold(raw: str) -> float:
    try:
        return parse_threshold(raw, "--threshold")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.promote",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("candidate", nargs="?", help="the model to promote: .onnx, .tflite or an endpoint")
    parser.add_argument("--rollback", action="store_true", help="serve the previous model again")
    parser.add_argument("--current", help="the model serving now, when the registry does not know it yet")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--import-file", help="the test split's import file (gs:// or local)")
    data.add_argument("--folder", help="a folder in the casting layout")
    parser.add_argument("--split", default="test", help="which split (default test; 'all': every row)")
    parser.add_argument("--threshold", type=threshold, default=0.9, help="predictionThreshold (default 0.9)")
    parser.add_argument(
        "--tolerance",
        type=tolerance,
        default=DEFAULT_TOLERANCE_POINTS,
        help=f"how many points of auto-decided accuracy may be lost (default {DEFAULT_TOLERANCE_POINTS:g})",
    )
    parser.add_argument(
        "--registry", help=f"where {REGISTRY_FILE} is (default: beside the candidate's models)"
    )
    parser.add_argument("--label-map", default="", help="as the LABEL_MAP setting")
    args = parser.parse_args(argv)
    if args.rollback:
        if args.candidate or not args.registry:
            parser.error("--rollback takes no candidate, and needs --registry")
        return rollback(Registry(args.registry).load())
    if not args.candidate:
        parser.error("give the CANDIDATE model, or --rollback")
    try:
        candidate = ModelRef.parse(args.candidate, key="CANDIDATE")
        current = ModelRef.parse(args.current, key="--current") if args.current else None
    except ConfigError as exc:
        parser.error(str(exc))
    registry = Registry(args.registry or default_registry(candidate)).load()
    return promote(args, candidate, current, registry)


if __name__ == "__main__":
    sys.exit(main())
