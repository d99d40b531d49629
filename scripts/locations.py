"""Where the scripts read and write: a local path or a gs:// URI, handled here and nowhere else.

Every script that takes a folder, a file or a model accepts either; this module lists, reads and
writes both the same way, so a script says what it does with the files, not where they are.
Conditional writes (`expect`: the generation read, 0 for "must not exist") make a read-modify-write
safe against a second writer on gs://; locally, a write is a rename, never a half-written file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from inspection.layout import gs_uri, is_gs_uri, split_gs_uri


class Changed(Exception):
    """A conditional write found the object changed since it was read."""


@dataclass(frozen=True)
class Listed:
    """One file under a listed location."""

    uri: str  # a local path or gs://bucket/name, as the scripts pass it on
    relative: PurePosixPath  # below the listed location
    md5: str | None = None  # what GCS says of an object: its content without reading it
    crc32c: str | None = None
    size: int | None = None


def remote(location: str) -> bool:
    """Whether `location` is in Cloud Storage (gs://bucket/…)."""
    return is_gs_uri(location)


def join(location: str, name: str) -> str:
    """`name` inside the folder `location`."""
    if remote(location):
        return location.rstrip("/") + "/" + name
    return os.path.join(location, name)


def files(location: str) -> Iterator[Listed]:
    """Every file under a folder or gs:// prefix, at any depth, in name order; hidden local files
    are left out. A local location that is not a folder stops the script, saying so."""
    if remote(location):
        from inspection import storage

        bucket, prefix = split_gs_uri(location)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        for blob in storage.client().list_blobs(bucket, prefix=prefix):
            yield Listed(
                gs_uri(bucket, blob.name),
                PurePosixPath(blob.name[len(prefix) :]),
                blob.md5_hash,
                blob.crc32c,
                blob.size,
            )
        return
    root = Path(location)
    if not root.is_dir():
        raise SystemExit(f"{location}: no such folder")
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        yield Listed(str(path), PurePosixPath(path.relative_to(root).as_posix()), size=path.stat().st_size)


def read_bytes(location: str) -> bytes:
    return read_versioned(location, missing_ok=False)[0]


def read_text(location: str) -> str:
    return read_bytes(location).decode()


def read_versioned(location: str, missing_ok: bool = True) -> tuple[bytes | None, int]:
    """(the content, its generation: 0 locally or when there is none); None when missing."""
    if remote(location):
        from inspection import storage

        bucket, name = split_gs_uri(location)
        blob = storage.client().bucket(bucket).get_blob(name)
        if blob is None:
            if not missing_ok:
                raise FileNotFoundError(location)
            return None, 0
        return blob.download_as_bytes(if_generation_match=blob.generation), int(blob.generation)
    if not os.path.exists(location) and missing_ok:
        return None, 0
    return Path(location).read_bytes(), 0


def write(
    location: str, data: bytes | str, content_type: str | None = None, expect: int | None = None
) -> None:
    """Write `data` whole. With `expect`, only over that generation (gs://; Changed otherwise)."""
    body = data.encode() if isinstance(data, str) else data
    if remote(location):
        from google.api_core import exceptions as gexc

        from inspection import storage

        bucket, name = split_gs_uri(location)
        try:
            storage.client().bucket(bucket).blob(name).upload_from_string(
                body, content_type=content_type, if_generation_match=expect
            )
        except gexc.PreconditionFailed:
            raise Changed(location) from None
        return
    os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
    partial = f"{location}.{os.getpid()}.part"
    Path(partial).write_bytes(body)
    os.replace(partial, location)
