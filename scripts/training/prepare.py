"""Build the Vertex AI import file for image classification from a bucket prefix or a local folder.

    python -m scripts.training.prepare gs://acme-qi-training/casting_data
    python -m scripts.training.prepare data/casting_data --gcs-base gs://acme-qi-training/casting_data

Labels come from each image's folder (def_front → defect, ok_front → ok; other names are made to
fit Vertex's label rules). An existing test/ folder stays the test split; the rest is split into
training and validation, stratified per label and deterministic for a seed: the same data and
seed always give the same file, whatever order the storage lists it in. No path appears twice,
and no image twice: identical bytes under two names are one image, kept once (in the test split
when one copy is there), so no test image is also trained on. Non-images, formats Vertex does not
train on (it takes JPEG, PNG, GIF, BMP and ICO), files outside <split>/<class>/<image>, and images
predict could not decode are skipped and reported. The file is Vertex's
`training|validation|test,gs://…,label`, uploaded next to the data.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from pathlib import PurePosixPath

from scripts import locations
from scripts.training.datasets import VERTEX_SPLITS, VERTEX_SUFFIXES, Image, Skipped, scan


def trainable(images: list[Image]) -> tuple[list[Image], list[Skipped]]:
    """Images Vertex trains on, each content once: a copy in a test/ folder wins, then the first
    name. (kept, skipped with the reason)."""
    kept: dict[str, Image] = {}
    skipped = []
    for image in sorted(images, key=lambda i: (not i.in_test_folder, i.uri)):
        if PurePosixPath(image.uri).suffix.lower() not in VERTEX_SUFFIXES:
            skipped.append(Skipped(image.uri, "a format Vertex does not train on (JPEG, PNG, GIF, BMP, ICO)"))
        elif image.content and image.content in kept:
            skipped.append(Skipped(image.uri, "the same bytes as an image already listed"))
        else:
            kept[image.content or image.uri] = image
    return sorted(kept.values(), key=lambda i: i.uri), skipped


def assign(images: list[Image], seed: int, validation: float, test: float) -> list[tuple[str, str, str]]:
    """(split, uri, label) for every image.

    Within each label, images are ordered by a seeded hash of their uri, so an image's place does
    not depend on listing order, and each split gets round(n × fraction) images: stratified to
    within one image per label. test/ folders are test; a data set without one gets `test` too.
    """
    has_test_folder = any(image.in_test_folder for image in images)
    rows = [("test", i.uri, i.label) for i in images if i.in_test_folder]
    by_label: dict[str, list[Image]] = {}
    for image in images:
        if not image.in_test_folder:
            by_label.setdefault(image.label, []).append(image)
    for label, group in sorted(by_label.items()):
        group.sort(key=lambda i: hashlib.sha256(f"{seed}:{i.uri}".encode()).hexdigest())
        n_test = 0 if has_test_folder else round(len(group) * test)
        n_validation = round(len(group) * validation)
        for index, image in enumerate(group):
            split = (
                "test" if index < n_test else "validation" if index < n_test + n_validation else "training"
            )
            rows.append((split, image.uri, label))
    return sorted(rows, key=lambda row: (VERTEX_SPLITS.index(row[0]), row[2], row[1]))


def render(rows: list[tuple[str, str, str]]) -> str:
    """Vertex's import CSV: `ml_use,uri,label`, ml_use one of training, validation, test. (The
    legacy AutoML Vision TRAIN|VALIDATION|TEST values are not Vertex's; they are only read.)"""
    return "".join(f"{split},{uri},{label}\n" for split, uri, label in rows)


def counts(rows: list[tuple[str, str, str]]) -> str:
    table = Counter((split, label) for split, _, label in rows)
    labels = sorted({label for _, _, label in rows})
    out = ["split        " + "".join(f"{label:>10s}" for label in labels) + "     total"]
    for split in VERTEX_SPLITS:
        row = [table[(split, label)] for label in labels]
        out.append(f"{split:12s} " + "".join(f"{n:10d}" for n in row) + f"{sum(row):10d}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", help="gs://bucket/prefix or a local folder in the casting layout")
    parser.add_argument("--gcs-base", help="for a local folder: the gs:// prefix it was uploaded to")
    parser.add_argument(
        "--out", default="import.csv", help="local copy of the import file (default import.csv)"
    )
    parser.add_argument("--seed", type=int, default=20240331)
    parser.add_argument(
        "--validation", type=float, default=0.15, help="share of non-test images (default 0.15)"
    )
    parser.add_argument("--test", type=float, default=0.1, help="test share when there is no test/ folder")
    parser.add_argument("--no-upload", action="store_true", help="do not upload the file next to the data")
    parser.add_argument(
        "--no-decode-check", action="store_true", help="trust every image file (skips reading each one)"
    )
    args = parser.parse_args(argv)

    images, skipped = scan(args.source, decode=not args.no_decode_check)
    images, left_out = trainable(images)
    skipped += left_out
    if not images:
        raise SystemExit(f"no images under {args.source}: expected <split>/<def_front|ok_front>/<image>")
    if args.gcs_base and not locations.remote(args.source):
        base = args.gcs_base.rstrip("/")
        root = args.source.rstrip("/")
        images = [
            Image(base + i.uri[len(root) :].replace("\\", "/"), i.label, i.in_test_folder, i.content)
            for i in images
        ]
    rows = assign(images, args.seed, args.validation, args.test)
    text = render(rows)
    with open(args.out, "w") as file:
        file.write(text)
    print(counts(rows))
    for reason in sorted({s.reason for s in skipped}):
        which = [s.uri for s in skipped if s.reason == reason]
        print(
            f"skipped {len(which)} file(s), {reason}: {', '.join(which[:3])}{' …' if len(which) > 3 else ''}"
        )
    print(f"wrote {len(rows)} rows to {args.out}")
    target = (args.gcs_base if not locations.remote(args.source) else args.source) or ""
    if locations.remote(target) and not args.no_upload:
        uploaded = locations.join(target, "import.csv")
        locations.write(uploaded, text, content_type="text/csv")
        print(f"uploaded {uploaded}")
    elif not locations.remote(target):
        print("note: the rows hold local paths; pass --gcs-base to make a file Vertex can import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
