"""Where objects live in the prediction bucket, both ways: names are built here and parsed here.

    ok/<name>                      auto-decided ok
    defect/<name>                  auto-decided defect
    unclear/<name>                 waiting for a reviewer
    rejected/<name>                not classifiable; metadata says why
    quarantine/<hash>              a name the product cannot carry; metadata keeps the original
    human_decided/<label>/<name>   decided by a reviewer (ok, defect, or unusable: not a part)
    review/leases/<hash>           a reviewer's short claim on one unclear image (its name in metadata)
    review/queue/<time>-<hash>     unclear images in arrival order, for oldest-first review
    claims/<hash>.json             the one record of one moved object generation
    redrive/<hash>-<window>        the sweep re-drove that inbound generation in that window
    heatmaps/<hash>.png            an anomaly model's map of one inbound generation (unclear or defect)

`<name>` is the inbound object name, kept verbatim: it is an object key, never a file path.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import unicodedata
from dataclasses import dataclass

OK = "ok"
DEFECT = "defect"
LABELS = (OK, DEFECT)  # what a model decides, and what training learns
UNUSABLE = "unusable"  # a reviewer's third answer: not a part, or a photo nobody can judge
DECISIONS = (*LABELS, UNUSABLE)  # what a reviewer may answer
UNCLEAR = "unclear"
REJECTED = "rejected"
QUARANTINE = "quarantine"
HUMAN_DECIDED = "human_decided"
LEASES = "review/leases"
REVIEW_QUEUE = "review/queue"
CLAIMS = "claims"
REDRIVE = "redrive"
HEATMAPS = "heatmaps"
BACKFILL = "backfill"  # an archive classified in bulk: backfill/<batch>/<folder>/<name>
ROUTED_FOLDERS = (OK, DEFECT, UNCLEAR, REJECTED)
# Objects that are the product's own records, not images.
BOOKKEEPING = (CLAIMS + "/", "review/", REDRIVE + "/", HEATMAPS + "/")

# Cloud Storage refuses names over 1,024 bytes of UTF-8, with CR or LF, and "." or ".."
# (https://cloud.google.com/storage/docs/objects#naming).
MAX_NAME_BYTES = 1024
# `alongside` adds at most "__g" + a 19-digit generation + "-9".
ALONGSIDE_BYTES = len("__g") + 19 + len("-9")
ALONGSIDE_NAMES = 4  # names tried beside a taken destination before the image is held for a person


@dataclass(frozen=True)
class Place:
    """What an object name in the prediction bucket says: its folder, a reviewer's label for
    human_decided/, and the inbound name it carries ("" for bookkeeping and quarantine)."""

    folder: str
    name: str
    label: str = ""


def routed(folder: str, name: str) -> str:
    """The destination of inbound object `name` in `folder`."""
    return f"{folder}/{name}"


def backfilled(batch: str, folder: str, name: str) -> str:
    """Where a backfill batch puts an archive image: never in the reviewers' live queue."""
    return f"{BACKFILL}/{batch}/{folder}/{name}"


def human_decided(label: str, name: str) -> str:
    """Where a reviewer's decision on `name` is kept."""
    return f"{HUMAN_DECIDED}/{label}/{name}"


def parse(object_name: str) -> Place:
    """The inverse of `routed` and `human_decided`; anything else is its top folder and no name."""
    folder, _, rest = object_name.partition("/")
    if folder == HUMAN_DECIDED:
        label, _, name = rest.partition("/")
        return Place(folder, name, label)
    if folder in ROUTED_FOLDERS:
        return Place(folder, rest)
    return Place(folder, "")


def digest(text: str, length: int = 32) -> str:
    """A fixed-length key for any name, however long or odd."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def lease(name: str) -> str:
    """The lease object for unclear image `name`: fixed length, so any servable name has one."""
    return f"{LEASES}/{digest(name, 40)}"


def heatmap(bucket: str, name: str, generation: int) -> str:
    """The anomaly map of one inbound object generation: named by it, so a redelivery writes the
    same name and every later copy of the image (unclear/, human_decided/) finds it by provenance."""
    return f"{HEATMAPS}/{digest(gs_uri(bucket, name, generation), 40)}.png"


HEATMAP_NAME = re.compile(rf"^{HEATMAPS}/[0-9a-f]{{40}}\.png$")


def candidates(destination: str, generation: int) -> list[str]:
    """Where a copy of source `generation` may go: the destination, else names beside it that embed
    the generation, so each is either free or holds a copy of the same object. Deterministic, so a
    redelivered message finds its own earlier copy; an earlier suffix is replaced, not stacked, so
    names do not grow as an image is decided, undone and decided again."""
    folder, base = posixpath.split(destination)
    stem, ext = posixpath.splitext(base)
    if not stem:  # names like ".jpg" have no stem; keep the whole base
        stem, ext = base, ""
    stem = re.sub(r"__g[0-9]+(-[0-9])?$", "", stem) or stem
    found = [destination]
    for attempt in range(ALONGSIDE_NAMES):
        renamed = f"{stem}__g{generation}{f'-{attempt}' if attempt else ''}{ext}"
        found.append(f"{folder}/{renamed}" if folder else renamed)
    return found


def alongside(destination: str, generation: int) -> str:
    """The first name beside a taken destination."""
    return candidates(destination, generation)[1]


# The longest folder an inbound name is carried under, and what `alongside` may add to it.
_LONGEST_PREFIX = max(
    len(prefix.encode())
    for prefix in [routed(folder, "") for folder in ROUTED_FOLDERS]
    + [human_decided(label, "") for label in DECISIONS]
)
MAX_SERVABLE_NAME_BYTES = MAX_NAME_BYTES - _LONGEST_PREFIX - ALONGSIDE_BYTES
# Bidirectional embeddings, overrides and isolates make a name display as another name.
BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def unservable(name: str) -> str | None:
    """Why the product cannot carry `name` from upload to a reviewer's decision, or None.

    The one rule predict applies at the entrance. GCS accepts these names, but:
    - control characters and backslashes cannot travel through the review app's requests;
    - a `.` or `..` segment is resolved away by the browser before a signed URL reaches GCS;
    - bidirectional controls make a name display as a different name;
    - a name longer than MAX_SERVABLE_NAME_BYTES no longer fits GCS's 1,024 bytes once it is
      carried under the longest folder (human_decided/unusable/) with a name beside it.
    """
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if size > MAX_SERVABLE_NAME_BYTES:
        return f"is {size} bytes long, over the {MAX_SERVABLE_NAME_BYTES} bytes a routed name may have"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "has a control character"
    if "\\" in name:
        return "has a backslash"
    if any(segment in (".", "..") for segment in name.split("/")):
        return "has a '.' or '..' path segment"
    if any(ch in BIDI_CONTROLS for ch in name):
        return "has a bidirectional control character, which would make it display as another name"
    return None


def quarantined(name: str) -> str:
    """A short, unique name for an object whose own name cannot be carried. It lives in its own
    folder, so no inbound name can take it first."""
    return f"{QUARANTINE}/{digest(name, 24)}"


def printable(name: str) -> str:
    """`name` as ASCII metadata can carry (JSON escapes), so nothing is lost."""
    return json.dumps(name)[1:-1]


def displayed(name: str) -> str:
    """`name` as a person should read it: invisible controls and bidirectional overrides shown as
    ⟨U+XXXX⟩, so no name can look like another."""
    return "".join(
        f"⟨U+{ord(ch):04X}⟩" if ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cf") else ch
        for ch in name
    )


# --- gs:// URIs: the one place that knows their form ------------------------------------------------

GS = "gs://"


def is_gs_uri(location: str) -> bool:
    return location.startswith(GS)


def gs_uri(bucket: str, name: str = "", generation: int | None = None) -> str:
    """gs://bucket/name, with #generation when one is given."""
    return f"{GS}{bucket}/{name}" + (f"#{generation}" if generation else "")


def split_gs_uri(uri: str) -> tuple[str, str]:
    """gs://bucket/name → (bucket, name); the name may be empty (a whole bucket) or a prefix."""
    if not is_gs_uri(uri) or not uri[len(GS) :].split("/", 1)[0]:
        raise ValueError(f"{uri!r} is not gs://bucket/…")
    bucket, _, name = uri[len(GS) :].partition("/")
    return bucket, name


def parse_gs_uri(uri: str) -> tuple[str, str, int | None]:
    """gs://bucket/name[#generation] → (bucket, name, generation or None). A '#' followed by
    anything but digits is part of the name."""
    bucket, rest = split_gs_uri(uri)
    name, sep, generation = rest.rpartition("#")
    if sep and generation.isascii() and generation.isdigit():
        return bucket, name, int(generation)
    return bucket, rest, None


def folder_of(uri_or_name: str) -> str:
    """The folder part of a path or gs:// URI ("" at the top)."""
    return uri_or_name.rpartition("/")[0]


NO_LINE = "none"


def line_of(name: str, segment: int = 1) -> str:
    """The production line a photo came from: by default the first folder of its object name
    (`line-1/part-0042.jpeg` → `line-1`); `segment` 0 puts every image on one line."""
    parts = name.split("/")
    if segment <= 0 or len(parts) <= segment:
        return NO_LINE
    return parts[segment - 1] or NO_LINE
