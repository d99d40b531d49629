"""Cloud Run function `move_image`: route each prediction into the prediction bucket.

It accepts a Pub/Sub push body (`{"message": …, "subscription": …}`, from the subscription the
Pulumi program declares with a dead-letter topic) and an Eventarc `messagePublished` CloudEvent.
Both carry the same `message`. 2xx acknowledges; 5xx makes Pub/Sub redeliver.

A request by any other method than POST is no delivery: it is answered 405 and logged, and
nothing is dead-lettered. Whatever the body, a message that cannot be understood is never answered
with 5xx: it is logged with its raw payload, published to the dead-letter topic and acknowledged.
So is a move that must be held for a person (an unreadable claim, one naming another bucket): the
image stays in inbound.
"""

from __future__ import annotations

import base64
import json

import functions_framework
from cloudevents.http import from_http
from flask import Request

from inspection import calls, logs, messages, moving, publishing
from inspection.errors import Held, MessageError
from inspection.messages import Prediction
from inspection.settings import MoveSettings

SETTINGS = MoveSettings.from_env()  # a bad PREDICTION_THRESHOLD stops the instance here
MAX_BODY_BYTES = 1_000_000  # Pub/Sub messages are at most 10 MB; ours are well under 2 KB


@functions_framework.http
@calls.serves("move")
def move_image(request: Request):
    """Entry point: unwrap the envelope, route valid predictions, dead-letter the rest."""
    if request.method != "POST":  # Pub/Sub and Eventarc deliver by POST; anything else is no message
        logs.warning("not a delivery: move accepts only POST", method=request.method)
        return (
            "move accepts only POST: Pub/Sub and Eventarc deliver predictions by POST\n",
            405,
            {"Allow": "POST"},
        )
    raw = request.get_data(cache=False)[: MAX_BODY_BYTES + 1]
    try:
        prediction = _prediction(request, raw)
        moving.route(prediction, SETTINGS)
    except MessageError as exc:
        _dead_letter(raw, str(exc), MALFORMED)
    except Held as exc:
        _dead_letter(raw, exc.reason, HELD, **exc.fields)
    return ("", 204)


def _prediction(request: Request, raw: bytes) -> Prediction:
    """The prediction in either envelope; any shape we cannot read is a MessageError."""
    if len(raw) > MAX_BODY_BYTES:
        raise MessageError(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        if request.headers.get("ce-type") or "cloudevents" in (request.content_type or ""):
            envelope = from_http(dict(request.headers), raw).data
        else:
            envelope = json.loads(raw)
        message = envelope.get("message") if isinstance(envelope, dict) else None
        if not isinstance(message, dict):
            raise MessageError("no Pub/Sub message in the body")
        data = message.get("data", "")
        if not isinstance(data, str):
            raise MessageError("message.data is not a base64 string")
        decoded = base64.b64decode(data, validate=True)
    except MessageError:
        raise
    except Exception as exc:  # any parse failure of an untrusted body, from any library
        raise MessageError(f"unreadable body: {type(exc).__name__}: {exc}") from None
    return Prediction.from_json(decoded)


MALFORMED, HELD = messages.DEAD_LETTERED_MALFORMED, messages.DEAD_LETTERED_HELD


def _dead_letter(raw: bytes, reason: str, message: str, **fields: object) -> None:
    """Keep a message where a person can see it (docs/operations.md, "Runbook"), then acknowledge it."""
    text = raw.decode("utf-8", errors="replace")
    logs.error(message, reason=reason, payload=text[:4000], **fields)
    publishing.publish(SETTINGS.dead_letter_topic, raw, reason=reason[:1000], source="move_image")
