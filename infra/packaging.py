"""Deployable zips, built by the program from the repository: the entrypoint, the shared
`inspection` package and a pinned requirements.txt. Zips are byte-for-byte reproducible, and their
object names carry the content hash, so an unchanged source never redeploys."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".build"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _package_files(package: str) -> list[tuple[Path, str]]:
    base = ROOT / package
    return [
        (path, path.relative_to(ROOT).as_posix())
        for path in sorted(base.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def function_files(function: str) -> list[tuple[Path, str]]:
    """main.py at the root (Cloud Run functions look there), the shared package, requirements."""
    return [
        (ROOT / "functions" / function / "main.py", "main.py"),
        (ROOT / "functions" / "requirements.txt", "requirements.txt"),
        *_package_files("inspection"),
    ]


def review_app_files() -> list[tuple[Path, str]]:
    """main.py at the root for gunicorn's `main:app`, the app, the shared package, requirements."""
    return [
        (ROOT / "review_app" / "main.py", "main.py"),
        (ROOT / "review_app" / "requirements.txt", "requirements.txt"),
        *[(p, a) for p, a in _package_files("review_app") if a not in ("review_app/main.py",)],
        *_package_files("inspection"),
    ]


def build_zip(files: list[tuple[Path, str]]) -> bytes:
    """A zip whose bytes depend only on the files' names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, arcname in sorted(files, key=lambda item: item[1]):
            info = zipfile.ZipInfo(arcname, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def content_name(kind: str, data: bytes) -> str:
    return f"{kind}-{hashlib.sha256(data).hexdigest()[:20]}.zip"


def write(kind: str, files: list[tuple[Path, str]]) -> tuple[str, Path]:
    """Build the zip into .build/ and return (object name, local path)."""
    data = build_zip(files)
    name = content_name(kind, data)
    BUILD.mkdir(exist_ok=True)
    path = BUILD / name
    if not path.exists():
        path.write_bytes(data)
    return name, path


def source_object(
    kind: str, files, bucket: gcp.storage.Bucket, parent: pulumi.Resource
) -> gcp.storage.BucketObject:
    """Upload a deployable named by its content hash; the same source is the same object."""
    name, path = write(kind, files)
    return gcp.storage.BucketObject(
        f"source-{kind}",
        bucket=bucket.name,
        name=name,
        source=pulumi.FileAsset(str(path)),
        content_type="application/zip",
        opts=pulumi.ResourceOptions(parent=parent),
    )
