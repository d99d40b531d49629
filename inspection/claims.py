"""The claimed move: one source object generation to one destination, ending the same way however
often, however concurrently and by whomever it is attempted, and at whatever line a process dies.

The claim is the one record of one move (`claims/<hash of the source>.json`, in the bucket that
receives the copy), and it records how far the move got:

    claimed ──▶ copied ──▶ done

1. **Claimed.** Once the source generation is known to exist, the first attempt records its
   decision (destination, metadata, owner) with `if_generation_match=0`. Every later attempt
   carries out the decision that stands instead of its own wish, so two deliveries that would
   choose different folders, a reviewer's double click, two reviewers racing, and a retry after a
   crash all end in the one recorded destination.
2. **Copied.** The source generation is copied to the destination, never overwriting
   (`if_generation_match=0`). A different object already holding that name keeps it; ours goes
   beside it (layout.candidates). Each copy names the object it was made of (`copied_from`).
3. **Done.** Exactly the source generation is deleted, the caller records the outcome
   (`record`), and the claim says `done`, with where the copy is. What the record hands back (a
   change that is repaired where it is met if it is lost) is made side by side with `done`.

Every update of the claim names the generation it read, so two attempts never both advance it.
A retry never copies again once the copy exists or existed:
- from `copied` or `done` it knows the copy, and only deletes the source and records;
- in `claimed` it first looks for a copy made by an attempt that died before writing more (every
  candidate name, by `copied_from`);
- a copy is handed on only after its move is done (the review queue serves an image once its move
  recorded it, which is after the source delete), and a move that takes a copy first pins the
  claim that made it at `copied` (`_pin_origin`), so a retry of that earlier move deletes its
  source instead of copying it again.

The outcome is recorded by the attempt that finishes the move, before the claim says `done`; a
process that dies between the two leaves the claim short of `done`, so the next attempt records
again, and records carry an id (the claim's source) that makes a repeat the same record.

Claims are read forward-compatibly: unknown fields are ignored, so a revision that adds one can
roll out and back. A claim that cannot be read, or that names another bucket or source than the
one it is stored for, is never acted on: the move is `Held` for a person.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from google.api_core import exceptions as gexc

from inspection import layout, logs, metadata, storage
from inspection.errors import Held
from inspection.storage import ObjectRef

SCHEMA = 1  # raise only for a change an older revision must not act on; new fields need no raise


class State(StrEnum):
    CLAIMED = "claimed"  # decided; a copy may or may not exist yet
    COPIED = "copied"  # the copy exists or existed (`copy`); never copy again
    DONE = "done"  # the source generation is deleted and the outcome recorded


class Ending(StrEnum):
    """How a move ended for the attempt that asked."""

    MOVED = "moved"  # this attempt's decision, carried out now
    KEPT_BOTH = "kept_both"  # the same, beside a different object that already held the name
    ALREADY_MOVED = "already_moved"  # this owner's decision, carried out by an earlier attempt
    FOLLOWED = "followed"  # another decision was recorded first; it stands, and is carried out
    SOURCE_GONE = "source_gone"  # the source generation is gone and no copy of it exists


@dataclass(frozen=True)
class Claim:
    """The one decision for one source generation, and how far carrying it out got."""

    source: str  # gs://bucket/name#generation
    bucket: str  # where the copy goes, and where this claim is kept
    destination: str  # the name asked for; the copy may sit beside it (layout.candidates)
    owner: str = ""  # who decided: a reviewer, or "" for the pipeline
    metadata: dict[str, str] = field(default_factory=dict)
    claimed_at: str = ""
    state: State = State.CLAIMED
    copy: str = ""  # the copy's name, from `copied` on
    copy_generation: int = 0
    context: dict[str, str] = field(default_factory=dict)  # for the outcome's record, not the copy
    scope: str = ""  # a decision apart from the pipeline's about the same source (a backfill batch)
    # Why a person must look before this move can go on (every name for the copy is taken); the
    # sweep leaves a held move alone until a person releases it (`release`).
    held: str = ""
    generation: int = field(default=0, compare=False)  # of the claim object itself; not stored

    @property
    def source_ref(self) -> ObjectRef:
        return ObjectRef.parse(self.source)

    @property
    def copy_ref(self) -> ObjectRef | None:
        return ObjectRef(self.bucket, self.copy, self.copy_generation or None) if self.copy else None

    @property
    def place(self) -> layout.Place:
        """Where the decision sends the image."""
        return layout.parse(self.destination)

    def to_json(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if k != "generation"}
        return json.dumps({"schema": SCHEMA, **body}, ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def parse(cls, raw: bytes, where: str) -> Claim:
        """Read a stored claim; fields this revision does not know are ignored. Held when it cannot
        be read as a claim at all."""

        def unreadable(problem: str) -> Held:
            return Held(f"the claim {where} cannot be read: {problem}", claim=where)

        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise unreadable(f"not JSON ({type(exc).__name__})") from None
        if not isinstance(body, dict):
            raise unreadable("not a JSON object")
        schema = body.get("schema", SCHEMA)
        if not isinstance(schema, int) or isinstance(schema, bool) or schema > SCHEMA:
            raise unreadable(f"schema {schema!r}; this revision reads schema {SCHEMA} and older")
        strings = {
            "source": True,
            "bucket": True,
            "destination": True,
            "owner": False,
            "claimed_at": False,
            "scope": False,
            "held": False,
        }
        values: dict = {}
        for key, required in strings.items():
            value = body.get(key, "" if not required else None)
            if not isinstance(value, str) or (required and not value):
                raise unreadable(f"{key} must be {'a non-empty ' if required else 'a '}string")
            values[key] = value
        meta, context = body.get("metadata", {}), body.get("context", {})
        for key, value in (("metadata", meta), ("context", context)):
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise unreadable(f"{key} must map names to strings")
        try:
            values["state"] = State(body.get("state", State.CLAIMED))
        except ValueError:
            raise unreadable(f"state {body.get('state')!r} is not one of {', '.join(State)}") from None
        copy, copy_generation = body.get("copy", ""), body.get("copy_generation", 0)
        if (
            not isinstance(copy, str)
            or not isinstance(copy_generation, int)
            or isinstance(copy_generation, bool)
        ):
            raise unreadable("copy must be a name and copy_generation an integer")
        if values["state"] != State.CLAIMED and not copy:
            raise unreadable(f"state {values['state']} without the copy it names")
        try:
            if ObjectRef.parse(values["source"]).generation is None:
                raise ValueError
        except ValueError:
            raise unreadable("source must be gs://bucket/name#generation") from None
        return cls(
            **values, metadata=dict(meta), copy=copy, copy_generation=copy_generation, context=dict(context)
        )


@dataclass(frozen=True)
class Moved:
    """The result of a move: how it ended, the decision that stands, and where the copy is."""

    ending: Ending
    claim: Claim | None  # None only when nothing was ever decided (SOURCE_GONE without a claim)
    copy: ObjectRef | None  # the copy, with its generation; None when there is none
    handed_on: bool = False  # the copy was already taken by a later move (it is no longer there)

    @property
    def destination(self) -> str:
        """The copy's name, or the name that was asked for when there is no copy."""
        if self.copy is not None:
            return self.copy.name
        return self.claim.destination if self.claim else ""


# --- the claim object ---------------------------------------------------------------------------------


def claim_name(source: ObjectRef, scope: str = "") -> str:
    """Where the claim for `source` lives in the destination bucket: fixed-length whatever the name.
    A scope (a backfill batch) keeps a decision of its own about the same source."""
    key = f"{scope}\n{source.uri}" if scope else source.uri
    return f"{layout.CLAIMS}/{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}.json"


def read(bucket: str, source: ObjectRef, scope: str = "") -> Claim | None:
    """The claim kept in `bucket` for `source`, checked to be about exactly those; None if none."""
    blob = storage.client().bucket(bucket).blob(claim_name(source, scope))
    try:
        raw = blob.download_as_bytes()
    except gexc.NotFound:
        return None
    where = layout.gs_uri(bucket, blob.name)
    claim = Claim.parse(raw, where)
    if claim.bucket != bucket:
        raise Held(
            f"the claim {where} names bucket {claim.bucket!r}, not the bucket it is kept in", claim=where
        )
    if claim.source != source.uri or claim.scope != scope:
        raise Held(f"the claim {where} is about {claim.source!r}, not {source.uri!r}", claim=where)
    return replace(claim, generation=int(blob.generation or 0))


def _create(wanted: Claim) -> tuple[Claim, bool]:
    """(the claim that stands, whether this call recorded it)."""
    blob = storage.client().bucket(wanted.bucket).blob(claim_name(wanted.source_ref, wanted.scope))
    try:
        blob.upload_from_string(wanted.to_json(), content_type="application/json", if_generation_match=0)
    except gexc.PreconditionFailed:
        standing = read(wanted.bucket, wanted.source_ref, wanted.scope)
        if standing is None:  # created and already expired or removed: try again
            return _create(wanted)
        return standing, False
    except gexc.NotFound:
        raise Held(f"the destination bucket {wanted.bucket!r} does not exist", bucket=wanted.bucket) from None
    return replace(wanted, generation=int(blob.generation)), True


def _advance(claim: Claim, **changes) -> Claim | None:
    """Write the claim's next state over exactly the generation read; None when another attempt
    changed it first (read it again)."""
    updated = replace(claim, **changes)
    blob = storage.client().bucket(claim.bucket).blob(claim_name(claim.source_ref, claim.scope))
    try:
        blob.upload_from_string(
            updated.to_json(), content_type="application/json", if_generation_match=claim.generation
        )
    except (gexc.PreconditionFailed, gexc.NotFound):
        return None
    return replace(updated, generation=int(blob.generation))


# --- the move -----------------------------------------------------------------------------------------

# The record of a finished move; what it returns is made side by side with the claim's `done`.
Record = Callable[[Moved], Callable[[], object] | None]
UNREAD = object()  # move's `held` when the caller has not read the source
Metadata = Mapping[str, str] | Callable[[Mapping[str, str]], Mapping[str, str]]


def move(
    source: ObjectRef,
    destination: ObjectRef,
    meta: Metadata,
    *,
    owner: str = "",
    context: Mapping[str, str] | None = None,
    record: Record | None = None,
    keep_source: bool = False,
    scope: str = "",
    held: object = UNREAD,
) -> Moved:
    """Move one source generation to `destination` (bucket and name); see the module docstring.
    With `keep_source` it is a copy, claimed and recorded the same way (the backfill of an archive,
    which must never lose or change the archive); `scope` keeps its claim apart from the pipeline's.

    `meta` is the copy's metadata, or a function of the source's metadata that gives it.
    `owner` names who decides (a reviewer); the ending says whether that decision stands.
    `context` is kept in the claim for the record, and not copied onto the object.
    `record(moved)` is called by the attempt that finishes the move, before the claim says done;
    it must build what it records from `moved.claim` (the decision that stands), and be idempotent.
    What it returns is called side by side with the write of `done`, so it must be something whose
    loss, when the process dies there, is repaired wherever it is met.
    `held` is the source as the caller just read it (storage.get), read side by side with its own
    checks; the move reads it itself when not given.
    """
    if source.generation is None:
        raise ValueError("a move needs the source generation")
    if held is UNREAD:
        held = storage.get(source)  # None once the source generation is gone
    # With the source there, the claim is written at once, not looked for first: the write that
    # finds one already there reads it (_create), so a first attempt, by far the most common, saves
    # a request, and a repeated one costs one more. Without the source, only a claim can say where
    # it went, and none may be written.
    claim = read(destination.bucket, source, scope) if held is None else None
    created = False
    if claim is None:
        if held is None:
            return Moved(Ending.SOURCE_GONE, None, None)  # nothing decided, and nothing written
        given = meta(held.metadata or {}) if callable(meta) else meta
        wanted = Claim(
            source=source.uri,
            bucket=destination.bucket,
            destination=destination.name,
            owner=owner,
            metadata={**given, metadata.COPIED_FROM: source.uri},
            claimed_at=datetime.now(UTC).isoformat(),
            context=dict(context or {}),
            scope=scope,
        )
        claim, created = _create(wanted)
    if created:
        relation = Ending.MOVED
    elif (claim.owner, claim.destination) == (owner, destination.name):
        relation = Ending.ALREADY_MOVED
    else:
        relation = Ending.FOLLOWED
    if held is not None and not keep_source:
        _pin_origin(held)
    while claim.state != State.DONE:
        moved = _carry_out(claim, source, held is not None, created, relation)
        if moved.copy is None:
            return moved  # claimed, but the source vanished before anything was copied
        if not keep_source:
            storage.delete_generation(source)
        alongside = record(moved) if record is not None else None
        advance = functools.partial(
            _advance, claim, state=State.DONE, copy=moved.copy.name, copy_generation=moved.copy.generation
        )
        if alongside is None:
            done = advance()
        else:  # the outcome is stored by then: `alongside` may fail without failing the move
            beside = functools.partial(
                storage.tidy, alongside, "a change beside the claim's done", **source.log_fields()
            )
            done = storage.at_once(advance, beside)[0]
        if done is not None:
            return moved
        claim = read(destination.bucket, source, scope) or claim  # another attempt advanced it: look again
    return Moved(relation, claim, claim.copy_ref)


def release(bucket: str, source: ObjectRef) -> Claim | None:
    """A person freed a name for a held move: clear the mark, so the next sweep tries it again.
    None when there is no held move of `source`."""
    while True:
        claim = read(bucket, source)
        if claim is None or not claim.held:
            return None
        released = _advance(claim, held="")
        if released is not None:
            return released


def finish(source: ObjectRef, bucket: str, *, record: Record | None = None) -> Moved | None:
    """Carry out the move claimed for `source` in `bucket`, whatever it was; None if none was."""
    claim = read(bucket, source)
    if claim is None:
        return None
    return move(
        source, ObjectRef(bucket, claim.destination), claim.metadata, owner=claim.owner, record=record
    )


def _carry_out(
    claim: Claim, source: ObjectRef, source_exists: bool, created: bool, relation: Ending
) -> Moved:
    """Make sure the copy exists (or existed), and say how this attempt stands to the claim."""
    if claim.state == State.COPIED:  # a later move pinned it: the copy was handed on
        return Moved(relation, claim, claim.copy_ref, handed_on=True)
    copy = None if created else _find_copy(claim, source)
    if copy is None and source_exists:
        copy = _place(claim, source)
    if copy is None:
        logs.error(
            "the source vanished after its move was claimed and before it was copied; nothing to move",
            **source.log_fields(),
            claim=claim.destination,
        )
        return Moved(Ending.SOURCE_GONE, claim, None)
    if created and copy.name != claim.destination:
        logs.warning(
            "destination holds a different object; keeping both",
            **source.log_fields(),
            taken=claim.destination,
            alternative=copy.name,
        )
        relation = Ending.KEPT_BOTH
    return Moved(relation, claim, copy)


def _place(claim: Claim, source: ObjectRef) -> ObjectRef | None:
    """Copy `source` to the first candidate name nobody else holds; None if the source is gone.

    A name held by a different object is left to it; a name holding a copy of this very source
    (an earlier attempt's) is adopted. When every candidate holds another object, a person decides.
    """
    bucket = storage.client().bucket(claim.bucket)
    names = layout.candidates(claim.destination, source.generation)
    for target in names:
        while True:
            copy = bucket.blob(target)
            copy.metadata = claim.metadata
            try:
                storage.rewrite(copy, source.blob(), if_generation_match=0)
                return ObjectRef(claim.bucket, target, copy.generation)
            except gexc.PreconditionFailed:
                existing = bucket.get_blob(target)
                if existing is None:
                    continue  # deleted meanwhile: try the same name again
                if (existing.metadata or {}).get(metadata.COPIED_FROM) == source.uri:
                    return ObjectRef(claim.bucket, target, existing.generation)
                break  # another object holds this name: try the next
            except gexc.NotFound:
                if storage.get(source) is not None:
                    raise Held(
                        f"the destination bucket {claim.bucket!r} refuses the copy (NotFound) while the "
                        "source exists",
                        bucket=claim.bucket,
                    ) from None
                return _find_copy(claim, source)  # gone meanwhile: did another attempt copy it?
    reason = f"every name for the copy is held by another object: {', '.join(names)}"
    _advance(claim, held=reason[:2000])  # once held, the sweep costs it nothing until released
    raise Held(reason, **source.log_fields())


def _find_copy(claim: Claim, source: ObjectRef) -> ObjectRef | None:
    """A copy of `source` an earlier attempt made, under any candidate name."""
    for name in layout.candidates(claim.destination, source.generation):
        existing = storage.client().bucket(claim.bucket).get_blob(name)
        if existing is not None and (existing.metadata or {}).get(metadata.COPIED_FROM) == source.uri:
            return ObjectRef(claim.bucket, name, existing.generation)
    return None


def _pin_origin(held) -> None:
    """Before this move takes an object that is itself the copy of an earlier move, make that
    move's claim record the copy (`copied`), so its retry never copies the source again. Claims
    are kept beside the copies they make, so that claim is in this object's bucket."""
    origin = (held.metadata or {}).get(metadata.COPIED_FROM)
    if not origin:
        return
    try:
        origin_ref = ObjectRef.parse(origin)
    except ValueError:
        return
    if origin_ref.generation is None:
        return
    while True:
        claim = read(held.bucket.name, origin_ref)
        if claim is None or claim.state != State.CLAIMED:
            return  # nothing to pin (no claim: a copy from before claims recorded progress)
        if held.name not in layout.candidates(claim.destination, origin_ref.generation):
            return  # not that move's copy
        pinned = _advance(claim, state=State.COPIED, copy=held.name, copy_generation=int(held.generation))
        if pinned is not None:
            return
