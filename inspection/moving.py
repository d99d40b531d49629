"""The move core: one prediction → the image in ok/, defect/ or unclear/ of the prediction bucket."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from inspection import claims, layout, logs, metadata, outcomes, routing, storage
from inspection.errors import MessageError
from inspection.messages import Prediction
from inspection.settings import MoveSettings

UNSAFE_NAME = "unsafe_name"  # the rejected reason of a name the product cannot carry (layout.unservable)


def routed_metadata(prediction: Prediction, threshold: float, source: storage.ObjectRef) -> dict[str, str]:
    """What a routed copy carries: what the model said, the rule that routed it, where it came from.
    Move and the backfill of an archive write the same."""
    return {
        metadata.PREDICTED_LABEL: prediction.label,
        metadata.PREDICTED_SCORE: f"{prediction.score:.6f}",
        metadata.PREDICTED_SCORES: json.dumps(prediction.scores, sort_keys=True),
        metadata.MODEL: prediction.model,
        metadata.PREDICTED_AT: prediction.predicted_at,
        metadata.THRESHOLD: str(threshold),
        metadata.ROUTED_AT: datetime.now(UTC).isoformat(),
        **({metadata.UNCLEAR_REASON: prediction.unclear_reason} if prediction.unclear_reason else {}),
        **({metadata.UNCLEAR_DETAIL: prediction.unclear_detail} if prediction.unclear_detail else {}),
        **({metadata.HEATMAP: prediction.heatmap} if prediction.heatmap else {}),
        **({metadata.INPUT_GUARD: prediction.guard} if prediction.guard else {}),
        **storage.provenance(source),
    }


def route(prediction: Prediction, settings: MoveSettings) -> claims.Moved:
    """Move the predicted image to its folder, keeping its name; safe to repeat. The first delivery's
    decision stands: a redelivery that would choose another folder (a threshold being rolled out,
    a generation scored twice) follows it. Raises Held when a person must look."""
    if prediction.bucket != settings.inbound_bucket:
        raise MessageError(
            f"source bucket {prediction.bucket!r} is not the inbound bucket {settings.inbound_bucket!r}"
        )
    started = time.perf_counter()
    source = storage.ObjectRef(prediction.bucket, prediction.name, prediction.generation)
    if quarantine_if_unservable(source, settings.prediction_bucket, settings.line_segment, started):
        return claims.Moved(claims.Ending.MOVED, None, None)
    folder = routing.folder_for(prediction, settings.threshold)
    result = claims.move(
        source,
        storage.ObjectRef(settings.prediction_bucket, layout.routed(folder, prediction.name)),
        routed_metadata(prediction, settings.threshold, source),
        record=outcomes.recorder(settings.line_segment, started),
    )
    if result.ending not in (claims.Ending.MOVED, claims.Ending.KEPT_BOTH):
        logs.info(  # the record was written by the attempt that finished the move
            "already routed" if result.claim else "nothing to route: the image generation is gone",
            **prediction.log_fields(settings.line_segment),
            folder=result.claim.place.folder if result.claim else None,
            destination=result.destination,
            ending=str(result.ending),
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
    return result


def quarantine_if_unservable(
    source: storage.ObjectRef, prediction_bucket: str, line_segment: int, started: float
) -> bool:
    """The one name rule (layout.unservable), wherever an image is found: predict at the entrance,
    move for a prediction an older release published, the review queue for an image already in
    unclear/. A name that fails it is kept in quarantine/ with its reason, never queued; True then."""
    problem = layout.unservable(layout.parse(source.name).name or source.name)
    if problem is None:
        return False
    detail = f"the name {problem}, so no reviewer could open it"
    set_aside(
        source, UNSAFE_NAME, detail, prediction_bucket, line_segment, started, layout.quarantined(source.name)
    )
    return True


def set_aside(
    source: storage.ObjectRef,
    reason: str,
    detail: str,
    prediction_bucket: str,
    line_segment: int,
    started: float,
    destination: str | None = None,
) -> str:
    """Keep the file in rejected/ (or quarantine/) with the reason; its record says why."""
    result = claims.move(
        source,
        storage.ObjectRef(prediction_bucket, destination or layout.routed(layout.REJECTED, source.name)),
        {
            metadata.REJECTED_REASON: reason,
            metadata.REJECTED_DETAIL: detail[:1000],
            metadata.REJECTED_AT: datetime.now(UTC).isoformat(),
            metadata.ORIGINAL_NAME: layout.printable(source.name),
            **storage.provenance(source),
        },
        record=outcomes.recorder(line_segment, started),
    )
    if result.ending not in (claims.Ending.MOVED, claims.Ending.KEPT_BOTH):
        logs.info(
            "already set aside" if result.claim else "nothing to set aside: the image generation is gone",
            **source.log_fields(),
            destination=result.destination,
            ending=str(result.ending),
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
    return "rejected"
