"""Human review on the prediction bucket: leases, decisions, undo and the audit trail.

Object names are keys, never paths: nothing here normalises `..`. A request may only name objects
under `unclear/` (or, for undo, the reviewer's own decision), and an object that does not exist
literally is simply not found.

Concurrency rests on GCS generation preconditions only, so any number of app instances agree:
- a lease is `review/leases/<object>`, created with `if_generation_match=0`, or taken over once
  expired with `if_generation_match=<its generation>`;
- a decision is the pipeline's own lossless move (storage.move) from `unclear/<name>`, at the
  generation the reviewer saw, to `human_decided/<label>/<name>`, made exclusive: deleting the
  source decides who won, and a reviewer who lost has their copy taken back and is told
  "already decided". Undo is the same move in reverse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as gexc

from inspection import layout, logs, storage

PAGE_SIZE = 50
MAX_PAGES = 4  # a reviewer who skipped 200 images sees "nothing to review" rather than a slow page
COUNT_CAP = 1000
UNCLEAR_PREFIX = layout.UNCLEAR + "/"
DECIDED_PREFIX = layout.HUMAN_DECIDED + "/"


class NotAllowed(ValueError):
    """The name is outside what a reviewer may touch (400)."""


class NotFound(LookupError):
    """No such object, or not this reviewer's (404)."""


class AlreadyDecided(Exception):
    """Someone else decided this image first (409)."""


@dataclass(frozen=True)
class Item:
    """An unclear image leased to one reviewer."""

    name: str
    generation: int
    model_label: str
    model_score: float | None
    arrived: str
    lease_expires: str


@dataclass(frozen=True)
class Decision:
    name: str  # human_decided/<label>/<name>
    generation: int
    label: str
    reviewer: str
    decided_at: str
    source: str  # unclear/<name>


def now() -> datetime:
    return datetime.now(UTC)


def check_unclear_name(name: str) -> str:
    """400 for anything but a plain object name under unclear/."""
    _check_text(name)
    if not name.startswith(UNCLEAR_PREFIX) or len(name) == len(UNCLEAR_PREFIX):
        raise NotAllowed("only images under unclear/ can be reviewed")
    return name


def _check_text(name: object) -> None:
    if not isinstance(name, str) or not name or len(name.encode()) > 1024:
        raise NotAllowed("invalid object name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or "\\" in name:
        raise NotAllowed("invalid object name")


class Reviews:
    """Review operations on one prediction bucket."""

    def __init__(self, bucket: str, lease_seconds: int = 300, undo_seconds: int = 120):
        self.bucket_name = bucket
        self.lease = timedelta(seconds=lease_seconds)
        self.undo_window = timedelta(seconds=undo_seconds)

    @property
    def bucket(self):
        return storage.client().bucket(self.bucket_name)

    # the queue -------------------------------------------------------------------------------
    def next_item(self, reviewer: str, exclude: set[str] = frozenset()) -> Item | None:
        """Lease the first unclear image nobody else holds; bounded pages, never the whole prefix."""
        leases = self._leases()
        token = None
        for _ in range(MAX_PAGES):
            page = self.bucket.list_blobs(prefix=UNCLEAR_PREFIX, max_results=PAGE_SIZE, page_token=token)
            blobs = list(page)
            for blob in blobs:
                if blob.name in exclude:
                    continue
                holder = leases.get(blob.name)
                if holder and holder["reviewer"] != reviewer and not self._expired(holder):
                    continue
                item = self._take_lease(blob, reviewer, holder)
                if item is not None:
                    return item
            token = page.next_page_token
            if not token:
                return None
        return None

    def count_unclear(self) -> tuple[int, bool]:
        """(count, capped): counted up to COUNT_CAP, so the cost stays flat."""
        names = self.bucket.list_blobs(
            prefix=UNCLEAR_PREFIX, max_results=COUNT_CAP, fields="items(name),nextPageToken"
        )
        count = sum(1 for _ in names)
        return count, count >= COUNT_CAP

    def release(self, name: str, reviewer: str) -> None:
        """Give a leased image back to the queue (skip)."""
        check_unclear_name(name)
        blob = self.bucket.get_blob(layout.lease(name))
        if blob is not None and json.loads(blob.download_as_bytes()).get("reviewer") == reviewer:
            storage.delete_quietly(self.bucket_name, blob.name, blob.generation)

    def _leases(self) -> dict[str, dict]:
        """Live leases: one or two per active reviewer, so listing them is cheap."""
        held = {}
        for blob in self.bucket.list_blobs(prefix=layout.LEASES + "/"):
            meta = blob.metadata or {}
            name = blob.name[len(layout.LEASES) + 1 :]
            held[name] = {
                "reviewer": meta.get("reviewer", ""),
                "expires": meta.get("expires", ""),
                "generation": blob.generation,
            }
        return held

    def _expired(self, lease: dict) -> bool:
        try:
            return datetime.fromisoformat(lease["expires"]) <= now()
        except ValueError:
            return True

    def _take_lease(self, blob, reviewer: str, holder: dict | None) -> Item | None:
        expires = now() + self.lease
        lease = self.bucket.blob(layout.lease(blob.name))
        lease.metadata = {
            "reviewer": reviewer,
            "expires": expires.isoformat(),
            "image_generation": str(blob.generation),
        }
        precondition = holder["generation"] if holder else 0
        try:
            lease.upload_from_string(
                json.dumps({"reviewer": reviewer, "expires": expires.isoformat()}),
                content_type="application/json",
                if_generation_match=precondition,
            )
        except gexc.PreconditionFailed:
            return None  # another reviewer got there first
        meta = blob.metadata or {}
        try:
            score = float(meta["predicted_score"])
        except (KeyError, ValueError):
            score = None
        return Item(
            name=blob.name,
            generation=blob.generation,
            model_label=meta.get("predicted_label", ""),
            model_score=score,
            arrived=meta.get("routed_at") or _iso(blob.time_created),
            lease_expires=expires.isoformat(),
        )

    # decisions -------------------------------------------------------------------------------
    def decide(self, name: str, generation: int, label: str, reviewer: str) -> Decision:
        """Record one reviewer's label for unclear/<name> at the generation they saw.

        The first decision recorded for that generation stands (storage.move's claim): the same
        reviewer asking twice gets that decision twice, anyone else is told it was decided.
        """
        check_unclear_name(name)
        if label not in layout.LABELS:
            raise NotAllowed(f"label must be one of {', '.join(layout.LABELS)}")
        source = storage.ObjectRef(self.bucket_name, name, generation)
        seen = self.bucket.get_blob(name, generation=generation)
        if seen is None:
            return self._recorded(source, reviewer)
        holder = self._lease_of(name)
        if holder and holder["reviewer"] != reviewer and not self._expired(holder):
            raise AlreadyDecided(name)  # another reviewer has it on screen (or is undoing it)
        inner = name[len(UNCLEAR_PREFIX) :]
        meta = dict(seen.metadata or {})
        meta.pop(storage.COPIED_FROM, None)
        meta.update(
            {
                "reviewer": reviewer,
                "decided_at": now().isoformat(),
                "human_label": label,
                "model_label": meta.get("predicted_label", ""),
                "model_score": meta.get("predicted_score", ""),
            }
        )
        result = storage.move(
            source,
            storage.ObjectRef(self.bucket_name, layout.human_decided(label, inner)),
            meta,
            owner=reviewer,
        )
        if result.claim is None or result.claim.owner != reviewer:
            raise AlreadyDecided(name)
        storage.delete_quietly(self.bucket_name, layout.lease(name))
        decision = _decision(result.claim, result.copy, name)
        logs.info(
            "decided",
            image=name,
            label=decision.label,
            reviewer=reviewer,
            destination=decision.name,
            outcome=str(result.outcome),
            model_label=meta["model_label"],
            model_score=meta["model_score"],
        )
        return decision

    def _recorded(self, source: storage.ObjectRef, reviewer: str) -> Decision:
        """The generation is gone: the decision recorded for it, if it is this reviewer's."""
        claim = storage.claim_of(source, self.bucket_name)
        if claim is None:
            raise NotFound(source.name)
        if claim.owner != reviewer:
            raise AlreadyDecided(source.name)
        return _decision(claim, None, source.name)

    def undo(self, decided_name: str, reviewer: str) -> Item:
        """Move the reviewer's own recent decision back to unclear/, leased to them, exactly once."""
        _check_text(decided_name)
        if not decided_name.startswith(DECIDED_PREFIX):
            raise NotAllowed("only a decision under human_decided/ can be undone")
        decided = self.bucket.get_blob(decided_name)
        meta = (decided.metadata or {}) if decided else {}
        if decided is None or meta.get("reviewer") != reviewer:
            raise NotFound(decided_name)
        if now() - datetime.fromisoformat(meta["decided_at"]) > self.undo_window:
            raise NotAllowed("the undo window has passed")
        inner = decided_name[len(DECIDED_PREFIX) :].split("/", 1)[1]
        original = UNCLEAR_PREFIX + inner
        # The undoer keeps the image: lease it before it reappears, so nobody else is served it.
        lease = self._take_lease_on(original, reviewer)
        restored = {k: v for k, v in meta.items() if k not in _DECISION_KEYS}
        source = storage.ObjectRef(self.bucket_name, decided_name, decided.generation)
        result = storage.move(source, storage.ObjectRef(self.bucket_name, original), restored, owner=reviewer)
        if result.claim is None or result.claim.owner != reviewer or result.copy is None:
            raise AlreadyDecided(decided_name)
        if result.copy.name != original:
            lease = self._take_lease_on(result.copy.name, reviewer)
        logs.info(
            "undone", image=result.copy.name, reviewer=reviewer, was=decided_name, outcome=str(result.outcome)
        )
        return Item(
            result.copy.name,
            result.copy.generation,
            restored.get("predicted_label", ""),
            _float(restored.get("predicted_score")),
            restored.get("routed_at", ""),
            lease,
        )

    def _lease_of(self, name: str) -> dict | None:
        blob = self.bucket.get_blob(layout.lease(name))
        if blob is None:
            return None
        meta = blob.metadata or {}
        return {
            "reviewer": meta.get("reviewer", ""),
            "expires": meta.get("expires", ""),
            "generation": blob.generation,
        }

    def _take_lease_on(self, name: str, reviewer: str) -> str:
        """Lease `name` to `reviewer` whoever held it before; returns when it expires."""
        expires = (now() + self.lease).isoformat()
        lease = self.bucket.blob(layout.lease(name))
        lease.metadata = {"reviewer": reviewer, "expires": expires}
        lease.upload_from_string(
            json.dumps({"reviewer": reviewer, "expires": expires}), content_type="application/json"
        )
        return expires

    # audit -----------------------------------------------------------------------------------
    def decisions(self, start: datetime, end: datetime) -> list[dict]:
        """Every decision made in [start, end), oldest first."""
        rows = []
        for blob in self.bucket.list_blobs(prefix=DECIDED_PREFIX):
            meta = blob.metadata or {}
            try:
                when = datetime.fromisoformat(meta["decided_at"])
            except (KeyError, ValueError):
                continue
            if start <= when < end:
                rows.append(
                    {
                        "decided_at": meta["decided_at"],
                        "reviewer": meta.get("reviewer", ""),
                        "image": blob.name.split("/", 2)[2],
                        "human_label": meta.get("human_label", ""),
                        "model_label": meta.get("model_label", ""),
                        "model_score": meta.get("model_score", ""),
                        "object": blob.name,
                        "original": meta.get(storage.COPIED_FROM, ""),
                    }
                )
        return sorted(rows, key=lambda row: row["decided_at"])


_DECISION_KEYS = {"reviewer", "decided_at", "human_label", "model_label", "model_score", storage.COPIED_FROM}


def _decision(claim: storage.Claim, copy: storage.ObjectRef | None, source: str) -> Decision:
    meta = claim.metadata
    return Decision(
        name=copy.name if copy else claim.destination,
        generation=copy.generation if copy else 0,
        label=meta.get("human_label", claim.destination.split("/")[1]),
        reviewer=claim.owner,
        decided_at=meta.get("decided_at", claim.claimed_at),
        source=source,
    )


def _iso(value) -> str:
    return value.isoformat() if value else ""


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
