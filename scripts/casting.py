"""Reading a data set in the Kaggle casting layout: <root>/<split>/<def_front|ok_front>/<image>."""

from __future__ import annotations

from pathlib import Path

from inspection.layout import DEFECT, OK

FOLDER_LABELS = {"def_front": DEFECT, "ok_front": OK}
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def labelled_images(root: Path, split: str) -> list[tuple[Path, str]]:
    """(path, label) for every image of one split, in a stable order; a clear error if the layout is wrong."""
    base = root / split
    if not base.is_dir():
        raise SystemExit(f"{root} has no {split}/ folder: expected {split}/def_front and {split}/ok_front")
    found = [
        (path, label)
        for folder, label in sorted(FOLDER_LABELS.items())
        for path in sorted((base / folder).glob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not found:
        raise SystemExit(f"{base} holds no images under def_front/ or ok_front/")
    return found
