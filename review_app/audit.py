"""The auditors' view: every decision in a time range, as a table and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

from flask import Blueprint, Response, abort, current_app, render_template, request

from inspection import layout, metadata, storage

bp = Blueprint("audit", __name__)
COLUMNS = (
    "decided_at",
    "reviewer",
    "image",
    "human_label",
    "model_label",
    "model_score",
    "original",
    "object",
)


def decisions_between(prediction_bucket: str, start: datetime, end: datetime) -> list[dict]:
    """Every decision made in [start, end), oldest first."""
    rows = []
    for blob in storage.client().list_blobs(prediction_bucket, prefix=layout.HUMAN_DECIDED + "/"):
        meta = blob.metadata or {}
        try:
            when = datetime.fromisoformat(meta[metadata.DECIDED_AT])
        except (KeyError, ValueError):
            continue
        if start <= when < end:
            rows.append(
                {
                    "decided_at": meta[metadata.DECIDED_AT],
                    "reviewer": meta.get(metadata.REVIEWER, ""),
                    "image": blob.name.split("/", 2)[2],
                    "human_label": meta.get(metadata.HUMAN_LABEL, ""),
                    "model_label": meta.get(metadata.MODEL_LABEL, ""),
                    "model_score": meta.get(metadata.MODEL_SCORE, ""),
                    "object": blob.name,
                    "original": meta.get(metadata.COPIED_FROM, ""),
                }
            )
    return sorted(rows, key=lambda row: row["decided_at"])


def _range() -> tuple[datetime, datetime]:
    """[from 00:00, to 24:00) in UTC; defaults to the last 7 days."""
    today = datetime.now(UTC).date()
    try:
        start = datetime.fromisoformat(request.args.get("from") or str(today - timedelta(days=6))).date()
        end = datetime.fromisoformat(request.args.get("to") or str(today)).date()
    except ValueError:
        abort(400, "dates must be YYYY-MM-DD")
    if end < start:
        abort(400, "'to' is before 'from'")
    if end >= date.max:
        abort(400, "'to' is too far in the future")
    return datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC)


def _rows():
    start, end = _range()
    bucket = current_app.extensions["settings"].prediction_bucket
    return start, end, decisions_between(bucket, start, end)


@bp.get("/audit")
def table():
    start, end, rows = _rows()
    return render_template(
        "audit.html", rows=rows, columns=COLUMNS, start=start.date(), end=(end - timedelta(days=1)).date()
    )


def _cell(value: str) -> str:
    """Spreadsheets run cells that start like a formula; neutralise them."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@bp.get("/audit.csv")
def download():
    start, end, rows = _rows()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(str(row[c])) for c in COLUMNS])
    filename = f"decisions_{start.date()}_{(end - timedelta(days=1)).date()}.csv"
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
