"""Upload a local data set in the casting layout to the training bucket: in parallel, resumable.

    python -m scripts.training.upload_dataset data/casting_data gs://acme-qi-training/casting_data

An object already there with the same MD5 is skipped, so an interrupted upload just runs again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inspection import storage
from inspection.layout import split_gs_uri
from scripts import locations


def md5_b64(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def upload(folder: Path, target: str, workers: int = 8, progress: bool = True) -> tuple[int, int]:
    """(uploaded, skipped)."""
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no such folder")
    if not locations.remote(target):
        raise SystemExit(f"{target}: expected gs://bucket/prefix")
    bucket_name, prefix = split_gs_uri(target)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    bucket = storage.client().bucket(bucket_name)
    existing = {blob.name: blob.md5_hash for blob in bucket.list_blobs(prefix=prefix)}
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    todo = [(p, prefix + p.relative_to(folder).as_posix()) for p in files]
    todo = [(p, name) for p, name in todo if existing.get(name) != md5_b64(p)]

    def put(item: tuple[Path, str]) -> None:
        path, name = item
        bucket.blob(name).upload_from_filename(str(path))

    from tqdm import tqdm

    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(todo), unit="file", disable=not progress) as bar:
        for _ in pool.map(put, todo):
            bar.update()
    return len(todo), len(files) - len(todo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("target", help="gs://bucket/prefix")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    uploaded, skipped = upload(args.folder, args.target, args.workers)
    print(f"uploaded {uploaded} file(s); {skipped} already there with the same checksum")
    return 0


if __name__ == "__main__":
    sys.exit(main())
