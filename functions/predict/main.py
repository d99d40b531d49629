"""Cloud Run function `predict_image`: classify each image finalized in the inbound bucket.

Trigger: Eventarc `google.cloud.storage.object.v1.finalized`. Raising means "retry me";
returning acknowledges. The work is in inspection.predicting. An event we cannot read is
acknowledged with one ERROR line: retrying it cannot help.
"""

from __future__ import annotations

import functools

import functions_framework
from cloudevents.http import CloudEvent

from inspection import calls, logs, predicting
from inspection.errors import Held, MessageError
from inspection.messages import FINALIZED, StorageObject
from inspection.model import classifiers
from inspection.settings import PredictSettings

SETTINGS = PredictSettings.from_env()  # a bad value stops the instance here, naming the variable


@functools.cache
def _classifier() -> classifiers.Classifier:
    return classifiers.create(SETTINGS)


@functions_framework.cloud_event
@calls.serves("predict")
def predict_image(event: CloudEvent) -> None:
    """Entry point: check the envelope, then hand the object to the core."""
    if event["type"] != FINALIZED:
        logs.warning("ignoring event of another type", event_type=event["type"], event_id=event["id"])
        return
    try:
        obj = StorageObject.from_event(event.data)
    except MessageError as exc:
        logs.error(
            "malformed storage event; acknowledged",
            reason=str(exc),
            event_id=event["id"],
            payload=str(event.data)[:4000],
        )
        return
    try:
        predicting.handle_object(obj, SETTINGS, _classifier())
    except Held as exc:  # retrying cannot help; the image stays in inbound, where the sweep sees it
        where = {"image": obj.name, "generation": obj.generation, **exc.fields}
        logs.error("held for a person", reason=exc.reason, **where)
