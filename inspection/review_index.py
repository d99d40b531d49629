"""The reviewers' queue in arrival order: one small object per unclear image, named so that GCS's
lexicographic listing is oldest first (`review/queue/<routed at, UTC>-<hash>`).

Listing `unclear/` itself gives name order, so an image that arrived hours ago under a late name
would wait behind newer ones. The index costs one small write when move routes an image to
unclear/ and one delete when a reviewer decides it; the review app reads one bounded page of it
per next image, whatever the queue's length. An entry whose image is gone (a crash between the
decision and the delete) is dropped the next time it is met.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime

from google.api_core import exceptions as gexc

from inspection import layout, storage

PREFIX = layout.REVIEW_QUEUE + "/"


def entry_name(name: str, generation: int, routed_at: str) -> str:
    when = datetime.fromisoformat(routed_at).strftime("%Y%m%dT%H%M%S.%f")
    return f"{PREFIX}{when}-{hashlib.sha256(f'{name}#{generation}'.encode()).hexdigest()[:20]}"


def add(bucket: str, name: str, generation: int, routed_at: str) -> None:
    """Queue unclear image `name` (at that generation) under its arrival time; safe to repeat."""
    blob = storage.client().bucket(bucket).blob(entry_name(name, generation, routed_at))
    blob.metadata = {"name": name, "generation": str(generation), "routed_at": routed_at}
    with contextlib.suppress(gexc.PreconditionFailed):
        blob.upload_from_string(b"", if_generation_match=0)


def remove(bucket: str, name: str, generation: int, routed_at: str) -> None:
    storage.delete_quietly(bucket, entry_name(name, generation, routed_at))
