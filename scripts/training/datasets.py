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
from scripts import locations

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ico"}
# What Vertex AI trains image classification on: JPEG, PNG, GIF, BMP, ICO
# (https://cloud.google.com/vertex-ai/docs/image-data/classification/prepare-data).
VERTEX_SUFFIXES = {".jpeg", ".jpg", ".png", ".gif", ".bmp", ".ico"}
VERTEX_SPLITS = ("training", "validation", "test")  # the only ml_use values Vertex takes
LEGACY_SPLITS = {"training": "TRAIN", "validation": "VALIDATION", "test": "TEST"}  # AutoML Vision, read only


def content_key(md5_hash: str | None, crc32c: str | None, size: int | None) -> str:
    """What makes two objects the same image: the MD5 GCS keeps, or, for a composite object, which
    has no MD5 (https://cloud.google.com/storage/docs/composite-objects), its CRC32C and size."""
    return md5_hash if md5_hash else f"crc32c:{crc32c}:{size}"


@dataclass(frozen=True)
class Image:
    uri: str  # gs://bucket/name or a local path
    label: str
    in_test_folder: bool
    content: str = ""  # content_key of its bytes, where the scan knows it


def vertex_label(name: str) -> str:
    """Vertex's rule: a letter first, then letters, digits and '_'; known folder names become ok/defect."""
    known = DEFAULT_ALIASES.get(name.strip().lower())
    if known:
        return known
    label = re.sub(r"[^A-Za-z0-9_]", "_", name.strip())
    return label if label[:1].isalpha() else f"L_{label}"


# The split folders the casting layout uses (and Vertex's own names).
SPLIT_FOLDERS = {"train", "test", "training", "validation", "valid", "val"}
# Where defect masks live beside the images (MVTec AD's name; scripts/training/sample_data.py writes
# them): they measure where an anomaly map points, and are not images to train on.
MASKS = "ground_truth"


@dataclass(frozen=True)
class Skipped:
    uri: str
    reason: str


def _image(relative: PurePosixPath, uri: str, content: str = "") -> Image | Skipped | None:
    """The label is the class folder directly under a split folder (or directly under the root
    scanned); any other place is an unexpected layout, never a class of its own. None: a mask."""
    if relative.suffix.lower() not in IMAGE_SUFFIXES:
        return Skipped(uri, "not an image file")
    parts = relative.parts
    if parts[0] == MASKS:
        return None
    if len(parts) == 2:
        return Image(uri, vertex_label(parts[0]), False, content)
    if len(parts) == 3 and parts[0].lower() in SPLIT_FOLDERS:
        return Image(uri, vertex_label(parts[1]), parts[0].lower() == "test", content)
    return Skipped(uri, "not in <split>/<class>/<image> or <class>/<image>")


def scan(source: str, *, decode: bool = False) -> tuple[list[Image], list[Skipped]]:
    """(images, skipped files with the reason) under a local folder or gs://bucket/prefix, sorted by
    uri. With `decode`, an image predict could not decode (by predict's own rule) is skipped too."""
    found: list[Image | Skipped] = [
        _image(listed.relative, listed.uri, _key(listed))
        for listed in locations.files(source)
        if not listed.uri.endswith(".csv")
    ]
    found = [f for f in found if f is not None]
    if decode:
        found = _decodable(found)
    images = sorted((f for f in found if isinstance(f, Image)), key=lambda i: i.uri)
    return images, sorted((f for f in found if isinstance(f, Skipped)), key=lambda s: s.uri)


def _key(listed: locations.Listed) -> str:
    """The content key of a listed file: what GCS says of an object, a local file's own MD5."""
    if locations.remote(listed.uri):
        return content_key(listed.md5, listed.crc32c, listed.size)
    import base64
    import hashlib

    digest = hashlib.md5(Path(listed.uri).read_bytes(), usedforsecurity=False).digest()  # as GCS keeps it
    return base64.b64encode(digest).decode()


def _decodable(found: list[Image | Skipped]) -> list[Image | Skipped]:
    """Each image checked with the loader predict uses; read in parallel, for gs:// sources."""
    from concurrent.futures import ThreadPoolExecutor

    from inspection.model import images

    def check(item: Image | Skipped) -> Image | Skipped:
        if isinstance(item, Skipped):
            return item
        try:
            images.load(read_bytes(item.uri))
        except images.ImageRejected as rejected:
            return Skipped(item.uri, f"predict could not use it: {rejected}")
        return item

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(check, found))


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


read_text, read_bytes = locations.read_text, locations.read_bytes


def labelled_images(root: Path, split: str) -> list[tuple[Path, str]]:
    """(path, our label) for every image of one split of a local casting folder, in a stable order."""
    base = root / split
    if not base.is_dir():
        raise SystemExit(f"{root} has no {split}/ folder: expected {split}/def_front and {split}/ok_front")
    found = [(Path(image.uri), image.label) for image in scan(str(base))[0] if image.label in LABELS]
    if not found:
        raise SystemExit(f"{base} holds no images under def_front/ or ok_front/")
    return found
