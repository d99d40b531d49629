"""The predict core: one finalized inbound object → a published prediction, or a quarantined file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from inspection import claims, events, layout, logs, moving, outcomes, publishing, routing, storage
from inspection.labels import LabelMap
from inspection.messages import Prediction, StorageObject
from inspection.model import images
from inspection.model.classifiers import Classifier
from inspection.settings import PredictSettings

PREDICTED = events.PREDICTED  # the log line of each published prediction; it carries latency_ms


def handle_object(obj: StorageObject, settings: PredictSettings, classifier: Classifier) -> str:
    """Classify one object generation and publish the result; returns what happened.

    Raises on anything a retry may fix (backend trouble, a failed publish), so the platform retries.
    """
    started = time.perf_counter()
    source = storage.ObjectRef(obj.bucket, obj.name, obj.generation)
    if obj.bucket != settings.inbound_bucket:
        # Only its own inbound bucket's photos are predict's: an event naming any other object (a
        # claim, a lease, a queue entry) is acknowledged and recorded nowhere.
        logs.warning(
            "not an object of the inbound bucket; ignored",
            bucket=obj.bucket,
            image=obj.name,
            generation=obj.generation,
            inbound_bucket=settings.inbound_bucket,
        )
        return "ignored"
    if moving.quarantine_if_unservable(source, settings.prediction_bucket, settings.line_segment, started):
        return "rejected"
    if obj.name.endswith("/") and obj.size == 0:
        detail = "an empty object named like a folder; inbound needs no folders"
        return _reject(source, images.ImageRejected("folder_placeholder", detail), settings, started)
    if obj.size > settings.max_upload_bytes:
        detail = f"{obj.size} bytes is over the limit of {settings.max_upload_bytes}"
        return _reject(source, images.ImageRejected("too_large", detail), settings, started)
    data = storage.read(source)  # a noncurrent generation too: a re-upload of the name does not hide it
    if data is None:
        # An earlier delivery moved it; if that attempt died before its record, finish it here.
        finished = claims.finish(
            source, settings.prediction_bucket, record=outcomes.recorder(settings.line_segment)
        )
        logs.info(
            "object generation is gone; an earlier delivery moved it",
            image=obj.name,
            generation=obj.generation,
            destination=finished.destination if finished else None,
        )
        return "gone"
    try:
        loaded = images.load(data, settings.limits)
    except images.ImageRejected as rejection:
        return _reject(source, rejection, settings, started)

    found = assess(loaded, classifier, settings.label_map)
    prediction = found.prediction(source, heatmap=_keep_heatmap(source, found, settings))
    message_id = publishing.publish(settings.predictions_topic, prediction.to_json(), image=obj.name)
    logs.info(
        PREDICTED,
        **prediction.log_fields(settings.line_segment),
        scores=found.scores,
        message_id=message_id,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return "published"


ANOMALOUS = events.ANOMALOUS


@dataclass(frozen=True)
class Assessment:
    """What predict concludes about one image, before routing applies the threshold."""

    label: str
    score: float
    scores: dict[str, float]
    model: str
    unclear_reason: str = ""
    unclear_detail: str = ""
    anomaly: Any = field(default=None, compare=False, repr=False)  # inspection.model.anomaly.Scored
    guard: str = ""  # the input guard that checked the photo; "" when none did

    def prediction(self, source: storage.ObjectRef, heatmap: str = "") -> Prediction:
        """The message about `source` that says this."""
        return Prediction(
            bucket=source.bucket,
            name=source.name,
            generation=source.generation,
            predicted_at=datetime.now(UTC).isoformat(),
            label=self.label,
            score=self.score,
            scores=self.scores,
            model=self.model,
            unclear_reason=self.unclear_reason,
            unclear_detail=self.unclear_detail,
            heatmap=heatmap,
            guard=self.guard,
        )


def assess(loaded: images.LoadedImage, classifier: Classifier, label_map: LabelMap) -> Assessment:
    """Classify, map the model's class names to ours, and say when a person must decide whatever
    the scores (no model, a photo the input guard stops). Evaluation and the promotion
    gate call this too, so a model is judged as it serves."""
    result = classifier.classify(loaded)
    scores = label_map.normalise(result.confidences)
    label = max(scores, key=scores.__getitem__)
    reason, detail = result.unclear_reason, result.unclear_detail
    # An escape prevented: the classifier calls it ok, but it is unlike every good part the anomaly
    # model learned (0.5 is the edge of normal). A model that never saw this kind of defect is
    # confidently wrong; the anomaly model is not trained on defects, so it is not blind to new ones.
    if not reason and label == layout.OK and result.anomaly is not None and result.anomaly.score > 0.5:
        reason = ANOMALOUS
        detail = f"the anomaly model scores it {result.anomaly.score:.2f}; 0.5 is the edge of normal"
    return Assessment(
        label=label,
        score=scores[label],
        scores=scores,
        model=result.model,
        unclear_reason=reason,
        unclear_detail=detail,
        anomaly=result.anomaly,
        guard=result.guard,
    )


def _keep_heatmap(source: storage.ObjectRef, found: Assessment, settings: PredictSettings) -> str:
    """Store the anomaly map of an image that will go to a person or to defect/, for the reviewer
    and the auditor; its name, or "" when there is none to keep."""
    if found.anomaly is None:
        return ""
    routed = routing.decided_label(found.label, found.score, found.unclear_reason, settings.threshold)
    if routed == layout.OK:
        return ""
    from inspection.model import anomaly

    name = layout.heatmap(source.bucket, source.name, source.generation)
    storage.create_once(
        storage.ObjectRef(settings.prediction_bucket, name),
        anomaly.heatmap_png(found.anomaly.heat),
        "image/png",
    )
    return name


def _reject(
    source: storage.ObjectRef, rejection: images.ImageRejected, settings: PredictSettings, started: float
) -> str:
    return moving.set_aside(
        source,
        rejection.reason,
        rejection.detail,
        settings.prediction_bucket,
        settings.line_segment,
        started,
    )
