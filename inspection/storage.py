"""GCS adapter: a lazily created, reused client, and the lossless move.

A move takes one source object *generation* to one destination, and ends the same way however
often, however concurrently and by whomever it is attempted:

1. **Claim.** The first attempt records its decision (destination, metadata, owner) in a claim
   object keyed by the source generation, created with `if_generation_match=0`. Every later
   attempt reads that claim and carries it out instead of its own wish. So two deliveries that
   would choose different folders, a reviewer's double click, two reviewers racing, or a retry
   after a crash all end in the one recorded destination.
2. **Copy** the source generation to the claimed destination, never overwriting
   (`if_generation_match=0`). A different object already holding that name keeps it; ours goes
   beside it under a name that embeds the source generation (layout.alongside). Each copy
   records the exact object it was made of (`copied_from`), which is how an attempt recognises a
   copy made by an earlier one.
3. **Delete exactly the source generation** (also a noncurrent one, in a versioned bucket), so a
   newer upload of the same name is never touched.

Every step is safe to repeat, and anyone may finish a move someone else claimed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from google.api_core import exceptions as gexc
from google.cloud import storage

from inspection import layout, logs, metadata


@functools.cache
def client() -> storage.Client:
    """One client per process; the emulator (STORAGE_EMULATOR_HOST) needs no credentials."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "local")
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client()


@dataclass(frozen=True)
class ObjectRef:
    """One object, or one generation of it when `generation` is set."""

    bucket: str
    name: str
    generation: int | None = None

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}" + (f"#{self.generation}" if self.generation else "")

    def log_fields(self) -> dict:
        """How log lines name an image: its object name and generation."""
        return {"image": self.name, "generation": self.generation}

    def blob(self) -> storage.Blob:
        return client().bucket(self.bucket).blob(self.name, generation=self.generation)

    @classmethod
    def parse(cls, uri: str) -> ObjectRef:
        """gs://bucket/name[#generation]"""
        bucket, rest = layout.split_gs_uri(uri)
        name, _, generation = rest.rpartition("#") if "#" in rest else (rest, "", "")
        if generation and not generation.isdigit():
            name, generation = rest, ""
        return cls(bucket, name, int(generation) if generation else None)


class Outcome(StrEnum):
    """How a move ended for the attempt that asked."""

    MOVED = "moved"  # this attempt's decision, carried out now
    KEPT_BOTH = "kept_both"  # the same, beside a different object that already held the name
    ALREADY_MOVED = "already_moved"  # this owner's decision, carried out by an earlier attempt
    FOLLOWED = "followed"  # another decision was recorded first; it stands, and is carried out
    SOURCE_GONE = "source_gone"  # no decision was recorded and the source generation is gone


@dataclass(frozen=True)
class Claim:
    """The one decision for one source generation, recorded before anything is copied."""

    source: str  # gs://bucket/name#generation
    bucket: str  # where the copy goes
    destination: str  # the name asked for; the copy may sit beside it (layout.alongside)
    owner: str  # who decided: a reviewer, or "" for the pipeline
    metadata: dict[str, str] = field(default_factory=dict)
    claimed_at: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Claim:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class Moved:
    """The result of a move: how it ended, the decision that stands, and where the copy is."""

    outcome: Outcome
    claim: Claim | None  # None only when nothing was ever decided (SOURCE_GONE without a claim)
    copy: ObjectRef | None  # the copy, with its generation; None when the source was gone

    @property
    def destination(self) -> str:
        """The copy's name, or the name that was asked for when there is no copy."""
        if self.copy is not None:
            return self.copy.name
        return self.claim.destination if self.claim else ""


def provenance(bucket: str, generation: int) -> dict[str, str]:
    """Metadata naming the inbound object a routed image came from."""
    return {metadata.SOURCE_BUCKET: bucket, metadata.SOURCE_GENERATION: str(generation)}


def read(source: ObjectRef) -> bytes | None:
    """The bytes of exactly that generation (current or not), or None when it no longer exists."""
    try:
        return source.blob().download_as_bytes()
    except gexc.NotFound:
        return None


def rewrite(destination, source, **preconditions) -> None:
    """A server-side copy, however many rewrite calls a large object takes."""
    token, _, _ = destination.rewrite(source, **preconditions)
    while token is not None:
        token, _, _ = destination.rewrite(source, token=token, **preconditions)


def claim_name(source: ObjectRef) -> str:
    """Where the claim for `source` lives in the destination bucket: fixed-length whatever the name."""
    return f"{layout.CLAIMS}/{hashlib.sha256(source.uri.encode()).hexdigest()}.json"


def claim_of(source: ObjectRef, bucket: str) -> Claim | None:
    """The decision recorded for `source`, if any, without making one."""
    try:
        return Claim.from_json(client().bucket(bucket).blob(claim_name(source)).download_as_bytes())
    except gexc.NotFound:
        return None


def move(source: ObjectRef, destination: ObjectRef, meta: dict[str, str], *, owner: str = "") -> Moved:
    """Move one source generation to `destination` (bucket and name); see the module docstring.

    `owner` names who decides (a reviewer); the outcome says whether that decision stands.
    """
    if source.generation is None:
        raise ValueError("a move needs the source generation")
    wanted = Claim(
        source=source.uri,
        bucket=destination.bucket,
        destination=destination.name,
        owner=owner,
        metadata={**meta, metadata.COPIED_FROM: source.uri},
        claimed_at=datetime.now(UTC).isoformat(),
    )
    claim, recorded_now = _claim(wanted)
    copy, placed_now = _place(source, claim)
    if copy is None:
        return Moved(Outcome.SOURCE_GONE if recorded_now else _outcome(claim, wanted), claim, None)
    _delete_generation(source)
    if not recorded_now:
        return Moved(_outcome(claim, wanted), claim, copy)
    if copy.name != claim.destination:
        logs.warning(
            "destination holds a different object; keeping both",
            **source.log_fields(),
            taken=claim.destination,
            alternative=copy.name,
        )
        return Moved(Outcome.KEPT_BOTH, claim, copy)
    return Moved(Outcome.MOVED if placed_now else Outcome.ALREADY_MOVED, claim, copy)


def _outcome(claim: Claim, wanted: Claim) -> Outcome:
    same = claim.owner == wanted.owner and claim.destination == wanted.destination
    return Outcome.ALREADY_MOVED if same else Outcome.FOLLOWED


def _claim(wanted: Claim) -> tuple[Claim, bool]:
    """(the claim that stands, whether this call recorded it)."""
    blob = client().bucket(wanted.bucket).blob(claim_name(ObjectRef.parse(wanted.source)))
    try:
        blob.upload_from_string(wanted.to_json(), content_type="application/json", if_generation_match=0)
        return wanted, True
    except gexc.PreconditionFailed:
        return Claim.from_json(blob.download_as_bytes()), False


def _place(source: ObjectRef, claim: Claim) -> tuple[ObjectRef | None, bool]:
    """(where the copy of `source` is, whether this call made it); (None, False) if the source is gone.

    A different object at the destination keeps its name; ours goes beside it under a name that
    embeds the source generation, so that name is either free or holds a copy of the same object.
    """
    bucket = client().bucket(claim.bucket)
    candidates = [claim.destination, layout.alongside(claim.destination, source.generation)]
    for target in candidates:
        while True:
            copy = bucket.blob(target)
            copy.metadata = claim.metadata
            try:
                rewrite(copy, source.blob(), if_generation_match=0)
                return ObjectRef(claim.bucket, target, copy.generation), True
            except gexc.PreconditionFailed:
                existing = bucket.get_blob(target)
                if existing is None:
                    continue  # deleted meanwhile: try the same name again
                if (existing.metadata or {}).get(metadata.COPIED_FROM) == source.uri:
                    return ObjectRef(claim.bucket, target, existing.generation), False
                break  # another object holds this name: try the next
            except gexc.NotFound:  # the source generation is gone: did an earlier attempt finish?
                return _finished(source, claim, candidates), False
    raise RuntimeError(f"{candidates[-1]} holds another object; refusing to overwrite it")


def _finished(source: ObjectRef, claim: Claim, candidates: list[str]) -> ObjectRef | None:
    for name in candidates:
        existing = client().bucket(claim.bucket).get_blob(name)
        if existing is not None and (existing.metadata or {}).get(metadata.COPIED_FROM) == source.uri:
            return ObjectRef(claim.bucket, name, existing.generation)
    return None


def _delete_generation(source: ObjectRef) -> None:
    """Delete exactly that generation, current or noncurrent; gone already is fine."""
    with contextlib.suppress(gexc.NotFound):
        source.blob().delete()


def delete_quietly(bucket: str, name: str, generation: int | None = None) -> None:
    """Delete if it is still there (at that generation, when given); otherwise do nothing."""
    with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
        client().bucket(bucket).blob(name).delete(if_generation_match=generation)
