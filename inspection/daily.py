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
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from google.api_core import exceptions as gexc

from inspection import layout, storage

ROUTED, REJECTED, DECIDED, UNDONE = "routed", "rejected", "decided", "undone"


def record_name(day: str, source_uri: str, kind: str) -> str:
    return f"{layout.DAILY}/{day}/{hashlib.sha256(source_uri.encode()).hexdigest()[:32]}-{kind}.json"


def record(bucket: str, claim: storage.Claim, kind: str, **fields: object) -> None:
    """Write the record of one move's outcome from the claim that decided it: its source, and the
    moment it was decided. Once: a second write of the same name is refused and ignored."""
    day = datetime.fromisoformat(claim.claimed_at).date().isoformat()
    body = json.dumps(
        {"kind": kind, "at": claim.claimed_at, "source": claim.source, **fields}, sort_keys=True
    )
    blob = storage.client().bucket(bucket).blob(record_name(day, claim.source, kind))
    with contextlib.suppress(gexc.PreconditionFailed):
        blob.upload_from_string(body, content_type="application/json", if_generation_match=0)


def read_period(bucket: str, start: date, end: date) -> Iterator[tuple[date, dict]]:
    """(day, record) for every record of the days from `start` to `end`, and of no other day."""
    for day in (start + timedelta(days=n) for n in range((end - start).days + 1)):
        for blob in storage.client().list_blobs(bucket, prefix=f"{layout.DAILY}/{day.isoformat()}/"):
            yield day, json.loads(blob.download_as_bytes())
