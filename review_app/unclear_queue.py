"""The review queue on the prediction bucket: which unclear image a reviewer sees, and leases.

Object names are keys, never paths: nothing here normalises `..`. A request may only name objects
under `unclear/` (or, for undo, the reviewer's own decision), and an object that does not exist
literally is simply not found.

A lease is `review/leases/<hash of the object name>` (the name in its metadata, so every servable
name has a lease of fixed length), created with `if_generation_match=0`, or taken over once expired
with `if_generation_match=<its generation>`, so any number of app instances agree.

Only images in the arrival-ordered index are served. Their moves put them there after deleting
their source, so a reviewer never takes a copy whose move could still copy it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as gexc

from inspection import layout, metadata, review_index, storage

PAGE_SIZE = 50
MAX_PAGES = 4  # a reviewer who skipped 200 images sees "nothing to review" rather than a slow page
COUNT_CAP = 1000
UNCLEAR_PREFIX = layout.UNCLEAR + "/"


class NotAllowed(ValueError):
    """The name is outside what a reviewer may touch (400)."""


class NotFound(LookupError):
    """No such object, or not this reviewer's (404)."""


class AlreadyDecided(Exception):
    """Someone else decided this image first, or has it on screen (409)."""


@dataclass(frozen=True)
class Item:
    """An unclear image leased to one reviewer."""

    name: str
    generation: int
    model_label: str
    model_score: float | None
    arrived: str
    lease_expires: str
    unclear_reason: str = ""
    unclear_detail: str = ""


@dataclass(frozen=True)
class Lease:
    reviewer: str
    expires: str
    generation: int  # of the lease object, for taking it over

    def live(self) -> bool:
        try:
            return datetime.fromisoformat(self.expires) > now()
        except ValueError:
            return False

    def keeps_out(self, reviewer: str) -> bool:
        """Whether this lease keeps `reviewer` from the image."""
        return self.reviewer != reviewer and self.live()


def now() -> datetime:
    return datetime.now(UTC)


def check_name(name: object) -> str:
    """400 for anything that is not the name of an image the product carries: the image's own name
    must pass predict's rule (layout.unservable), and the whole name GCS's."""
    if not isinstance(name, str) or not name:
        raise NotAllowed("invalid object name: expected a non-empty string")
    problem = layout.unservable(layout.parse(name).name or name)
    if problem is None and len(name.encode("utf-8")) > layout.MAX_NAME_BYTES:
        problem = f"is over {layout.MAX_NAME_BYTES} bytes"
    if problem:
        raise NotAllowed(f"invalid object name: it {problem}")
    return name


def check_unclear_name(name: object) -> str:
    """400 for anything but a plain object name under unclear/."""
    check_name(name)
    if not name.startswith(UNCLEAR_PREFIX) or len(name) == len(UNCLEAR_PREFIX):
        raise NotAllowed("only images under unclear/ can be reviewed")
    return name


def score_of(meta: dict) -> float | None:
    try:
        return float(meta[metadata.PREDICTED_SCORE])
    except (KeyError, ValueError):
        return None


class Queue:
    """The unclear images of one prediction bucket, leased one at a time."""

    def __init__(self, prediction_bucket: str, lease_seconds: int = 300):
        self.prediction_bucket = prediction_bucket
        self.lease_for = timedelta(seconds=lease_seconds)

    @property
    def bucket(self):
        return storage.client().bucket(self.prediction_bucket)

    def next_item(self, reviewer: str, exclude: set[str] = frozenset()) -> Item | None:
        """Lease the image that has waited longest and nobody else holds, from the arrival-ordered
        index. Bounded pages, never the whole prefix."""
        leases = self._leases()

        def available(name: str) -> bool:
            holder = leases.get(name)
            return name not in exclude and not (holder and holder.keeps_out(reviewer))

        for blob in self._candidates(available):
            item = self._take(blob, reviewer, leases.get(blob.name))
            if item is not None:
                return item
        return None

    def _candidates(self, available):
        """Unclear images this reviewer may take, oldest first as far as the index knows. An index
        entry names its image, so only an image that is available is read: the requests per next
        image stay flat however many images are leased or skipped."""
        for listed in self._pages(review_index.PREFIX):
            entry = review_index.of_blob(self.prediction_bucket, listed)
            if entry is None or not available(entry.name):
                continue
            blob = self.bucket.get_blob(entry.name, generation=entry.generation)
            if blob is None:  # decided meanwhile: its entry is stale
                storage.delete_quietly(self.prediction_bucket, listed.name, listed.generation)
                continue
            yield blob

    def _pages(self, prefix: str):
        token = None
        for _ in range(MAX_PAGES):
            page = self.bucket.list_blobs(prefix=prefix, max_results=PAGE_SIZE, page_token=token)
            yield from list(page)
            token = page.next_page_token
            if not token:
                return

    def count(self) -> tuple[int, bool]:
        """(count, capped): counted up to COUNT_CAP, so the cost stays flat."""
        names = self.bucket.list_blobs(
            prefix=UNCLEAR_PREFIX, max_results=COUNT_CAP, fields="items(name),nextPageToken"
        )
        count = sum(1 for _ in names)
        return count, count >= COUNT_CAP

    def release(self, name: str, reviewer: str) -> None:
        """Give a leased image back to the queue (skip)."""
        check_unclear_name(name)
        lease = self.lease_of(name)
        if lease is not None and lease.reviewer == reviewer:
            storage.delete_quietly(self.prediction_bucket, layout.lease(name), lease.generation)

    def lease_of(self, name: str) -> Lease | None:
        blob = self.bucket.get_blob(layout.lease(name))
        return _lease(blob) if blob is not None else None

    def hold(self, name: str, reviewer: str) -> str:
        """Lease `name` to `reviewer` whoever held it before (undo keeps the image with the undoer);
        returns when the lease expires."""
        expires = (now() + self.lease_for).isoformat()
        self._write(name, reviewer, expires, precondition=None)
        return expires

    def _leases(self) -> dict[str, Lease]:
        """Live leases: one or two per active reviewer, so listing them is cheap."""
        found = {}
        for blob in self.bucket.list_blobs(prefix=layout.LEASES + "/"):
            name = (blob.metadata or {}).get("name")
            if name:
                found[name] = _lease(blob)
        return found

    def _take(self, blob, reviewer: str, holder: Lease | None) -> Item | None:
        expires = (now() + self.lease_for).isoformat()
        try:
            self._write(blob.name, reviewer, expires, precondition=holder.generation if holder else 0)
        except gexc.PreconditionFailed:
            return None  # another reviewer got there first
        meta = blob.metadata or {}
        return Item(
            name=blob.name,
            generation=blob.generation,
            model_label=meta.get(metadata.PREDICTED_LABEL, ""),
            model_score=score_of(meta),
            arrived=meta.get(metadata.ROUTED_AT)
            or (blob.time_created.isoformat() if blob.time_created else ""),
            lease_expires=expires,
            unclear_reason=meta.get(metadata.UNCLEAR_REASON, ""),
            unclear_detail=meta.get(metadata.UNCLEAR_DETAIL, ""),
        )

    def _write(self, name: str, reviewer: str, expires: str, precondition: int | None) -> None:
        lease = self.bucket.blob(layout.lease(name))
        lease.metadata = {"name": name, "reviewer": reviewer, "expires": expires}
        lease.upload_from_string(
            json.dumps({"reviewer": reviewer, "expires": expires}),
            content_type="application/json",
            if_generation_match=precondition,
        )


def _lease(blob) -> Lease:
    meta = blob.metadata or {}
    return Lease(meta.get("reviewer", ""), meta.get("expires", ""), blob.generation)
