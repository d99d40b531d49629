"""Fit a model's input guard (inspection/model/guard.py) from its reference photos, and find it.

    python -m scripts.training.guard data/train gs://acme-qi-training/models/m1/guard.json
    python -m scripts.training.guard gs://acme-qi-training/import/train.csv \\
        gs://acme-qi-training/models/vertex-1/guard.json

The training scripts (train_local, train_anomaly, train_vertex) call `write_beside` themselves;
run this for a model trained elsewhere (an anomalib export, a Vertex model you trained by hand),
from the photos it learned from or photos like them: folders or gs:// prefixes of photos (at any
depth), or import files (the training split's rows). Then serve it with the printed
`pulumi config set` line. Promote and the backfill find a file model's guard beside it, and refuse
a model without one unless told `--unguarded`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inspection import backends
from inspection.model import guard
from scripts import locations


def reference_uris(sources: list[str]) -> list[str]:
    """Every photo under folders or gs:// prefixes, or listed by import files (their TRAINING rows,
    or every row when none is marked)."""
    from scripts.training.datasets import IMAGE_SUFFIXES

    found = []
    for source in sources:
        if source.endswith(".csv"):
            from scripts.training import datasets

            rows = datasets.read_import_file(locations.read_text(source))
            training = [uri for split, uri, _ in rows if split.upper() == "TRAINING"]
            found += training or [uri for _, uri, _ in rows]
        else:
            found += [i.uri for i in locations.files(source) if Path(i.uri).suffix.lower() in IMAGE_SUFFIXES]
    return found


def photos(uris: list[str], progress: str = ""):
    """The PIL images of the photos predict would accept (it rejects the others before any model);
    with `progress`, a progress bar of that name."""
    from inspection.model import images

    if progress:
        from tqdm import tqdm

        uris = tqdm(uris, desc=progress, unit="img")
    for uri in uris:
        try:
            yield images.load(locations.read_bytes(uri)).image
        except images.ImageRejected:
            continue


def fit(reference, source: str) -> guard.InputGuard:
    """A guard from PIL images; SystemExit saying why when they cannot make one."""
    try:
        return guard.InputGuard.fit(reference, source=source)
    except ValueError as exc:
        raise SystemExit(f"no input guard from {source}: {exc}") from None


def write(fitted: guard.InputGuard, out: str) -> str:
    locations.write(out, fitted.to_json().encode(), "application/json")
    return out


def write_beside(model: str, reference, source: str) -> str:
    """Fit from the reference images and write it beside the model (backends.guard_beside); its location."""
    return write(fit(reference, source), backends.guard_beside(model))


def required(model: str, given: str | None, unguarded: bool) -> str:
    """The guard a script judges or runs a model with: `given`, else the one beside a model file.
    None, on purpose (`--unguarded`), is backends.NO_GUARD. A model with no guard stops the script."""
    if unguarded:
        return backends.NO_GUARD
    location = given or (backends.guard_beside(model) if backends.of_file(model) else "")
    if not location:
        raise SystemExit(
            f"{model} has no input guard to judge it with: give --guard (python -m "
            "scripts.training.guard fits one), or --unguarded to go on without one"
        )
    try:
        locations.read_bytes(location)
    except (FileNotFoundError, OSError) as exc:
        raise SystemExit(
            f"no input guard at {location} ({exc}): fit one with python -m scripts.training.guard, "
            "or give --unguarded to go on without one"
        ) from None
    return location


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "reference", nargs="+", help="folders, gs:// prefixes or import files of reference photos"
    )
    parser.add_argument("out", help="where to write the guard: a path or gs:// URI ending in .json")
    args = parser.parse_args(argv)
    if not args.out.endswith(".json"):
        parser.error(f"out: {args.out!r} must end in .json")
    uris = reference_uris(args.reference)
    fitted = fit(photos(uris), ", ".join(args.reference))
    write(fitted, args.out)
    print(
        f"input guard from {fitted.reference['photos']} photos written to {args.out}; serve it with\n"
        f"  pulumi config set inputGuard {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
