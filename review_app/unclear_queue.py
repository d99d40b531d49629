"""Which unclear image a reviewer's tab gets next, and holding it while it is on screen.

Images are served oldest first from the arrival-ordered index (inspection/review_index.py), one
bounded page at a time: the same few storage requests however long the queue. Only indexed images
are served; their moves index them after deleting their source, so a reviewer never takes a copy
whose move could still copy it again.

Object names are keys, never paths: nothing here normalises `..`. A request may only name objects
under `unclear/` (or, for undo, the reviewer's own decision), and an object that does not exist
literally is simply not found.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import timedelta

from inspection import claims, layout, metadata, moving, outcomes, review_index, storage
from inspection.errors import Held
from review_app.errors import NotAllowed, Refused
from review_app.leases import PREFETCH, VIEW, Lease, Leases, now

PAGE_SIZE = 50
MAX_PAGES = 4  # a reviewer who skipped 200 images sees "nothing to review" rather than a slow page
COUNT_CAP = 1000
MAX_LEASES = 4  # per reviewer: the image on screen and the next one, in up to two tabs
QUIET_GRACE = timedelta(seconds=15)  # a renewal may be late by this much and the tab still be there
UNCLEAR_PREFIX = layout.UNCLEAR + "/"


@dataclass(frozen=True)
class Item:
    """An unclear image leased to one reviewer's tab."""

    name: str
    generation: int
    model_label: str
    model_score: float | None
    arrived: str
    lease_expires: str
    unclear_reason: str = ""
    unclear_detail: str = ""
    lease: str = VIEW  # view: on screen; prefetch: loaded, not shown yet
    heatmap: str = ""  # the anomaly map predict kept (layout.heatmap), if any

    @classmethod
    def of(
        cls, name: str, generation: int, meta: dict, expires: str, kind: str = VIEW, arrived: str = ""
    ) -> Item:
        """An unclear image leased until `expires`, as its metadata (move's, kept through a decision
        and its undo) describes it; `arrived` when the metadata does not say."""
        heatmap = meta.get(metadata.HEATMAP, "")
        return cls(
            name=name,
            generation=generation,
            model_label=meta.get(metadata.PREDICTED_LABEL, ""),
            model_score=score_of(meta),
            arrived=meta.get(metadata.ROUTED_AT) or arrived,
            lease_expires=expires,
            unclear_reason=meta.get(metadata.UNCLEAR_REASON, ""),
            unclear_detail=meta.get(metadata.UNCLEAR_DETAIL, ""),
            lease=kind,
            heatmap=heatmap if layout.HEATMAP_NAME.match(heatmap) else "",
        )


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
    """The unclear images of one prediction bucket, leased one at a time to each reviewer's tab."""

    def __init__(self, prediction_bucket: str, lease_seconds: int = 300, line_segment: int = 1):
        self.prediction_bucket = prediction_bucket
        self.leases = Leases(prediction_bucket, lease_seconds)
        self.line_segment = line_segment

    @property
    def bucket(self):
        return storage.client().bucket(self.prediction_bucket)

    def next_item(
        self,
        reviewer: str,
        tab: str = "",
        kind: str = VIEW,
        exclude: frozenset[str] = frozenset(),
        reclaim: bool = False,
    ) -> Item | None:
        """Lease the image that has waited longest and nobody else holds. At the end of the queue,
        an image another tab only prefetched is taken over for one that will show it. `reclaim`:
        the reviewer's other tabs are gone; what they held may be taken back (`_make_room`)."""
        # The two listings wait one round trip together: the queue's first page is read before the
        # leases say what is free, and an entry that is stale by then is dropped when met.
        all_leases, first_page = storage.at_once(self.leases.all, self._page)
        leases = self._finish_abandoned(all_leases)
        mine = [lease for lease in leases.values() if lease.live() and lease.reviewer == reviewer]
        own = [lease for lease in mine if lease.tab == tab and lease.name not in exclude]
        if kind == VIEW and own:
            held = min(own, key=lambda lease: lease.kind != VIEW)  # a reload: what it already holds
            item = self._item(held.name, held.image_generation, held)
            if item is not None:
                return item
        self._make_room(reviewer, tab, leases, kind, reclaim)
        found = self._take_first(reviewer, tab, kind, exclude, leases, first_page, takeover=False)
        if found is None and kind == VIEW:
            found = self._take_first(reviewer, tab, kind, exclude, leases, first_page, takeover=True)
        return found

    def _take_first(self, reviewer, tab, kind, exclude, leases, first_page, takeover: bool) -> Item | None:
        for entry, listed in self._entries(first_page):
            holder = leases.get(entry.name)
            if entry.name in exclude or not entry.open_to(f"{reviewer}\t{tab}", now()):
                continue
            if holder is not None and holder.keeps_out(reviewer, tab):
                if not (takeover and holder.kind == PREFETCH):
                    continue
            elif takeover:
                continue  # the first pass found nothing here
            if self._quarantined(entry, listed):
                continue
            # The image is read beside taking its lease: one round trip, not two. An entry that
            # turns out stale (the image was decided meanwhile) gives its lease straight back.
            blob, lease = storage.at_once(
                lambda entry=entry: self.bucket.get_blob(entry.name, generation=entry.generation),
                lambda entry=entry, holder=holder: self.leases.take(
                    entry.name, entry.generation, reviewer, tab, kind, over=holder
                ),
            )
            if blob is None:
                stale = functools.partial(
                    storage.delete_quietly, self.prediction_bucket, listed.name, listed.generation
                )
                if lease is None:
                    stale()
                else:
                    storage.at_once(stale, functools.partial(self.leases.drop, lease))
                continue
            if lease is not None:
                return _item_of(blob, lease)
        return None

    def pending_undo(self, decided: storage.ObjectRef, reviewer: str, tab: str) -> Lease:
        """Before an undo moves `decided` back to unclear/: a lease, keyed by the decision, that
        names the move. It counts against the reviewer's cap like every hold (the undone image will
        be one more), and if the request dies it outlives it and says which move to finish."""
        self._make_room(reviewer, tab, self.leases.all(), kind=VIEW)
        current = self.leases.of(decided.name)
        if current is not None and current.keeps_out(reviewer, tab):
            raise Refused("other_tab", "this decision is being undone in another of your tabs")
        lease = self.leases.take(decided.name, 0, reviewer, tab, VIEW, over=current, undoes=decided.uri)
        if lease is None:
            raise Refused("other_tab", "this decision is being undone in another of your tabs")
        return lease

    def _make_room(self, reviewer: str, tab: str, leases: dict[str, Lease], kind: str, reclaim: bool = False):
        """One cap per reviewer, whatever holds the image (next, prefetch, undo): MAX_LEASES live
        leases. At the cap, room is made from what this reviewer holds but no one is looking at:
        this tab's own prefetched image (it asks for one to show instead), then images of the
        reviewer's other tabs that have gone quiet (not renewed for STALE_AFTER: a crashed or
        closed tab), and with `reclaim` (the reviewer said those tabs are gone) all of them.
        Refused, saying exactly what to do, when none of that makes room."""
        mine = [lease for lease in leases.values() if lease.live() and lease.reviewer == reviewer]
        if len(mine) < MAX_LEASES:
            return
        # A visible tab renews its image every third of a lease (review.py): twice missed, it is quiet.
        quiet = now() - self.leases.length * 2 / 3 - QUIET_GRACE
        spare = [lease for lease in mine if lease.tab == tab and lease.kind == PREFETCH and kind == VIEW]
        spare += [
            lease for lease in mine if lease.tab != tab and (reclaim or self.leases.written(lease) < quiet)
        ]
        # Take back what is needed; with `reclaim`, everything the reviewer's other tabs held.
        needed = len(spare) if reclaim else len(mine) - MAX_LEASES + 1
        for lease in spare[:needed]:
            self.leases.drop(lease)
            leases.pop(lease.name, None)
        left = len(mine) - min(len(spare), needed)
        if left >= MAX_LEASES:
            others = sorted({lease.tab for lease in mine if lease.tab != tab})
            raise Refused(
                "too_many",
                f"you already hold {left} images, in {len(others)} other tab(s) of yours that are still "
                "open; decide or skip them there, or, if those tabs are closed or crashed, take their "
                "images back here",
                held=left,
                other_tabs=len(others),
            )

    def _finish_abandoned(self, leases: dict[str, Lease]) -> dict[str, Lease]:
        """Whatever a tab's request left half done when it died (a decision or an undo whose process
        was killed between two storage requests), finished once its lease has expired, by whichever
        request comes next; then the lease goes. Only expired leases cost a request here."""
        for name, lease in list(leases.items()):
            if lease.live():
                continue
            source = (
                storage.ObjectRef.parse(lease.undoes)
                if lease.undoes
                else storage.ObjectRef(self.prediction_bucket, name, lease.image_generation or None)
            )
            if source.generation is not None:
                try:
                    claim = claims.read(self.prediction_bucket, source)
                except Held:
                    claim = None  # a person's to look at; never acted on
                if claim is not None and claim.state != claims.State.DONE:
                    claims.finish(source, self.prediction_bucket, record=outcomes.recorder(self.line_segment))
            self.leases.drop(lease)
            del leases[name]
        return leases

    def _quarantined(self, entry: review_index.Entry, listed) -> bool:
        """An image whose name the product cannot carry (layout.unservable: in unclear/ from before
        the rule, or from an older release) is never served, since no decision on it could be
        stored: it goes to quarantine/ with its reason, and its entry goes."""
        source = storage.ObjectRef(self.prediction_bucket, entry.name, entry.generation)
        if not moving.quarantine_if_unservable(
            source, self.prediction_bucket, self.line_segment, time.perf_counter()
        ):
            return False
        storage.delete_quietly(self.prediction_bucket, listed.name, listed.generation)
        return True

    def _entries(self, first_page: tuple[list, str | None]):
        """(entry, index object) oldest first, in bounded pages, from the first page as listed."""
        listed_page, token = first_page
        for number in range(MAX_PAGES):
            if number:
                listed_page, token = self._page(token)
            for listed in listed_page:
                entry = review_index.of_blob(self.prediction_bucket, listed)
                if entry is not None:
                    yield entry, listed
            if not token:
                return

    def _page(self, token: str | None = None) -> tuple[list, str | None]:
        """One page of the queue's index, oldest first, and the token for the next."""
        page = self.bucket.list_blobs(prefix=review_index.PREFIX, max_results=PAGE_SIZE, page_token=token)
        listed = list(page)
        return listed, page.next_page_token

    def _item(self, name: str, generation: int, lease: Lease) -> Item | None:
        blob = self.bucket.get_blob(name, generation=generation)
        return _item_of(blob, lease) if blob is not None else None

    def count(self) -> tuple[int, bool]:
        """(count, capped): counted up to COUNT_CAP, so the cost stays flat."""
        names = self.bucket.list_blobs(
            prefix=UNCLEAR_PREFIX, max_results=COUNT_CAP, fields="items(name),nextPageToken"
        )
        count = sum(1 for _ in names)
        return count, count >= COUNT_CAP

    def holding(self, name: str, generation: int, reviewer: str, tab: str) -> Lease:
        """The live lease this tab holds on exactly this image, or Refused with the true reason."""
        check_unclear_name(name)
        lease = self.leases.of(name)
        if lease is not None and lease.held_by(reviewer, tab) and lease.image_generation == generation:
            return lease
        current = self.bucket.get_blob(name)
        if current is None:
            raise Refused("gone", "this image is no longer waiting for a decision")
        if current.generation != generation:
            raise Refused(
                "changed", "this image was replaced since it was shown; the new one is in the queue"
            )
        if lease is not None and lease.live() and lease.reviewer == reviewer:
            raise Refused("other_tab", "this image is open in another of your tabs; decide it there")
        if lease is not None and lease.live():
            raise Refused("held_by_other", "another reviewer has this image on screen now")
        raise Refused(
            "lease_lost",
            "your hold on this image ran out while the page was inactive; it is back in the queue",
        )

    def show(self, name: str, generation: int, reviewer: str, tab: str) -> str:
        """The tab now shows the image it prefetched: its lease becomes a view lease."""
        return self._extend(self.holding(name, generation, reviewer, tab), VIEW)

    def renew(self, name: str, generation: int, reviewer: str, tab: str) -> str:
        """The image is still on screen: hold it another full lease; returns when that ends."""
        return self._extend(self.holding(name, generation, reviewer, tab), None)

    def _extend(self, lease: Lease, kind: str | None) -> str:
        extended = self.leases.extend(lease, kind)
        if extended is None:
            raise Refused("held_by_other", "another reviewer took this image meanwhile")
        return extended.expires

    def release(self, name: str, reviewer: str, tab: str = "") -> None:
        """Give a leased image back to the queue (skip, or the tab closed)."""
        check_unclear_name(name)
        lease = self.leases.of(name)
        if lease is not None and (lease.reviewer, lease.tab) == (reviewer, tab):
            self.leases.drop(lease)

    def hold(self, name: str, generation: int, reviewer: str, tab: str) -> str:
        """Lease `name` to this tab unless another tab holds it (undo keeps the image with the
        undoer); returns when the lease ends."""
        current = self.leases.of(name)
        if current is not None and current.keeps_out(reviewer, tab):
            if current.reviewer == reviewer:
                raise Refused("other_tab", "this image is open in another of your tabs")
            raise Refused("held_by_other", "another reviewer has this image on screen now")
        lease = self.leases.take(name, generation, reviewer, tab, VIEW, over=current)
        if lease is None:
            raise Refused("held_by_other", "another reviewer took this image meanwhile")
        return lease.expires


def _item_of(blob, lease: Lease) -> Item:
    created = blob.time_created.isoformat() if blob.time_created else ""
    return Item.of(blob.name, blob.generation, blob.metadata or {}, lease.expires, lease.kind, created)
