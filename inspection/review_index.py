"""The reviewers' queue in arrival order: one small object per unclear image, named so that GCS's
lexicographic listing is oldest first (`review/queue/<routed at, UTC>-<hash>`).

Listing `unclear/` itself gives name order, so an image that arrived hours ago under a late name
would wait behind newer ones. The index costs one small write when an image's move to unclear/ is
recorded (after its source is deleted, so a reviewer is never served a copy whose move might still
copy again) and one delete when a reviewer decides it; the review app reads one bounded page of it
per next image, whatever the queue's length. An entry whose image is gone is dropped the next time
it is met; the sweep adds entries for unclear images that have none (inspection/sweep.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as gexc

from inspection import layout, storage

PREFIX = layout.REVIEW_QUEUE + "/"


RESERVED_S = 300  # an undone image waits this long for the reviewer who undid it


@dataclass(frozen=True)
class Entry:
    """Unclear image `name` (at `generation`) in `bucket`, which arrived at `routed_at`; an undone
    image is reserved for a while for the one who undid it (`reserved_for`, until `reserved_until`),
    so that nobody else is served it before their lease is written."""

    bucket: str
    name: str
    generation: int
    routed_at: str
    reserved_for: str = ""
    reserved_until: str = ""

    def open_to(self, who: str, now: datetime) -> bool:
        if not self.reserved_for or self.reserved_for == who:
            return True
        try:
            return datetime.fromisoformat(self.reserved_until) <= now
        except ValueError:
            return True

    @property
    def object_name(self) -> str:
        when = datetime.fromisoformat(self.routed_at).strftime("%Y%m%dT%H%M%S.%f")
        return f"{PREFIX}{when}-{layout.digest(f'{self.name}#{self.generation}', 20)}"


def add(entry: Entry) -> None:
    """Queue the image under its arrival time; safe to repeat."""
    blob = storage.client().bucket(entry.bucket).blob(entry.object_name)
    reserved = {"reserved_for": entry.reserved_for, "reserved_until": entry.reserved_until}
    blob.metadata = {
        "name": entry.name,
        "generation": str(entry.generation),
        "routed_at": entry.routed_at,
        **(reserved if entry.reserved_for else {}),
    }
    with contextlib.suppress(gexc.PreconditionFailed):
        blob.upload_from_string(b"", if_generation_match=0)


def remove(entry: Entry) -> None:
    """A stale entry is dropped by whoever meets it, so a failing storage does not hold the
    reviewer who decided the image through the client's two minutes of retries."""
    storage.delete_quietly(entry.bucket, entry.object_name, retry_for=storage.TIDY_RETRY_S)


def of_blob(bucket: str, blob) -> Entry | None:
    """The entry an index object describes, or None if it is not one."""
    meta = blob.metadata or {}
    try:
        return Entry(
            bucket,
            meta["name"],
            int(meta["generation"]),
            meta["routed_at"],
            meta.get("reserved_for", ""),
            meta.get("reserved_until", ""),
        )
    except (KeyError, ValueError):
        return None
