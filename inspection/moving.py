"""The move core: one prediction → the image in ok/, defect/ or unclear/ of the prediction bucket."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from inspection import daily, layout, logs, metadata, review_index, routing, storage
from inspection.errors import MessageError
from inspection.messages import Prediction
from inspection.settings import MoveSettings


def route(prediction: Prediction, settings: MoveSettings) -> storage.Moved:
    """Move the predicted image to its folder, keeping its name; safe to repeat. The first delivery's
    decision stands: a redelivery that would choose another folder (a threshold being rolled out,
    a generation scored twice) follows it."""
    if prediction.bucket != settings.inbound_bucket:
        raise MessageError(
            f"source bucket {prediction.bucket!r} is not the inbound bucket {settings.inbound_bucket!r}"
        )
    started = time.perf_counter()
    folder = routing.folder_for(prediction, settings.threshold)
    result = storage.move(
        storage.ObjectRef(prediction.bucket, prediction.name, prediction.generation),
        storage.ObjectRef(settings.prediction_bucket, layout.routed(folder, prediction.name)),
        {
            metadata.PREDICTED_LABEL: prediction.label,
            metadata.PREDICTED_SCORE: f"{prediction.score:.6f}",
            metadata.PREDICTED_SCORES: json.dumps(prediction.scores, sort_keys=True),
            metadata.MODEL: prediction.model,
            metadata.PREDICTED_AT: prediction.predicted_at,
            metadata.THRESHOLD: str(settings.threshold),
            metadata.ROUTED_AT: datetime.now(UTC).isoformat(),
            **({metadata.UNCLEAR_REASON: prediction.unclear_reason} if prediction.unclear_reason else {}),
            **({metadata.UNCLEAR_DETAIL: prediction.unclear_detail} if prediction.unclear_detail else {}),
            **storage.provenance(prediction.bucket, prediction.generation),
        },
    )
    decided = result.claim.destination.split("/", 1)[0] if result.claim else folder
    if result.claim is not None:
        _remember(result, decided, prediction, settings)
    logs.info(
        "routed",
        **prediction.log_fields(settings.line_segment),
        folder=decided,
        threshold=settings.threshold,
        destination=result.destination,
        outcome=str(result.outcome),
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return result


def _remember(result: storage.Moved, folder: str, prediction: Prediction, settings: MoveSettings) -> None:
    """The day's record of the outcome (as the claim decided it), and for an image a person must
    decide, its place in the arrival-ordered queue."""
    claimed = result.claim.metadata
    if folder == layout.UNCLEAR and result.copy is not None:
        review_index.add(
            settings.prediction_bucket, result.copy.name, result.copy.generation, claimed[metadata.ROUTED_AT]
        )
    daily.record(
        settings.prediction_bucket,
        result.claim,
        daily.ROUTED,
        line=layout.line_of(prediction.name, settings.line_segment),
        folder=folder,
        label=claimed[metadata.PREDICTED_LABEL],
        score=float(claimed[metadata.PREDICTED_SCORE]),
        model=claimed[metadata.MODEL],
        threshold=float(claimed[metadata.THRESHOLD]),
    )
