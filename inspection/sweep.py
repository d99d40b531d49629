"""The re-drive sweep: nothing waits in inbound, in the dead-letter subscription or out of the
reviewers' queue unnoticed.

Run on a schedule (Cloud Scheduler → the `sweep` function; a timer in the local stack) and on
demand (`python -m scripts.sweep`). It is safe to repeat and to overlap with normal delivery,
because every move carries out the one decision recorded for its source generation (the claim,
inspection/claims.py), however many predictions arrive for it.

1. Every inbound object generation older than REDRIVE_AFTER_SECONDS (noncurrent ones included)
   is stranded: one ERROR line says so, and predict's own core runs on it again, at most once per
   REDRIVE_AFTER_SECONDS however often the sweep runs (a marker per image and window,
   `redrive/<hash>-<window>`). One whose move is held for a person (its claim cannot be read, or
   says `held`: every name for the copy is taken) is counted, not re-driven: the dead letter move
   wrote already says why, and `python -m scripts.sweep --release` lets it go on.
2. Every prediction the push subscription gave up on (it reached the dead-letter topic after its
   delivery attempts, e.g. during a move outage) is published again and acknowledged. Messages
   move itself dead-lettered (unreadable, or held) stay held for a person.
3. Every unclear image whose move is done but which has no entry in the reviewers' queue (the queue
   lost it) gets its entry back, so it is served in its arrival order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from google.api_core import exceptions as gexc

from inspection import (
    claims,
    events,
    layout,
    logs,
    metadata,
    predicting,
    publishing,
    review_index,
    storage,
)
from inspection.errors import Held
from inspection.messages import StorageObject
from inspection.model.classifiers import Classifier
from inspection.settings import SweepSettings

# The sweep's log lines that Monitoring counts (infra/monitoring.py).
SWEPT, STRANDED, REPLAYED = events.SWEPT, events.STRANDED, events.REPLAYED

# move_image marks what it dead-letters itself (functions/move/main.py): keep it for a person.
MALFORMED_SOURCE = "move_image"
UNCLEAR_COUNT_CAP = 5000
REDRIVEN_AT = "redriven_at"  # a re-drive marker's metadata: when the sweep re-drove the image


@dataclass
class SweepReport:
    stranded: int = 0  # inbound generations older than the limit
    redriven: int = 0  # of those, handed to predict's core again without error
    skipped: int = 0  # of those, re-driven within the last REDRIVE_AFTER_SECONDS already
    failed: int = 0  # of those, still failing (the next window tries again)
    replayed: int = 0  # dead-lettered predictions published again
    held_for_people: int = 0  # unreadable messages and held moves, left for a person
    requeued: int = 0  # unclear images given back their place in the reviewers' queue
    inbound_waiting: int = 0  # every generation in inbound, stranded or not
    oldest_inbound_s: float = 0.0  # age of the oldest of them, for the "stuck" alert
    unclear_waiting: int = 0  # images in unclear/, counted up to UNCLEAR_COUNT_CAP
    oldest_unclear_s: float = 0.0  # how long the oldest of them has waited for a person


def run(
    settings: SweepSettings, classifier: Callable[[], Classifier], now: datetime | None = None
) -> SweepReport:
    """One pass over inbound, the dead-letter subscription and the queue; returns what it found and did."""
    now = now or datetime.now(UTC)
    report = SweepReport()
    for blob in storage.client().list_blobs(settings.inbound_bucket, versions=True):
        age = (now - blob.time_created).total_seconds()
        report.inbound_waiting += 1
        report.oldest_inbound_s = max(report.oldest_inbound_s, round(age, 1))
        if age >= settings.redrive_after_s:
            _redrive(blob, age, settings, classifier, report, now)
    for message in publishing.held(settings.held_subscription, settings.max_messages):
        _replay(message, settings, report)
    _measure_and_requeue_unclear(settings, now, report)
    logs.info(SWEPT, **asdict(report))
    return report


def _redrive(blob, age: float, settings: SweepSettings, classifier, report: SweepReport, now) -> None:
    report.stranded += 1
    source = storage.ObjectRef(settings.inbound_bucket, blob.name, blob.generation)
    try:
        claim = claims.read(settings.predict.prediction_bucket, source)
    except Held as held:
        report.held_for_people += 1
        logs.error("stranded in inbound and held for a person", **source.log_fields(), reason=held.reason)
        return
    if claim is not None and claim.held:
        # Move said why when it held it (a dead letter and an ERROR line); re-driving it every window
        # would only say it again. A person releases it: scripts.sweep --release.
        report.held_for_people += 1
        return
    if not _first_in_window(settings, source, now):
        report.skipped += 1
        return
    logs.error(
        STRANDED,
        **source.log_fields(),
        age_s=round(age),
        reason=f"not routed within {settings.redrive_after_s} s of its upload",
    )
    obj = StorageObject(settings.inbound_bucket, blob.name, blob.generation, int(blob.size or 0))
    try:
        predicting.handle_object(obj, settings.predict, classifier())
        report.redriven += 1
    except Held as held:
        report.held_for_people += 1
        logs.error("re-drive held for a person", **source.log_fields(), reason=held.reason)
    except Exception as exc:  # one image's trouble must not stop the sweep; it stays and is retried
        report.failed += 1
        logs.exception("re-drive failed; the next window tries again", **source.log_fields(), error=f"{exc}")


def _first_in_window(settings: SweepSettings, source: storage.ObjectRef, now: datetime) -> bool:
    """Whether this sweep is the first to re-drive `source` in the last REDRIVE_AFTER_SECONDS: it
    reads the marker of the window before (which says when that re-drive was) and creates the
    marker of this one, so two sweeps at once, or one a minute after the last, do not both publish."""
    window = int(now.timestamp() // settings.redrive_after_s)
    bucket = storage.client().bucket(settings.predict.prediction_bucket)
    key = layout.digest(source.uri)
    earlier = bucket.get_blob(f"{layout.REDRIVE}/{key}-{window - 1}")
    if earlier is not None:
        try:
            then = datetime.fromisoformat((earlier.metadata or {})[REDRIVEN_AT])
        except (KeyError, ValueError):
            then = earlier.time_created
        if (now - then).total_seconds() < settings.redrive_after_s:
            return False
    marker = bucket.blob(f"{layout.REDRIVE}/{key}-{window}")
    marker.metadata = {REDRIVEN_AT: now.isoformat()}
    try:
        marker.upload_from_string(b"", if_generation_match=0)
    except gexc.PreconditionFailed:
        return False
    return True


def _replay(message: publishing.Held, settings: SweepSettings, report: SweepReport) -> None:
    if message.attributes.get("source") == MALFORMED_SOURCE:
        report.held_for_people += 1
        message.keep()
        return
    logs.error(
        REPLAYED,
        image=_image_of(message.data),
        delivery_attempts=message.attributes.get("CloudPubSubDeadLetterSourceDeliveryCount"),
    )
    publishing.publish(settings.predict.predictions_topic, message.data, redriven="true")
    message.done()
    report.replayed += 1


def _measure_and_requeue_unclear(settings: SweepSettings, now: datetime, report: SweepReport) -> None:
    """The reviewers' queue as gauges (docs/operations.md), and the place back in it of every unclear
    image whose move is done but whose entry is missing. Bounded: a queue longer than the cap is
    reported at the cap, and its oldest among those listed."""
    bucket = settings.predict.prediction_bucket
    listed = storage.client().list_blobs(bucket, prefix=layout.UNCLEAR + "/", max_results=UNCLEAR_COUNT_CAP)
    unclear = []
    for blob in listed:
        report.unclear_waiting += 1
        waited = (now - _routed_at(blob)).total_seconds()
        report.oldest_unclear_s = max(report.oldest_unclear_s, round(waited, 1))
        unclear.append(blob)
    if not unclear:
        return
    queued = {
        (entry.name, entry.generation)
        for entry in (
            review_index.of_blob(bucket, b)
            for b in storage.client().list_blobs(
                bucket, prefix=review_index.PREFIX, max_results=UNCLEAR_COUNT_CAP
            )
        )
        if entry is not None
    }
    for blob in unclear:
        if (blob.name, blob.generation) not in queued and _move_done(bucket, blob):
            routed_at = (blob.metadata or {}).get(metadata.ROUTED_AT) or blob.time_created.isoformat()
            review_index.add(review_index.Entry(bucket, blob.name, blob.generation, routed_at))
            report.requeued += 1
            logs.warning("an unclear image had no place in the reviewers' queue; given back", image=blob.name)


def _move_done(bucket: str, blob) -> bool:
    """Whether the move that made this unclear image has finished (its source is gone)."""
    origin = (blob.metadata or {}).get(metadata.COPIED_FROM, "")
    try:
        claim = claims.read(bucket, storage.ObjectRef.parse(origin))
    except (ValueError, Held):
        return False
    return claim is not None and claim.state == claims.State.DONE


def _routed_at(blob) -> datetime:
    try:
        return datetime.fromisoformat((blob.metadata or {})[metadata.ROUTED_AT])
    except (KeyError, ValueError):
        return blob.time_created


def _image_of(data: bytes) -> str | None:
    try:
        return json.loads(data).get("name")
    except (ValueError, AttributeError):
        return None
