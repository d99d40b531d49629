"""GCS adapter: a lazily created, reused client, and the lossless move.

A move is a copy that may not overwrite (`if_generation_match=0`), then a delete of exactly the
generation that was copied. Every step is safe to repeat, so a redelivered message finishes a move
that crashed half way, and an old message can never delete a newer upload of the same name.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.cloud import storage

from inspection import layout, logs

# Metadata keys that tie a routed object to the exact object generation it came from.
SOURCE_BUCKET = "source_bucket"
SOURCE_GENERATION = "source_generation"


@functools.cache
def client() -> storage.Client:
    """One client per process; the emulator (STORAGE_EMULATOR_HOST) needs no credentials."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "local")
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client()


@dataclass(frozen=True)
class MoveResult:
    """How a move ended. `outcome` is one of OUTCOMES."""

    outcome: str
    destination: str

    OUTCOMES = ("moved", "already_moved", "source_gone", "kept_both")


def read(bucket: str, name: str, generation: int) -> bytes | None:
    """The bytes of exactly that generation, or None when it no longer exists."""
    blob = client().bucket(bucket).blob(name, generation=generation)
    try:
        return blob.download_as_bytes()
    except gexc.NotFound:
        return None


def move(
    src_bucket: str,
    name: str,
    generation: int,
    dst_bucket: str,
    destination: str,
    metadata: dict[str, str],
) -> MoveResult:
    """Move one object generation to `destination`, idempotently; never overwrite, never lose."""
    metadata = {**metadata, SOURCE_BUCKET: src_bucket, SOURCE_GENERATION: str(generation)}
    target = destination
    state = _copy_unless_taken(src_bucket, name, generation, dst_bucket, target, metadata)
    taken = state == "taken"
    if taken:
        # The alternative name embeds our generation, so it is either free or our own copy.
        target = layout.alongside(destination, generation)
        logs.warning(
            "destination holds a different object; keeping both",
            image=name,
            generation=generation,
            taken=destination,
            alternative=target,
        )
        state = _copy_unless_taken(src_bucket, name, generation, dst_bucket, target, metadata)
        if state == "taken":
            raise RuntimeError(f"{target} holds another object; refusing to overwrite it")
    if state == "gone":
        # Either an earlier delivery finished this move, or a newer upload replaced the source.
        for candidate in (destination, layout.alongside(destination, generation)):
            if _holds_ours(dst_bucket, candidate, src_bucket, generation):
                return MoveResult("already_moved", candidate)
        return MoveResult("source_gone", target)
    _delete_generation(src_bucket, name, generation)
    if taken:
        return MoveResult("kept_both", target)
    return MoveResult("already_moved" if state == "ours" else "moved", target)


def _copy_unless_taken(
    src_bucket: str, name: str, generation: int, dst_bucket: str, target: str, metadata: dict
) -> str:
    """'copied', 'ours' (an earlier delivery copied it), 'taken' (another object) or 'gone'."""
    gcs = client()
    dst = gcs.bucket(dst_bucket).blob(target)
    dst.metadata = metadata
    src = gcs.bucket(src_bucket).blob(name, generation=generation)
    try:
        token, _, _ = dst.rewrite(src, if_generation_match=0)
        while token is not None:
            token, _, _ = dst.rewrite(src, token=token, if_generation_match=0)
        return "copied"
    except gexc.PreconditionFailed:
        return "ours" if _holds_ours(dst_bucket, target, src_bucket, generation) else "taken"
    except gexc.NotFound:
        return "gone"


def _holds_ours(dst_bucket: str, target: str, src_bucket: str, generation: int) -> bool:
    """Whether `target` is a copy of exactly this source generation."""
    existing = client().bucket(dst_bucket).get_blob(target)
    theirs = (existing.metadata or {}) if existing is not None else {}
    return theirs.get(SOURCE_BUCKET) == src_bucket and theirs.get(SOURCE_GENERATION) == str(generation)


def _delete_generation(bucket: str, name: str, generation: int) -> None:
    try:
        client().bucket(bucket).blob(name).delete(if_generation_match=generation)
    except gexc.NotFound:
        pass  # an earlier delivery deleted it
    except gexc.PreconditionFailed:
        logs.info("source was replaced by a newer upload; leaving it", image=name, generation=generation)
