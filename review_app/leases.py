"""Leases: which unclear image is on whose screen, in which tab, for how long.

A lease is one object, `review/leases/<hash of the image name>` (layout.lease: fixed length, so any
image the product carries has one), whose metadata names the image and the generation the reviewer
was shown, the reviewer and their tab, the kind, and when it ends. It is created with
`if_generation_match=0` and replaced only over the generation read, so any number of app instances
agree on who holds what.

- A `view` lease is an image on screen. The page renews it while the image is visible, so a
  reviewer who studies one image for long keeps it.
- A `prefetch` lease is the next image, loaded but not yet shown. It is weak: a reviewer at the end
  of the queue may take it over, so nobody sits idle while an image waits in someone's prefetch.
  Showing it promotes it to `view` (or finds it taken, and fetches another).
- A tab is one page: leases of one reviewer in two tabs keep each other out, so two tabs never
  share an image.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as gexc

from inspection import layout, storage

VIEW, PREFETCH = "view", "prefetch"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Lease:
    name: str  # the unclear image
    image_generation: int  # the generation the reviewer was shown
    reviewer: str
    tab: str
    kind: str  # VIEW or PREFETCH
    expires: str
    generation: int = 0  # of the lease object, for replacing it
    # An undo in flight: the decided generation (gs://…#generation) this tab is moving back here.
    # If the request dies, whoever next finds the lease expired finishes that move (Queue).
    undoes: str = ""

    def live(self) -> bool:
        try:
            return datetime.fromisoformat(self.expires) > now()
        except ValueError:
            return False

    def held_by(self, reviewer: str, tab: str) -> bool:
        return self.live() and (self.reviewer, self.tab) == (reviewer, tab)

    def keeps_out(self, reviewer: str, tab: str) -> bool:
        """Whether this lease keeps that reviewer's tab from the image."""
        return self.live() and (self.reviewer, self.tab) != (reviewer, tab)


class Leases:
    """The leases of one prediction bucket."""

    def __init__(self, bucket: str, seconds: int):
        self.bucket_name = bucket
        self.length = timedelta(seconds=seconds)

    @property
    def bucket(self):
        return storage.client().bucket(self.bucket_name)

    def all(self) -> dict[str, Lease]:
        """Every lease by image name: one or two per active tab, so listing them is cheap."""
        found = {}
        for blob in self.bucket.list_blobs(prefix=layout.LEASES + "/"):
            lease = _lease(blob)
            if lease is not None:
                found[lease.name] = lease
        return found

    def written(self, lease: Lease) -> datetime:
        """When the lease was last taken or renewed: a full length before it ends."""
        try:
            return datetime.fromisoformat(lease.expires) - self.length
        except ValueError:
            return datetime.min.replace(tzinfo=UTC)

    def of(self, name: str) -> Lease | None:
        blob = self.bucket.get_blob(layout.lease(name))
        return _lease(blob) if blob is not None else None

    def take(
        self,
        name: str,
        image_generation: int,
        reviewer: str,
        tab: str,
        kind: str,
        over: Lease | None,
        undoes: str = "",
    ) -> Lease | None:
        """A new lease, replacing `over` (None: where there is none); None if another tab was faster."""
        lease = Lease(
            name, image_generation, reviewer, tab, kind, (now() + self.length).isoformat(), undoes=undoes
        )
        return self._write(lease, over.generation if over is not None else 0)

    def extend(self, lease: Lease, kind: str | None = None) -> Lease | None:
        """The same lease for another full length (and of another kind); None if it was taken."""
        return self._write(
            replace(lease, kind=kind or lease.kind, expires=(now() + self.length).isoformat()),
            lease.generation,
        )

    def drop(self, lease: Lease, retry_for: float | None = None) -> None:
        """Release exactly this lease (not one someone took since); see storage.delete_quietly."""
        storage.delete_quietly(self.bucket_name, layout.lease(lease.name), lease.generation, retry_for)

    def _write(self, lease: Lease, precondition: int) -> Lease | None:
        blob = self.bucket.blob(layout.lease(lease.name))
        blob.metadata = {
            "name": lease.name,
            "image_generation": str(lease.image_generation),
            "reviewer": lease.reviewer,
            "tab": lease.tab,
            "kind": lease.kind,
            "expires": lease.expires,
            **({"undoes": lease.undoes} if lease.undoes else {}),
        }
        with contextlib.suppress(gexc.PreconditionFailed):
            blob.upload_from_string(
                json.dumps({"reviewer": lease.reviewer, "expires": lease.expires}),
                content_type="application/json",
                if_generation_match=precondition,
            )
            return replace(lease, generation=int(blob.generation))
        return None


def _lease(blob) -> Lease | None:
    meta = blob.metadata or {}
    if not meta.get("name"):
        return None  # a lease from before leases named their image: expired within minutes anyway
    try:
        image_generation = int(meta.get("image_generation") or 0)
    except ValueError:
        image_generation = 0
    return Lease(
        meta["name"],
        image_generation,
        meta.get("reviewer", ""),
        meta.get("tab", ""),
        meta.get("kind", VIEW),
        meta.get("expires", ""),
        int(blob.generation),
        meta.get("undoes", ""),
    )
