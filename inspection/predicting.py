"""The predict core: one finalized inbound object → a published prediction, or a quarantined file."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from inspection import images, layout, logs, publishing, storage
from inspection.classifiers import Classifier
from inspection.messages import Prediction
from inspection.settings import PredictSettings


def handle_object(obj: dict, settings: PredictSettings, classifier: Classifier) -> str:
    """Classify one object generation and publish the result; returns what happened.

    Raises on anything a retry may fix (backend trouble, a failed publish), so the platform retries.
    """
    started = time.perf_counter()
    bucket, name, generation = obj["bucket"], obj["name"], int(obj["generation"])
    declared_size = int(obj.get("size") or 0)
    if declared_size > settings.max_upload_bytes:
        return _reject(
            obj,
            images.ImageRejected(
                "too_large",
                f"{declared_size} bytes is over the limit of {settings.max_upload_bytes}",
            ),
            settings,
            started,
        )
    data = storage.read(bucket, name, generation)
    if data is None:
        logs.info(
            "object generation is gone; an earlier delivery handled it",
            image=name,
            generation=generation,
        )
        return "gone"
    try:
        loaded = images.load(
            data,
            max_bytes=settings.max_upload_bytes,
            min_side=settings.min_image_side,
            max_pixels=settings.max_image_pixels,
        )
    except images.ImageRejected as rejection:
        return _reject(obj, rejection, settings, started)

    result = classifier.classify(loaded)
    scores = settings.label_map.normalise(result.confidences)
    label = max(scores, key=scores.__getitem__)
    prediction = Prediction(
        bucket=bucket,
        name=name,
        generation=generation,
        label=label,
        score=scores[label],
        scores=scores,
        model=result.model,
        predicted_at=datetime.now(UTC).isoformat(),
        unclear_reason=result.unclear_reason,
    )
    message_id = publishing.publish(settings.predictions_topic, prediction.to_json(), image=name)
    logs.info(
        "predicted",
        image=name,
        generation=generation,
        label=label,
        score=scores[label],
        scores=scores,
        model=result.model,
        message_id=message_id,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return "published"


def _reject(obj: dict, rejection: images.ImageRejected, settings: PredictSettings, started: float) -> str:
    """Keep the file in rejected/ with the reason; one error line says why."""
    name, generation = obj["name"], int(obj["generation"])
    destination = layout.routed(layout.REJECTED, name)
    result = storage.move(
        obj["bucket"],
        name,
        generation,
        settings.prediction_bucket,
        destination,
        {
            "rejected_reason": rejection.reason,
            "rejected_detail": rejection.detail[:1000],
            "rejected_at": datetime.now(UTC).isoformat(),
            **storage.provenance(obj["bucket"], generation),
        },
    )
    logs.error(
        "rejected",
        image=name,
        generation=generation,
        reason=rejection.reason,
        detail=rejection.detail,
        folder=layout.REJECTED,
        destination=result.destination,
        outcome=result.outcome,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return "rejected"
