"""A reviewer's decision on an unclear image, and its undo.

A decision is the pipeline's own move (storage.move) from `unclear/<name>`, at the generation the
reviewer saw, to `human_decided/<label>/<name>`. The first decision recorded for that generation
stands (the move's claim): the same reviewer asking twice gets that decision twice, anyone else is
told it was decided, and a decision whose request died half way is finished by the next attempt.
Undo is the same move in reverse, leased to the undoer first so nobody else is served the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from inspection import daily, layout, logs, metadata, review_index, storage
from review_app.unclear_queue import (
    UNCLEAR_PREFIX,
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
    label: str
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
        if label not in layout.LABELS:
            raise NotAllowed(f"label must be one of {', '.join(layout.LABELS)}")
        source = storage.ObjectRef(self.prediction_bucket, name, generation)
        seen = self.queue.bucket.get_blob(name, generation=generation)
        if seen is None:
            return self._recorded(source, reviewer)
        lease = self.queue.lease_of(name)
        if lease is not None and lease.keeps_out(reviewer):
            raise AlreadyDecided(name)  # another reviewer has it on screen (or is undoing it)
        meta = {k: v for k, v in (seen.metadata or {}).items() if k != metadata.COPIED_FROM}
        meta.update(
            {
                metadata.REVIEWER: reviewer,
                metadata.DECIDED_AT: now().isoformat(),
                metadata.HUMAN_LABEL: label,
                metadata.MODEL_LABEL: meta.get(metadata.PREDICTED_LABEL, ""),
                metadata.MODEL_SCORE: meta.get(metadata.PREDICTED_SCORE, ""),
            }
        )
        target = storage.ObjectRef(
            self.prediction_bucket, layout.human_decided(label, name[len(UNCLEAR_PREFIX) :])
        )
        result = storage.move(source, target, meta, owner=reviewer)
        if result.claim is None or result.claim.owner != reviewer:
            raise AlreadyDecided(name)
        storage.delete_quietly(self.prediction_bucket, layout.lease(name))
        if metadata.ROUTED_AT in meta:
            review_index.remove(self.prediction_bucket, name, generation, meta[metadata.ROUTED_AT])
        decision = _decision(result.claim, result.copy, name)
        inner = name[len(UNCLEAR_PREFIX) :]
        claimed = result.claim.metadata
        daily.record(
            self.prediction_bucket,
            result.claim,
            daily.DECIDED,
            line=layout.line_of(inner, self.line_segment),
            label=decision.label,
            agreement=agreement(decision.label, claimed),
            model=claimed.get(metadata.MODEL, ""),
            threshold=claimed.get(metadata.THRESHOLD),
            reviewer=reviewer,
            image=inner,
            object=decision.name,
            model_label=claimed.get(metadata.MODEL_LABEL, ""),
            model_score=claimed.get(metadata.MODEL_SCORE, ""),
            original=claimed.get(metadata.COPIED_FROM, ""),
        )
        logs.info(
            "decided",
            image=name,
            line=layout.line_of(inner, self.line_segment),
            folder=layout.HUMAN_DECIDED,
            label=decision.label,
            reviewer=reviewer,
            agreement=agreement(decision.label, meta),
            model=meta.get(metadata.MODEL, ""),
            model_label=meta[metadata.MODEL_LABEL],
            model_score=meta[metadata.MODEL_SCORE],
            threshold=meta.get(metadata.THRESHOLD),
            waited_s=_waited(meta),
            destination=decision.name,
            outcome=str(result.outcome),
        )
        return decision

    def undo(self, decided_name: str, reviewer: str) -> Item:
        """Move the reviewer's own recent decision back to unclear/, leased to them, exactly once."""
        check_name(decided_name)
        if not decided_name.startswith(DECIDED_PREFIX):
            raise NotAllowed("only a decision under human_decided/ can be undone")
        decided = self.queue.bucket.get_blob(decided_name)
        meta = (decided.metadata or {}) if decided else {}
        if decided is None or meta.get(metadata.REVIEWER) != reviewer:
            raise NotFound(decided_name)
        if now() - datetime.fromisoformat(meta[metadata.DECIDED_AT]) > self.undo_window:
            raise NotAllowed("the undo window has passed")
        original = UNCLEAR_PREFIX + decided_name[len(DECIDED_PREFIX) :].split("/", 1)[1]
        lease = self.queue.hold(original, reviewer)  # before it reappears: nobody else is served it
        restored = {k: v for k, v in meta.items() if k not in metadata.DECISION_KEYS}
        source = storage.ObjectRef(self.prediction_bucket, decided_name, decided.generation)
        result = storage.move(
            source, storage.ObjectRef(self.prediction_bucket, original), restored, owner=reviewer
        )
        if result.claim is None or result.claim.owner != reviewer or result.copy is None:
            raise AlreadyDecided(decided_name)
        if result.copy.name != original:
            lease = self.queue.hold(result.copy.name, reviewer)
        if metadata.ROUTED_AT in restored:  # back in the queue where it was: its wait goes on
            review_index.add(
                self.prediction_bucket, result.copy.name, result.copy.generation, restored[metadata.ROUTED_AT]
            )
        image = original[len(UNCLEAR_PREFIX) :]
        daily.record(
            self.prediction_bucket,
            result.claim,
            daily.UNDONE,
            line=layout.line_of(image, self.line_segment),
            reviewer=reviewer,
            image=image,
            object=decided_name,
            label=meta.get(metadata.HUMAN_LABEL, ""),
        )
        logs.info(
            "undone", image=result.copy.name, reviewer=reviewer, was=decided_name, outcome=str(result.outcome)
        )
        return Item(
            result.copy.name,
            result.copy.generation,
            restored.get(metadata.PREDICTED_LABEL, ""),
            score_of(restored),
            restored.get(metadata.ROUTED_AT, ""),
            lease,
        )

    def _recorded(self, source: storage.ObjectRef, reviewer: str) -> Decision:
        """The generation is gone: the decision recorded for it, if it is this reviewer's."""
        claim = storage.claim_of(source, self.prediction_bucket)
        if claim is None:
            raise NotFound(source.name)
        if claim.owner != reviewer:
            raise AlreadyDecided(source.name)
        return _decision(claim, None, source.name)


NO_MODEL = "none"


def agreement(human_label: str, meta: dict) -> str:
    """`agree` or `overrule` against the model's label; `no_model` where there was none to agree with."""
    if meta.get(metadata.MODEL, NO_MODEL) == NO_MODEL or not meta.get(metadata.PREDICTED_LABEL):
        return "no_model"
    return "agree" if meta[metadata.PREDICTED_LABEL] == human_label else "overrule"


def _waited(meta: dict) -> float | None:
    """Seconds the image waited in unclear/ before this decision."""
    try:
        return round((now() - datetime.fromisoformat(meta[metadata.ROUTED_AT])).total_seconds(), 1)
    except (KeyError, ValueError):
        return None


def _decision(claim: storage.Claim, copy: storage.ObjectRef | None, source: str) -> Decision:
    meta = claim.metadata
    return Decision(
        name=copy.name if copy else claim.destination,
        generation=copy.generation if copy else 0,
        label=meta.get(metadata.HUMAN_LABEL, claim.destination.split("/")[1]),
        reviewer=claim.owner,
        decided_at=meta.get(metadata.DECIDED_AT, claim.claimed_at),
        source=source,
    )
