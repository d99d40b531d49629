"""A reviewer's decision on an unclear image, and its undo.

A decision is the pipeline's own claimed move (inspection/claims.py) from `unclear/<name>`, at the
generation the reviewer was shown, to `human_decided/<label>/<name>`, accepted only from the tab
that holds the image's lease. The first decision recorded for that generation stands, and every
other request is told the truth about it: the same tab asking again gets the same decision (a
double click, a retried POST), another tab of the same reviewer or another reviewer is told what
was stored, and a request for an image decided and since undone is told so. A decision whose
request died half way is finished by the next attempt, or, when its tab never asks again, by the
next request from anyone once its lease has expired (Queue.next_item). Undo is the same move in
reverse; the image comes back reserved for the undoer's tab and leased to it, and its lease is
written first, so a dead undo is finished the same way. Both record their outcome
(inspection/outcomes.py) from the claim that decided it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from inspection import claims, layout, metadata, outcomes, storage
from review_app.errors import AlreadyDecided, NotAllowed, NotFound, Refused
from review_app.leases import now
from review_app.unclear_queue import Item, Queue, check_name, check_unclear_name


@dataclass(frozen=True)
class Decision:
    name: str  # human_decided/<label>/<name>
    generation: int
    label: str  # the label stored
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

    def decide(self, name: str, generation: int, label: str, reviewer: str, tab: str = "") -> Decision:
        """Record one reviewer's answer for unclear/<name> at the generation their tab was shown."""
        check_unclear_name(name)
        if label not in layout.DECISIONS:
            raise NotAllowed(f"label must be one of {', '.join(layout.DECISIONS)}")
        source = storage.ObjectRef(self.prediction_bucket, name, generation)
        try:
            # The source is read beside the check that this tab holds it: one round trip, not two.
            _, held = storage.at_once(
                lambda: self.queue.holding(name, generation, reviewer, tab), lambda: storage.get(source)
            )
        except Refused:
            # Not this tab's to decide now; but if a decision on it stands, that is the true answer
            # (the same tab asking again gets its decision). Read only here: on the way to a new
            # decision, the move reads the claim itself.
            standing = claims.read(self.prediction_bucket, source)
            if standing is not None:
                return self._answer(standing, name, label, reviewer, tab)
            raise
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
            context={"tab": tab},
            record=outcomes.recorder(self.line_segment),
            held=held,
        )
        if result.claim is None:
            raise Refused("gone", "this image is no longer waiting for a decision")
        if (result.claim.owner, result.claim.context.get("tab", "")) != (reviewer, tab):
            return self._answer(result.claim, name, label, reviewer, tab)
        # Stored: a lease left by a failing storage runs out by itself, and must not make the page
        # say "not saved".
        lease = functools.partial(
            storage.delete_quietly, self.prediction_bucket, layout.lease(name), retry_for=storage.TIDY_RETRY_S
        )
        storage.tidy(lease, "dropping a decided image's lease", image=name)
        return _decision(result.claim, result.copy, name)

    def _answer(self, standing: claims.Claim, name: str, label: str, reviewer: str, tab: str) -> Decision:
        """What to tell a request about an image whose decision is already recorded."""
        if standing.state != claims.State.DONE:  # its request died half way: finish it
            claims.finish(
                standing.source_ref, self.prediction_bucket, record=outcomes.recorder(self.line_segment)
            )
            standing = claims.read(self.prediction_bucket, standing.source_ref) or standing
        stored = standing.metadata.get(metadata.HUMAN_LABEL, standing.place.label)
        if standing.owner != reviewer:
            raise AlreadyDecided(name, f"already decided by another reviewer, as {stored}", stored=stored)
        if standing.context.get("tab", "") != tab:
            raise AlreadyDecided(
                name, f"decided as {stored} in another of your tabs", "other_tab", stored=stored
            )
        # Undone first: an undone decision is stored nowhere, whatever label this request carries.
        copy = standing.copy_ref
        if standing.state == claims.State.COPIED or (copy is not None and storage.get(copy) is None):
            raise Refused(
                "undone",
                f"you decided it as {stored}, and that was undone since; nothing is stored, and the "
                "image is back in the queue",
                stored=stored,
            )
        if stored != label:
            raise AlreadyDecided(name, f"you had already decided it as {stored}", stored=stored)
        return _decision(standing, copy, name)

    def undo(self, decided_name: str, generation: int | None, reviewer: str, tab: str = "") -> Item:
        """Move the reviewer's own recent decision back to unclear/, leased to their tab, exactly
        once. A retry after an attempt that died half way finishes that attempt."""
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
        restored = {k: v for k, v in meta.items() if k not in metadata.DECISION_KEYS}
        # Held for this tab before anything moves, and counted against the reviewer's cap: if this
        # request dies half way, the lease outlives it and says which move to finish (Queue).
        pending = self.queue.pending_undo(source, reviewer, tab)
        result = claims.move(
            source,
            storage.ObjectRef(self.prediction_bucket, layout.routed(layout.UNCLEAR, place.name)),
            restored,
            owner=reviewer,
            context={
                "undoes": outcomes.event_id(outcomes.Decided.MESSAGE, meta.get(metadata.COPIED_FROM, "")),
                "label": meta.get(metadata.HUMAN_LABEL, place.label),
                "tab": tab,
            },
            record=outcomes.recorder(self.line_segment),
        )
        if result.claim is None or result.claim.owner != reviewer or result.copy is None or result.handed_on:
            raise AlreadyDecided(decided_name, "the image changed since; nothing was undone", "changed")
        lease = self.queue.hold(result.copy.name, result.copy.generation, reviewer, tab)
        # Done and held for the tab: the undo's own lease only tidies now, and runs out by itself.
        drop = functools.partial(self.queue.leases.drop, pending, retry_for=storage.TIDY_RETRY_S)
        storage.tidy(drop, "dropping an undo's own lease", image=decided_name)
        return Item.of(result.copy.name, result.copy.generation, result.claim.metadata, lease)


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
