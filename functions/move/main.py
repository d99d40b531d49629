"""Cloud Run function `move_image`: route each prediction into the prediction bucket.

It accepts a Pub/Sub push body (`{"message": …, "subscription": …}`, from the subscription the
Pulumi program declares with a dead-letter topic) and an Eventarc `messagePublished` CloudEvent.
Both carry the same `message`. 2xx acknowledges; 5xx makes Pub/Sub redeliver.
"""

from __future__ import annotations

import base64
import binascii
import json

import functions_framework
from cloudevents.http import from_http
from flask import Request

from inspection import logs, moving, publishing
from inspection.errors import MessageError
from inspection.messages import Prediction
from inspection.settings import MoveSettings

SETTINGS = MoveSettings.from_env()  # a bad PREDICTION_THRESHOLD stops the instance here


@functions_framework.http
def move_image(request: Request):
    """Entry point: unwrap the envelope, route valid predictions, dead-letter the rest."""
    raw = request.get_data()
    try:
        message = _message(request, raw)
        prediction = Prediction.from_json(base64.b64decode(message.get("data", ""), validate=True))
    except (MessageError, binascii.Error, ValueError) as exc:
        _dead_letter(raw, str(exc))
        return ("", 204)
    moving.route(prediction, SETTINGS)
    return ("", 204)


def _message(request: Request, raw: bytes) -> dict:
    """The Pub/Sub message, from either envelope."""
    if request.headers.get("ce-type") or "cloudevents" in request.content_type:
        envelope = from_http(dict(request.headers), raw).data
    else:
        try:
            envelope = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MessageError("body is not JSON") from None
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise MessageError("no Pub/Sub message in the body")
    return message


def _dead_letter(raw: bytes, reason: str) -> None:
    """Keep a message we cannot understand where a person can see it, then acknowledge it."""
    text = raw.decode("utf-8", errors="replace")
    logs.error("malformed prediction message; sent to dead letter", reason=reason, payload=text[:4000])
    publishing.publish(SETTINGS.dead_letter_topic, raw, reason=reason[:1000], source="move_image")
