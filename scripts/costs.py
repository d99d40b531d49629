"""What classifying costs a month, per backend, from measured counts and cited prices.

    python -m scripts.costs          # prints the cost tables of docs/deploy.md

Every count per image here is what the pipeline does: tests/test_costs.py runs the real handlers
against the storage emulator behind its proxy, counts each storage request by its JSON API method,
measures the log lines and messages, and fails when a count here differs. Prices are Google's list
prices in USD, read from each pricing page (the date is given with each); the tables apply no free
tier, and say which free tier covers what.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

# --- prices ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str
    read: str


PRICES = {
    "gcs_class_a": Price(0.005 / 1000, "operation", "https://cloud.google.com/storage/pricing", "2026-09-20"),
    "gcs_class_b": Price(
        0.0004 / 1000, "operation", "https://cloud.google.com/storage/pricing", "2026-09-20"
    ),
    "gcs_standard_gib_month": Price(
        0.020, "GB-month, Standard, europe-west4", "https://cloud.google.com/storage/pricing", "2026-11-29"
    ),
    "pubsub_tib": Price(
        40.0,
        "TiB of publish or delivery, at least 1,000 bytes a request",
        "https://cloud.google.com/pubsub/pricing",
        "2026-11-29",
    ),
    "eventarc_google_event": Price(
        0.0,
        "event from a Google source (its Pub/Sub transport is billed as Pub/Sub)",
        "https://cloud.google.com/eventarc/pricing",
        "2026-11-29",
    ),
    "logging_gib": Price(
        0.50,
        "GiB ingested (first 50 GiB a project a month free)",
        "https://cloud.google.com/stackdriver/pricing",
        "2026-11-29",
    ),
    "bigquery_query_tib": Price(
        6.25,
        "TiB scanned on demand (first 1 TiB a month free)",
        "https://cloud.google.com/bigquery/pricing",
        "2026-11-29",
    ),
    "bigquery_storage_gib_month": Price(
        0.02,
        "GiB-month, active logical (first 10 GiB free; half after 90 days)",
        "https://cloud.google.com/bigquery/pricing",
        "2026-11-29",
    ),
    "bigquery_streaming_200mib": Price(
        0.01,
        "200 MiB streamed, each row at least 1 KiB",
        "https://cloud.google.com/bigquery/pricing",
        "2026-11-29",
    ),
    "run_vcpu_second": Price(0.000024, "vCPU-second", "https://cloud.google.com/run/pricing", "2026-11-25"),
    "run_gib_second": Price(0.0000025, "GiB-second", "https://cloud.google.com/run/pricing", "2026-11-25"),
    "run_request": Price(0.40 / 1e6, "request", "https://cloud.google.com/run/pricing", "2026-11-25"),
    "vertex_node_hour": Price(
        1.375, "node hour, image classification", "https://cloud.google.com/vertex-ai/pricing", "2026-11-25"
    ),
}

# --- what each image makes happen, measured (tests/test_costs.py) -------------------------------------------

# Storage requests by JSON API method, per step. The upload is the camera's; the review steps are one
# decision as the page makes it in steady state: lease the next photo ahead, show it, fetch it
# through its signed URL, decide.
STORAGE = {
    "upload": {"objects.insert": 1},
    "predict": {"objects.get": 1},
    "move": {"objects.get": 1, "objects.insert": 2, "objects.rewrite": 1, "objects.delete": 1},
    "move, unclear": {"objects.get": 1, "objects.insert": 3, "objects.rewrite": 1, "objects.delete": 1},
    "review": {
        "objects.list": 2,
        "objects.get": 6,
        "objects.insert": 4,
        "objects.rewrite": 1,
        "objects.delete": 3,
    },
}
# https://cloud.google.com/storage/pricing#operations-by-class: inserts, copies (rewrites) and lists
# are Class A; gets are Class B; deletes are free.
CLASS_OF = {
    "objects.insert": "A",
    "objects.rewrite": "A",
    "objects.copy": "A",
    "objects.compose": "A",
    "objects.list": "A",
    "objects.patch": "A",
    "objects.get": "B",
    "objects.delete": "free",
}
# Bytes of our own JSON log lines per step (rounded up to 100), and the Pub/Sub messages.
LOG_BYTES = {"predict": 400, "move": 600, "move, unclear": 600, "review": 600}
RECORD_BYTES = {"routed": 600, "decided": 600}  # the record line's payload, which the sink stores
PUBSUB_REQUESTS = 4  # Eventarc's transport: the storage event published and pushed; ours: the same
PUBSUB_MIN_BYTES = 1000  # every message here is smaller; each request is billed 1,000 bytes

# Estimates, not measurements, each said where it is used.
REQUEST_LOG_BYTES = 1000  # the platform's own request log entry per function call, ingested too
SINK_ROW_OVERHEAD = 500  # what a sink row holds besides the payload (resource, timestamps, ids)
PHOTO_BYTES = 150_000  # one photo; yours may differ
UNCLEAR_SHARE = 0.05  # with a model; with none (day zero) every photo is unclear
REPORTS_A_DAY, AUDIT_PAGES_A_DAY = 1, 20

# Functions: a billed 100 ms for each call (the bench measures under 15 ms of CPU per image), on the
# sizes the program declares; with Vertex, predict also waits about 300 ms for the endpoint.
PREDICT = (0.583, 1.0)  # vCPU, GiB
MOVE = (0.167, 0.25)
BACKENDS = ("none", "tflite, onnx or anomaly", "vertex")
VOLUMES = (10_000, 100_000, 1_000_000, 26_000_000)  # a 10-line plant: 26 million a month
HOURS_A_MONTH = 730
GIB, TIB = 2**30, 2**40


def _ops(step: str) -> dict[str, int]:
    found = {"A": 0, "B": 0, "free": 0}
    for method, count in STORAGE[step].items():
        found[CLASS_OF[method]] += count
    return found


def _function(seconds: float, size: tuple[float, float]) -> float:
    vcpu, gib = size
    p = PRICES
    return seconds * (vcpu * p["run_vcpu_second"].usd + gib * p["run_gib_second"].usd) + p["run_request"].usd


def per_image(backend: str) -> dict[str, float]:
    """USD per image, by line item."""
    p = PRICES
    unclear = 1.0 if backend == "none" else UNCLEAR_SHARE
    steps = {"upload": 1, "predict": 1, "move": 1 - unclear, "move, unclear": unclear, "review": unclear}
    a = sum(_ops(step)["A"] * share for step, share in steps.items())
    b = sum(_ops(step)["B"] * share for step, share in steps.items())
    logs = sum(LOG_BYTES.get(step, 0) * share for step, share in steps.items()) + 2 * REQUEST_LOG_BYTES
    rows = 1 + unclear  # routed, and decided for the unclear ones
    row_bytes = RECORD_BYTES["routed"] + unclear * RECORD_BYTES["decided"] + rows * SINK_ROW_OVERHEAD
    predict_s = 0.4 if backend == "vertex" else 0.1
    return {
        "storage operations, Class A": a * p["gcs_class_a"].usd,
        "storage operations, Class B": b * p["gcs_class_b"].usd,
        "Pub/Sub (Eventarc's transport and ours)": PUBSUB_REQUESTS
        * PUBSUB_MIN_BYTES
        / TIB
        * p["pubsub_tib"].usd,
        "Cloud Logging ingestion": logs / GIB * p["logging_gib"].usd,
        "BigQuery streaming (the sink)": rows
        * max(1024, row_bytes / rows)
        / (200 * 2**20)
        * p["bigquery_streaming_200mib"].usd,
        "BigQuery storage, per month kept": row_bytes / GIB * p["bigquery_storage_gib_month"].usd,
        "functions (predict, move)": _function(predict_s, PREDICT) + _function(0.1, MOVE),
    }


def monthly(backend: str, images: int) -> dict[str, float]:
    """USD for a month of `images`, by line item, no free tier."""
    p = PRICES
    items = {name: usd * images for name, usd in per_image(backend).items()}
    day_bytes = images / 30 * (RECORD_BYTES["routed"] + RECORD_BYTES["decided"] * UNCLEAR_SHARE)
    scanned = 30 * (REPORTS_A_DAY * 2 * day_bytes + AUDIT_PAGES_A_DAY * 7 * day_bytes)
    items["BigQuery queries (a report and 20 audit pages a day)"] = (
        scanned / TIB * p["bigquery_query_tib"].usd
    )
    items["Vertex AI endpoint (one node, always on)"] = (
        HOURS_A_MONTH * p["vertex_node_hour"].usd if backend == "vertex" else 0.0
    )
    return items


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def render() -> str:
    lines = [
        "**Per image** (USD, list prices; a model sends 5% of photos to a person, no model sends all):",
        "",
    ]
    lines.append("| line item | " + " | ".join(f"`{b}`" for b in BACKENDS) + " |")
    lines.append("|---|" + "---:|" * len(BACKENDS))
    table = {b: per_image(b) for b in BACKENDS}
    for item in table[BACKENDS[0]]:
        lines.append(f"| {item} | " + " | ".join(f"${table[b][item]:.8f}" for b in BACKENDS) + " |")
    lines += ["", "**A month** (USD, list prices, before any free tier):", ""]
    lines.append(
        "| images a month | " + " | ".join(f"`{b}`" for b in BACKENDS) + " | photos kept a month, Standard |"
    )
    lines.append("|---:|" + "---:|" * (len(BACKENDS) + 1))
    for images in VOLUMES:
        totals = [sum(monthly(b, images).values()) for b in BACKENDS]
        photos = images * PHOTO_BYTES / 1e9 * PRICES["gcs_standard_gib_month"].usd
        lines.append(f"| {images:,} | " + " | ".join(_usd(t) for t in totals) + f" | {_usd(photos)} |")
    lines += ["", "Prices, as read:", ""]
    for name, price in PRICES.items():
        lines.append(f"- `{name}`: ${price.usd:.10g} per {price.per} ({price.source}, read {price.read})")
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- costs:begin (python -m scripts.costs) -->", "<!-- costs:end -->"


def main(argv: list[str] | None = None) -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
