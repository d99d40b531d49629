"""GCS adapter: a lazily created, reused client, and the lossless move.

A move is a copy that may not overwrite (`if_generation_match=0`), then a delete of exactly the
generation that was copied. Every step is safe to repeat, so a redelivered message finishes a move
that crashed half way, and an old message can never delete a newer upload of the same name.
Each copy records the exact object it was made of (`copied_from`), which is how a repeated move
recognises its own earlier copy. The pipeline routes images with it, and the review app decides
and undoes with it (as an exclusive move, where the source delete decides who won).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from google.api_core import exceptions as gexc
from google.cloud import storage

from inspection import layout, logs

COPIED_FROM = "copied_from"  # gs://bucket/name#generation: the exact object a copy was made of
COPIED_BY = "copied_by"  # who made the copy, for exclusive moves
STALE_ATTEMPT_S = 600  # an exclusive attempt takes seconds; a copy this old was left by a crash
# Where a routed image came from, for people and the learning loop (README: the folders).
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
    """How a move ended, and where the copy is. `outcome` is one of OUTCOMES."""

    outcome: str
    destination: str
    generation: int | None = None

    # lost: an exclusive move whose source was deleted or replaced by someone else first
    OUTCOMES = ("moved", "already_moved", "kept_both", "source_gone", "lost")


def provenance(bucket: str, generation: int) -> dict[str, str]:
    """Metadata naming the inbound object a routed image came from."""
    return {SOURCE_BUCKET: bucket, SOURCE_GENERATION: str(generation)}


def read(bucket: str, name: str, generation: int) -> bytes | None:
    """The bytes of exactly that generation, or None when it no longer exists."""
    blob = client().bucket(bucket).blob(name, generation=generation)
    try:
        return blob.download_as_bytes()
    except gexc.NotFound:
        return None


def rewrite(destination, source, **preconditions) -> None:
    """A server-side copy, however many rewrite calls a large object takes."""
    token, _, _ = destination.rewrite(source, **preconditions)
    while token is not None:
        token, _, _ = destination.rewrite(source, token=token, **preconditions)


def move(
    src_bucket: str,
    name: str,
    generation: int,
    dst_bucket: str,
    destination: str,
    metadata: dict[str, str],
    *,
    exclusive: str | None = None,
) -> MoveResult:
    """Move one object generation to `destination`, idempotently; never overwrite, never lose.

    `exclusive` names an owner (a reviewer): the move then only counts if this call deletes the
    source. When someone else deleted or replaced it first, or another owner's copy of the same
    object is already at the destination, the outcome is `lost` and any copy this call made is
    taken back. Only copies by the same owner are adopted, so a loser never takes back a copy
    that holds someone else's win.
    """
    identity = {COPIED_FROM: f"gs://{src_bucket}/{name}#{generation}"}
    if exclusive:
        identity[COPIED_BY] = exclusive
    state, target, copy_generation, taken = _place(
        src_bucket, name, generation, dst_bucket, destination, {**metadata, **identity}, identity
    )
    if state == "contended" or (exclusive and state in ("gone", "finished")):
        return MoveResult("lost", target)
    if state in ("gone", "finished"):  # the source generation no longer exists
        outcome = "already_moved" if state == "finished" else "source_gone"
        return MoveResult(outcome, target, copy_generation)
    deleted = _delete_generation(src_bucket, name, generation)
    if deleted != "deleted":
        if exclusive:
            if state == "copied":
                delete_quietly(dst_bucket, target, copy_generation)
            return MoveResult("lost", target)
        if deleted == "replaced":
            logs.info("source was replaced by a newer upload; leaving it", image=name, generation=generation)
    if taken:
        return MoveResult("kept_both", target, copy_generation)
    return MoveResult("already_moved" if state == "ours" else "moved", target, copy_generation)


def _place(
    src_bucket: str,
    name: str,
    generation: int,
    dst_bucket: str,
    destination: str,
    metadata: dict,
    identity: dict[str, str],
) -> tuple[str, str, int | None, bool]:
    """(state, target, copy generation, destination was taken by another object).

    state: 'copied' now; 'ours', an earlier attempt's copy (same `identity`) while the source
    still exists; 'finished', our copy exists and the source is gone; 'gone', the source is gone
    and no copy of ours exists; 'contended', another owner's live copy of the same object is there.
    A different object at `destination` keeps its name; ours goes beside it under a name that
    embeds our generation, so it is either free or a copy of the same object.
    """
    gcs = client()
    source = gcs.bucket(src_bucket).blob(name, generation=generation)
    alternative = layout.alongside(destination, generation)
    candidates = [destination, alternative]
    while candidates:
        target = candidates[0]
        copy = gcs.bucket(dst_bucket).blob(target)
        copy.metadata = metadata
        try:
            rewrite(copy, source, if_generation_match=0)
            return "copied", target, copy.generation, target == alternative
        except gexc.PreconditionFailed:
            existing = gcs.bucket(dst_bucket).get_blob(target)
            if existing is None:
                continue  # deleted meanwhile: try the same name again
            theirs = existing.metadata or {}
            if all(theirs.get(k) == v for k, v in identity.items()):
                return "ours", target, existing.generation, target == alternative
            if theirs.get(COPIED_FROM) == identity[COPIED_FROM]:  # the same object, another owner
                if _older_than(existing, STALE_ATTEMPT_S):
                    delete_quietly(dst_bucket, target, existing.generation)
                    continue  # that attempt crashed long ago; its copy was never a decision
                return "contended", target, None, False
            if target == destination:
                logs.warning(
                    "destination holds a different object; keeping both",
                    image=name,
                    generation=generation,
                    taken=destination,
                    alternative=alternative,
                )
            candidates.pop(0)
        except gexc.NotFound:  # the source generation is gone: did an earlier attempt finish?
            for candidate in (destination, alternative):
                existing = gcs.bucket(dst_bucket).get_blob(candidate)
                theirs = (existing.metadata or {}) if existing is not None else {}
                if existing is not None and all(theirs.get(k) == v for k, v in identity.items()):
                    return "finished", candidate, existing.generation, candidate == alternative
            return "gone", destination, None, False
    raise RuntimeError(f"{alternative} holds another object; refusing to overwrite it")


def _older_than(blob, seconds: float) -> bool:
    created = blob.time_created
    return created is not None and (datetime.now(UTC) - created).total_seconds() > seconds


def _delete_generation(bucket: str, name: str, generation: int) -> str:
    """'deleted', 'gone' (an earlier delivery deleted it) or 'replaced' (a newer upload is there)."""
    try:
        client().bucket(bucket).blob(name).delete(if_generation_match=generation)
        return "deleted"
    except gexc.NotFound:
        return "gone"
    except gexc.PreconditionFailed:
        return "replaced"


def delete_quietly(bucket: str, name: str, generation: int | None = None) -> None:
    """Delete if it is still there (at that generation, when given); otherwise do nothing."""
    with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
        client().bucket(bucket).blob(name).delete(if_generation_match=generation)
