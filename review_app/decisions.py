"""A reviewer's decision on an unclear image, and its undo.

A decision is the pipeline's own claimed move (inspection/claims.py) from `unclear/<name>`, at the
generation the reviewer saw, to `human_decided/<label>/<name>`. The first decision recorded for
that generation stands: the same reviewer asking twice gets that decision twice, anyone else is
told it was decided, and a decision whose request died half way is finished by the next attempt.
Undo is the same move in reverse, leased to the undoer first so nobody else is served the image.
Both record their outcome (inspection/outcomes.py) from the claim that decided it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from inspection import claims, layout, metadata, outcomes, storage
from review_app.unclear_queue import (
    AlreadyDecided,
    Item,
    NotAllowed,
    NotFound,
    Queue,
    check_name,
    check_unclear_name,
    now,
    score_of,
)

DECIDED_PREFIX = layout.HUMAN_DECIDED + "/"


@dataclass(frozen=True)
class Decision:
    name: str  # human_decided/<label>/<name>
    generation: int
    label: str  # the label stored: this request's, or the one an earlier request of this reviewer stored
    reviewer: str
    decided_at: str
    source: str  # unclear/<name>


class Decisions:
    def __init__(self, queue: Queue, undo_seconds: int = 120, line_segment: int = 1):
        self.queue = queue
        self.undo_window = timedelta(seconds=undo_seconds)
        self.line_segment = line_segment

    @property
    def prediction_bucket(self) -> str:
        return self.queue.prediction_bucket

    def decide(self, name: str, generation: int, label: str, reviewer: str) -> Decision:
        """Record one reviewer's label for unclear/<name> at the generation they saw."""
        check_unclear_name(name)
        if label not in layout.DECISIONS:
            raise NotAllowed(f"label must be one of {', '.join(layout.DECISIONS)}")
        lease = self.queue.lease_of(name)
        if lease is not None and lease.keeps_out(reviewer):
            raise AlreadyDecided(name)  # another reviewer has it on screen (or is undoing it)
        source = storage.ObjectRef(self.prediction_bucket, name, generation)
        target = storage.ObjectRef(
            self.prediction_bucket, layout.human_decided(label, layout.parse(name).name)
        )

        def decision_metadata(seen: Mapping[str, str]) -> dict[str, str]:
            meta = {k: v for k, v in seen.items() if k != metadata.COPIED_FROM}
            return {
                **meta,
                metadata.REVIEWER: reviewer,
                metadata.DECIDED_AT: now().isoformat(),
                metadata.HUMAN_LABEL: label,
                metadata.MODEL_LABEL: meta.get(metadata.PREDICTED_LABEL, ""),
                metadata.MODEL_SCORE: meta.get(metadata.PREDICTED_SCORE, ""),
            }

        result = claims.move(
            source,
            target,
            decision_metadata,
            owner=reviewer,
            record=outcomes.recorder(self.line_segment),
        )
        if result.claim is None:
            raise NotFound(name)
        if result.claim.owner != reviewer:
            raise AlreadyDecided(name)
        storage.delete_quietly(self.prediction_bucket, layout.lease(name))
        return _decision(result.claim, result.copy, name)

    def undo(self, decided_name: str, generation: int | None, reviewer: str) -> Item:
        """Move the reviewer's own recent decision back to unclear/, leased to them, exactly once.
        A retry after an attempt that died half way finishes that attempt."""
        check_name(decided_name)
        place = layout.parse(decided_name)
        if place.folder != layout.HUMAN_DECIDED or not place.name:
            raise NotAllowed("only a decision under human_decided/ can be undone")
        source = storage.ObjectRef(self.prediction_bucket, decided_name, generation)
        decided = storage.get(source)
        if decided is None:
            if generation is None:
                raise NotFound(decided_name)
            standing = claims.read(self.prediction_bucket, source)  # an undo that died half way
            if standing is None or standing.owner != reviewer:
                raise NotFound(decided_name)
            meta = {}
        else:
            meta = decided.metadata or {}
            if meta.get(metadata.REVIEWER) != reviewer:
                raise NotFound(decided_name)
            if now() - datetime.fromisoformat(meta[metadata.DECIDED_AT]) > self.undo_window:
                raise NotAllowed("the undo window has passed")
            source = storage.ObjectRef(self.prediction_bucket, decided_name, decided.generation)
        original = layout.routed(layout.UNCLEAR, place.name)
        lease = self.queue.hold(original, reviewer)  # before it reappears: nobody else is served it
        restored = {k: v for k, v in meta.items() if k not in metadata.DECISION_KEYS}
        result = claims.move(
            source,
            storage.ObjectRef(self.prediction_bucket, original),
            restored,
            owner=reviewer,
            context={
                "undoes": outcomes.event_id(outcomes.Decided.MESSAGE, meta.get(metadata.COPIED_FROM, "")),
                "label": meta.get(metadata.HUMAN_LABEL, place.label),
            },
            record=outcomes.recorder(self.line_segment),
        )
        if result.claim is None or result.claim.owner != reviewer or result.copy is None:
            raise AlreadyDecided(decided_name)
        if result.copy.name != original:
            lease = self.queue.hold(result.copy.name, reviewer)
        kept = result.claim.metadata
        return Item(
            result.copy.name,
            result.copy.generation,
            kept.get(metadata.PREDICTED_LABEL, ""),
            score_of(kept),
            kept.get(metadata.ROUTED_AT, ""),
            lease,
            kept.get(metadata.UNCLEAR_REASON, ""),
            kept.get(metadata.UNCLEAR_DETAIL, ""),
        )


def _decision(claim: claims.Claim, copy: storage.ObjectRef | None, source: str) -> Decision:
    meta = claim.metadata
    return Decision(
        name=copy.name if copy else claim.destination,
        generation=copy.generation or 0 if copy else claim.copy_generation,
        label=meta.get(metadata.HUMAN_LABEL, claim.place.label),
        reviewer=claim.owner,
        decided_at=meta.get(metadata.DECIDED_AT, claim.claimed_at),
        source=source,
    )
