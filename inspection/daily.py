"""A per-day index of outcomes, so the plant's report reads only the days it is asked about.

The bucket's own listing is by name, not by time: a report over one week would otherwise list every
image ever routed. So each outcome also writes one small record under `daily/<YYYY-MM-DD>/`,
named by the source generation (a redelivery writes the same name, and is refused politely):
- move: where an image was routed, with the model, its label and score, and the threshold;
- predict: a file quarantined in rejected/;
- the review app: a person's decision, whether it agreed with the model, and its undo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import datetime

from google.api_core import exceptions as gexc

from inspection import layout, storage

ROUTED, REJECTED, DECIDED, UNDONE = "routed", "rejected", "decided", "undone"


def record_name(day: str, source_uri: str, kind: str) -> str:
    return f"{layout.DAILY}/{day}/{hashlib.sha256(source_uri.encode()).hexdigest()[:32]}-{kind}.json"


def record(bucket: str, source_uri: str, kind: str, when: str, **fields: object) -> None:
    """Write one outcome's record (once: a second write of the same name is refused and ignored)."""
    day = datetime.fromisoformat(when).date().isoformat()
    body = json.dumps({"kind": kind, "at": when, "source": source_uri, **fields}, sort_keys=True)
    blob = storage.client().bucket(bucket).blob(record_name(day, source_uri, kind))
    with contextlib.suppress(gexc.PreconditionFailed):
        blob.upload_from_string(body, content_type="application/json", if_generation_match=0)


def read_day(bucket: str, day: str) -> list[dict]:
    """Every record of one day."""
    return [
        json.loads(blob.download_as_bytes())
        for blob in storage.client().list_blobs(bucket, prefix=f"{layout.DAILY}/{day}/")
    ]
