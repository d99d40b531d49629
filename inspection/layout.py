"""Where objects live in the prediction bucket.

    ok/<name>                      auto-decided ok
    defect/<name>                  auto-decided defect
    unclear/<name>                 waiting for a reviewer
    rejected/<name>                not classifiable; metadata says why
    human_decided/<label>/<name>   decided by a reviewer; metadata says who and when
    review/leases/<name>           a reviewer's short claim on unclear/<name>
    review/queue/<time>-<hash>     unclear images in arrival order, for oldest-first review
    claims/<hash>.json             the one decision recorded for one moved object generation
    daily/<YYYY-MM-DD>/<hash>-…    one record per outcome and day, for the plant's report

`<name>` is the inbound object name, kept verbatim: it is an object key, never a file path.
"""

from __future__ import annotations

import hashlib
import json
import posixpath

OK = "ok"
DEFECT = "defect"
LABELS = (OK, DEFECT)
UNCLEAR = "unclear"
REJECTED = "rejected"
HUMAN_DECIDED = "human_decided"
LEASES = "review/leases"
REVIEW_QUEUE = "review/queue"
CLAIMS = "claims"
DAILY = "daily"
ROUTED_FOLDERS = (OK, DEFECT, UNCLEAR, REJECTED)
# Objects that are the product's own records, not images: claims, daily records, leases, the queue.
BOOKKEEPING = (CLAIMS + "/", DAILY + "/", "review/")


def routed(folder: str, name: str) -> str:
    """The destination of inbound object `name` in `folder`."""
    return f"{folder}/{name}"


def human_decided(label: str, name: str) -> str:
    """Where a reviewer's decision on `name` is kept."""
    return f"{HUMAN_DECIDED}/{label}/{name}"


def lease(name: str) -> str:
    """The lease object for unclear image `name`."""
    return f"{LEASES}/{name}"


def alongside(destination: str, generation: int) -> str:
    """A second, deterministic name for `destination` when a different object already holds it.

    Deterministic so that a redelivered message finds its own earlier copy.
    """
    folder, base = posixpath.split(destination)
    stem, ext = posixpath.splitext(base)
    if not stem:  # names like ".jpg" have no stem; keep the whole base
        stem, ext = base, ""
    renamed = f"{stem}__g{generation}{ext}"
    return f"{folder}/{renamed}" if folder else renamed


def unservable(name: str) -> str | None:
    """Why the product cannot carry `name` from upload to a reviewer's decision, or None.

    GCS accepts these names, but control characters and backslashes cannot travel through the
    review app's requests and headers, and a `.` or `..` segment is resolved away by the browser
    before a signed URL reaches GCS, so such an image could never be shown or decided.
    """
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "a control character"
    if "\\" in name:
        return "a backslash"
    if any(segment in (".", "..") for segment in name.split("/")):
        return "a '.' or '..' path segment"
    return None


def quarantined(name: str) -> str:
    """A safe, unique name in rejected/ for an object whose own name cannot be served."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"{REJECTED}/unsafe_name/{digest}"


def printable(name: str) -> str:
    """`name` as ASCII metadata can carry (JSON escapes), so nothing is lost."""
    return json.dumps(name)[1:-1]


def split_gs_uri(uri: str) -> tuple[str, str]:
    """gs://bucket/name → (bucket, name); the name may be empty (a whole bucket) or a prefix."""
    if not uri.startswith("gs://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"{uri!r} is not gs://bucket/…")
    bucket, _, name = uri[5:].partition("/")
    return bucket, name


NO_LINE = "none"


def line_of(name: str, segment: int = 1) -> str:
    """The production line a photo came from: by default the first folder of its object name
    (`line-1/part-0042.jpeg` → `line-1`); `segment` 0 puts every image on one line."""
    parts = name.split("/")
    if segment <= 0 or len(parts) <= segment:
        return NO_LINE
    return parts[segment - 1] or NO_LINE
