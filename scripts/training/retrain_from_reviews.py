r"""The learning loop: a new import file from the original training set plus every human decision.

    python -m scripts.training.retrain_from_reviews gs://acme-qi-training/casting_data/import.csv \
        --prediction-bucket acme-qi-prediction --reviewed gs://acme-qi-training/reviewed

Every image in human_decided/<label>/ is copied into the training bucket (named by its content,
so a rerun copies nothing twice and the training set no longer depends on the prediction bucket).
The same image (same bytes) already in the training set takes the reviewer's label: human labels
win. New images join training, validation or test by a seeded hash of their content; the test rows
already there stay, so the test split only grows. Reviewed images are the hard cases, so they are
what a promotion gate most needs to judge on (scripts/training/promote.py).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import sys
from collections import Counter
from pathlib import Path, PurePosixPath

from google.api_core import exceptions as gexc

from inspection import layout, storage
from inspection.layout import split_gs_uri
from scripts import locations
from scripts.training.datasets import content_key, read_import_file, read_text, vertex_label
from scripts.training.prepare import render


def _md5_of(uri: str, cache: dict[str, dict[str, str]]) -> str | None:
    """The content key of a row's image, from one listing per bucket (or the local file)."""
    if not locations.remote(uri):
        path = Path(uri)
        return (
            base64.b64encode(hashlib.md5(path.read_bytes(), usedforsecurity=False).digest()).decode()
            if path.exists()
            else None
        )
    bucket, name = split_gs_uri(uri)
    if bucket not in cache:
        cache[bucket] = {
            b.name: content_key(b.md5_hash, b.crc32c, b.size) for b in storage.client().list_blobs(bucket)
        }
    return cache[bucket].get(name)


def human_decisions(prediction_bucket: str) -> dict[str, tuple[str, object]]:
    """md5 → (label, blob) of the latest decision on each distinct image."""
    latest: dict[str, tuple[str, str, object]] = {}
    for blob in storage.client().list_blobs(prediction_bucket, prefix=layout.HUMAN_DECIDED + "/"):
        parts = blob.name.split("/", 2)
        if len(parts) < 3 or parts[1] not in layout.LABELS:
            continue
        decided_at = (blob.metadata or {}).get("decided_at", "")
        key = content_key(blob.md5_hash, blob.crc32c, blob.size)  # a composite object has no MD5
        if key not in latest or decided_at > latest[key][1]:
            latest[key] = (parts[1], decided_at, blob)
    return {md5: (label, blob) for md5, (label, _, blob) in latest.items()}


def copy_reviewed(blob, label: str, target: str) -> str:
    """Copy a decided image into the training bucket under its MD5; returns its gs:// uri."""
    bucket, prefix = split_gs_uri(target)
    key = content_key(blob.md5_hash, blob.crc32c, blob.size)
    digest = base64.b64decode(key).hex() if blob.md5_hash else hashlib.sha256(key.encode()).hexdigest()[:32]
    name = f"{prefix.rstrip('/')}/{label}/{digest}{PurePosixPath(blob.name).suffix.lower()}".lstrip("/")
    destination = storage.client().bucket(bucket).blob(name)
    with contextlib.suppress(gexc.PreconditionFailed):  # copied by an earlier run
        storage.rewrite(destination, blob, if_generation_match=0)
    return f"gs://{bucket}/{name}"


def merge(rows, decisions, reviewed: str, seed: int, validation: float, test: float = 0.0):
    """(new rows, added per label, relabelled count). New images join validation, test or training
    by a seeded hash of their content."""
    cache: dict[str, dict[str, str]] = {}
    by_md5: dict[str, int] = {}
    rows = [list(row) for row in rows]
    for index, (_, uri, _) in enumerate(rows):
        md5 = _md5_of(uri, cache)
        if md5:
            by_md5.setdefault(md5, index)
    added: Counter = Counter()
    relabelled = 0
    from tqdm import tqdm

    for md5, (label, blob) in tqdm(sorted(decisions.items()), desc="reviewed", unit="img", leave=False):
        label = vertex_label(label)
        if md5 in by_md5:
            row = rows[by_md5[md5]]
            if row[2] != label:
                row[2] = label
                relabelled += 1
            continue
        uri = copy_reviewed(blob, label, reviewed)
        # By the image's content, not where it was copied to: the same photo lands in the same split
        # whatever the bucket is called (a test's bucket is random, and so was its split).
        share = int(hashlib.sha256(f"{seed}:{md5}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        split = "validation" if share < validation else "test" if share < validation + test else "training"
        rows.append([split, uri, label])
        added[label] += 1
    return [tuple(row) for row in rows], added, relabelled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "import_file",
        nargs="?",
        help="the original import file (gs:// or local); leave it out on day zero, when the reviewers' "
        "decisions are the first training set (then they get a test split too)",
    )
    parser.add_argument("--prediction-bucket", required=True)
    parser.add_argument("--reviewed", required=True, help="gs://training-bucket/prefix for reviewed images")
    parser.add_argument("--out", default="import-retrain.csv")
    parser.add_argument("--upload", help="also upload the new file to this gs:// path")
    parser.add_argument("--seed", type=int, default=20240331)
    parser.add_argument("--validation", type=float, default=0.15)
    parser.add_argument(
        "--test", type=float, default=0.15, help="share of newly reviewed images that join the test split"
    )
    args = parser.parse_args(argv)

    rows = read_import_file(read_text(args.import_file)) if args.import_file else []
    decisions = human_decisions(args.prediction_bucket)
    merged, added, relabelled = merge(rows, decisions, args.reviewed, args.seed, args.validation, args.test)
    text = render(merged)
    Path(args.out).write_text(text)
    for label in layout.LABELS:
        print(f"reviewers added {added[label]} new {label} image(s)")
    print(f"reviewers relabelled {relabelled} image(s) already in the training set")
    print(f"wrote {len(merged)} rows to {args.out} (was {len(rows)})")
    if args.upload:
        bucket, name = split_gs_uri(args.upload)
        storage.client().bucket(bucket).blob(name).upload_from_string(text, content_type="text/csv")
        print(f"uploaded {args.upload}; train on it with scripts.training.train_vertex")
    return 0


if __name__ == "__main__":
    sys.exit(main())
