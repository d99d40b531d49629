"""Cloud Run function `predict_image`: classify each image finalized in the inbound bucket.

Trigger: Eventarc `google.cloud.storage.object.v1.finalized`. Raising means "retry me";
returning acknowledges. The work is in inspection.predicting.
"""

from __future__ import annotations

import functools

import functions_framework
from cloudevents.http import CloudEvent

from inspection import classifiers, logs, predicting
from inspection.settings import PredictSettings

FINALIZED = "google.cloud.storage.object.v1.finalized"
SETTINGS = PredictSettings.from_env()  # a bad value stops the instance here, naming the variable


@functools.cache
def _classifier() -> classifiers.Classifier:
    return classifiers.create(SETTINGS)


@functions_framework.cloud_event
def predict_image(event: CloudEvent) -> None:
    """Entry point: check the envelope, then hand the object to the core."""
    data = event.data
    if event["type"] != FINALIZED:
        logs.warning("ignoring event of another type", event_type=event["type"], event_id=event["id"])
        return
    if not isinstance(data, dict) or not all(data.get(k) for k in ("bucket", "name", "generation")):
        logs.error("malformed storage event; acknowledged", event_id=event["id"], payload=data)
        return
    if data["name"].endswith("/") and int(data.get("size") or 0) == 0:
        logs.info("ignoring folder placeholder", image=data["name"])
        return
    predicting.handle_object(data, SETTINGS, _classifier())
