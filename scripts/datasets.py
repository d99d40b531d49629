"""Labelled image sets, wherever they are: a local folder or a gs:// prefix, in the casting layout
(<split>/<label folder>/<image>), or a Vertex import file."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from inspection.labels import DEFAULT_ALIASES
from inspection.layout import LABELS

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
VERTEX_SPLITS = ("training", "validation", "test")
LEGACY_SPLITS = {"training": "TRAIN", "validation": "VALIDATION", "test": "TEST"}


@dataclass(frozen=True)
class Image:
    uri: str  # gs://bucket/name or a local path
    label: str
    in_test_folder: bool


def vertex_label(name: str) -> str:
    """Vertex's rule: a letter first, then letters, digits and '_'; known folder names become ok/defect."""
    known = DEFAULT_ALIASES.get(name.strip().lower())
    if known:
        return known
    label = re.sub(r"[^A-Za-z0-9_]", "_", name.strip())
    return label if label[:1].isalpha() else f"L_{label}"


def _image(relative: PurePosixPath, uri: str) -> Image | None:
    if relative.suffix.lower() not in IMAGE_SUFFIXES or len(relative.parts) < 2:
        return None
    return Image(uri, vertex_label(relative.parent.name), "test" in relative.parts[:-1])


def scan(source: str) -> tuple[list[Image], list[str]]:
    """(images, skipped non-images) under a local folder or gs://bucket/prefix, sorted by uri."""
    images, skipped = {}, []
    if source.startswith("gs://"):
        from inspection import storage

        bucket, _, prefix = source[5:].partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        for blob in storage.client().list_blobs(bucket, prefix=prefix):
            uri = f"gs://{bucket}/{blob.name}"
            found = _image(PurePosixPath(blob.name[len(prefix) :]), uri)
            (skipped.append(uri) if found is None and not blob.name.endswith(".csv") else None)
            if found:
                images[uri] = found
    else:
        root = Path(source)
        if not root.is_dir():
            raise SystemExit(f"{source}: no such folder")
        visible = (p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        for path in sorted(visible):
            found = _image(PurePosixPath(path.relative_to(root).as_posix()), str(path))
            if found is None:
                skipped.append(str(path))
            else:
                images[str(path)] = found
    return [images[uri] for uri in sorted(images)], skipped


def read_import_file(text: str) -> list[tuple[str, str, str]]:
    """(split, uri, label) rows of a Vertex or legacy AutoML import CSV, with Vertex's split names."""
    legacy = {v: k for k, v in LEGACY_SPLITS.items()}
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if len(row) != 3:
            raise SystemExit(f"import file row {row!r} does not have 3 columns")
        split, uri, label = row
        rows.append((legacy.get(split, split), uri, label))
    return rows


def read_text(location: str) -> str:
    """A local file or a gs:// object, as UTF-8 text."""
    return read_bytes(location).decode()


def read_bytes(location: str) -> bytes:
    """A local file or a gs:// object."""
    if location.startswith("gs://"):
        from inspection import storage

        bucket, _, name = location[5:].partition("/")
        return storage.client().bucket(bucket).blob(name).download_as_bytes()
    return Path(location).read_bytes()


def labelled_images(root: Path, split: str) -> list[tuple[Path, str]]:
    """(path, our label) for every image of one split of a local casting folder, in a stable order."""
    base = root / split
    if not base.is_dir():
        raise SystemExit(f"{root} has no {split}/ folder: expected {split}/def_front and {split}/ok_front")
    found = [(Path(image.uri), image.label) for image in scan(str(base))[0] if image.label in LABELS]
    if not found:
        raise SystemExit(f"{base} holds no images under def_front/ or ok_front/")
    return found
