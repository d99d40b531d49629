"""The re-drive sweep: nothing waits in inbound or in the dead-letter subscription unnoticed.

Run on a schedule (Cloud Scheduler → the `sweep` function; a timer in the local stack) and on
demand (`python -m scripts.redrive`). It is safe to repeat and to overlap with normal delivery,
because every move carries out the one decision recorded for its source generation
(storage.move's claim), however many predictions arrive for it.

1. Every inbound object generation older than REDRIVE_AFTER_SECONDS (noncurrent ones included)
   is stranded: one ERROR line says so, and predict's own core runs on it again.
2. Every prediction the push subscription gave up on (it reached the dead-letter topic after its
   delivery attempts, e.g. during a move outage) is published again and acknowledged. Messages
   move itself dead-lettered because it could not read them stay held for a person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from inspection import logs, metadata, predicting, publishing, storage
from inspection.classifiers import Classifier
from inspection.layout import UNCLEAR
from inspection.messages import StorageObject
from inspection.settings import SweepSettings

# move_image marks what it dead-letters itself (functions/move/main.py): unreadable, keep it.
MALFORMED_SOURCE = "move_image"
UNCLEAR_COUNT_CAP = 5000


@dataclass
class SweepReport:
    stranded: int = 0  # inbound generations older than the limit
    redriven: int = 0  # of those, handed to predict's core again without error
    failed: int = 0  # of those, still failing (the next sweep tries again)
    replayed: int = 0  # dead-lettered predictions published again
    held_for_people: int = 0  # unreadable messages left on the dead-letter subscription
    inbound_waiting: int = 0  # every generation in inbound, stranded or not
    oldest_inbound_s: float = 0.0  # age of the oldest of them, for the "stuck" alert
    unclear_waiting: int = 0  # images in unclear/, counted up to UNCLEAR_COUNT_CAP
    oldest_unclear_s: float = 0.0  # how long the oldest of them has waited for a person


def sweep(
    settings: SweepSettings, classifier: Callable[[], Classifier], now: datetime | None = None
) -> SweepReport:
    """One pass over inbound and the dead-letter subscription; returns what it found and did."""
    now = now or datetime.now(UTC)
    report = SweepReport()
    for blob in storage.client().list_blobs(settings.inbound_bucket, versions=True):
        if blob.name.endswith("/") and not blob.size:
            continue  # a folder placeholder, never an image
        age = (now - blob.time_created).total_seconds()
        report.inbound_waiting += 1
        report.oldest_inbound_s = max(report.oldest_inbound_s, round(age, 1))
        if age >= settings.redrive_after_s:
            _redrive(blob, age, settings, classifier, report)
    for message in publishing.held(settings.held_subscription, settings.max_messages):
        _replay(message, settings, report)
    _measure_unclear(settings, now, report)
    logs.info("sweep", **asdict(report))
    return report


def _measure_unclear(settings: SweepSettings, now: datetime, report: SweepReport) -> None:
    """The reviewers' queue as gauges (README: alerts). Bounded: a queue longer than the cap is
    reported at the cap, and its oldest among those listed."""
    listed = storage.client().list_blobs(
        settings.predict.prediction_bucket, prefix=UNCLEAR + "/", max_results=UNCLEAR_COUNT_CAP
    )
    for blob in listed:
        report.unclear_waiting += 1
        waited = (now - _routed_at(blob)).total_seconds()
        report.oldest_unclear_s = max(report.oldest_unclear_s, round(waited, 1))


def _routed_at(blob) -> datetime:
    try:
        return datetime.fromisoformat((blob.metadata or {})[metadata.ROUTED_AT])
    except (KeyError, ValueError):
        return blob.time_created


def _redrive(blob, age: float, settings: SweepSettings, classifier, report: SweepReport) -> None:
    report.stranded += 1
    logs.error(
        "stranded in inbound; re-driving",
        image=blob.name,
        generation=blob.generation,
        age_s=round(age),
        reason=f"not routed within {settings.redrive_after_s} s of its upload",
    )
    obj = StorageObject(settings.inbound_bucket, blob.name, blob.generation, int(blob.size or 0))
    try:
        predicting.handle_object(obj, settings.predict, classifier())
        report.redriven += 1
    except Exception as exc:  # one image's trouble must not stop the sweep; it stays and is retried
        report.failed += 1
        logs.error(
            "re-drive failed; the next sweep tries again",
            image=blob.name,
            error=f"{type(exc).__name__}: {exc}",
        )


def _replay(message: publishing.Held, settings: SweepSettings, report: SweepReport) -> None:
    if message.attributes.get("source") == MALFORMED_SOURCE:
        report.held_for_people += 1
        message.keep()
        return
    logs.error(
        "dead-lettered prediction; publishing it again",
        image=_image_of(message.data),
        delivery_attempts=message.attributes.get("CloudPubSubDeadLetterSourceDeliveryCount"),
    )
    publishing.publish(settings.predict.predictions_topic, message.data, redriven="true")
    message.done()
    report.replayed += 1


def _image_of(data: bytes) -> str | None:
    try:
        return json.loads(data).get("name")
    except (ValueError, AttributeError):
        return None
