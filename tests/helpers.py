"""Small builders for test inputs: images, storage CloudEvents, Pub/Sub envelopes."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

from cloudevents.http import CloudEvent

from scripts.training.sample_data import draw_part


def image_bytes(
    fmt: str = "JPEG", mode: str = "L", size: tuple[int, int] = (300, 300), defect: str | None = None
) -> bytes:
    """A synthetic cast part encoded as `fmt` in `mode`."""
    import numpy as np

    image = draw_part(np.random.default_rng(1), defect, False).resize(size).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def storage_event(blob) -> CloudEvent:
    """The CloudEvent Eventarc sends when `blob` is finalized (attributes and data as documented)."""
    resource = dict(blob._properties)
    return CloudEvent(
        {
            "id": f"evt-{blob.generation}",
            "specversion": "1.0",
            "type": "google.cloud.storage.object.v1.finalized",
            "source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}",
            "subject": f"objects/{blob.name}",
            "time": datetime.now(UTC).isoformat(),
        },
        resource,
    )


def prediction(bucket: str, name: str, generation: int, label: str = "ok", score: float = 0.95) -> dict:
    other = "defect" if label == "ok" else "ok"
    return {
        "bucket": bucket,
        "name": name,
        "generation": str(generation),
        "label": label,
        "score": score,
        "scores": {label: score, other: round(1 - score, 6)},
        "model": "test-model",
        "predicted_at": datetime.now(UTC).isoformat(),
    }


def push_body(data: bytes | dict) -> dict:
    """A Pub/Sub push request body carrying `data`."""
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return {
        "message": {"data": base64.b64encode(raw).decode(), "messageId": "1", "attributes": {}},
        "subscription": "projects/local/subscriptions/predictions-push",
    }


def make_function(target: str, signature: str):
    """Load a function from its source file through functions-framework, as Cloud Run does."""
    from inspection import publishing, storage
    from scripts.local.handlers import FUNCTIONS, create_app

    storage.client.cache_clear()
    publishing._publisher.cache_clear()
    [function] = [
        name for name, (entry, _, kind) in FUNCTIONS.items() if (entry, kind) == (target, signature)
    ]
    return create_app(function).test_client()


def logged(caplog, message: str | None = None, severity: str | None = None) -> list[dict]:
    """Captured log lines (all, or those with this message or severity), as the JSON formatter
    writes them."""
    from inspection.logs import JsonFormatter

    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    return [
        line
        for line in lines
        if (message is None or line["message"] == message)
        and (severity is None or line["severity"] == severity)
    ]
