"""The auditors' view: every decision and undo in a period, filtered, as a table and as CSV.

Only the auditors on ALLOWED_AUDITORS may see it (their own list, apart from the reviewers'; in
local mode the local reviewer may). It reads the per-day index (`daily/<day>/`), so its cost is
bounded by the period asked for, not by the size of `human_decided/`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from flask import Blueprint, Response, abort, current_app, g, render_template, request

from inspection import daily
from review_app.auth import allowed

bp = Blueprint("audit", __name__)
COLUMNS = (
    "at",
    "event",
    "reviewer",
    "line",
    "image",
    "human_label",
    "model_label",
    "model_score",
    "agreement",
    "object",
)
FILTERS = ("reviewer", "line", "label", "agreement")
MAX_DAYS = 92


@bp.before_request
def _auditors_only() -> None:
    settings = current_app.extensions["settings"]
    if settings.auth_mode == "local":
        return
    if not settings.allowed_auditors or not allowed(g.reviewer, settings.allowed_auditors):
        abort(403, "the audit view is for auditors (ALLOWED_AUDITORS)")


def events_between(prediction_bucket: str, start: date, end: date) -> list[dict]:
    """Decisions and undos in [start, end], oldest first, from the days asked for only."""
    rows = []
    for _, record in daily.read_period(prediction_bucket, start, end):
        if record["kind"] not in (daily.DECIDED, daily.UNDONE):
            continue
        rows.append(
            {
                "at": record["at"],
                "event": "decision" if record["kind"] == daily.DECIDED else "undo",
                "reviewer": record.get("reviewer", ""),
                "line": record.get("line", ""),
                "image": record.get("image", ""),
                "human_label": record.get("label", ""),
                "model_label": record.get("model_label", ""),
                "model_score": record.get("model_score", ""),
                "agreement": record.get("agreement", ""),
                "object": record.get("object", ""),
            }
        )
    return sorted(rows, key=lambda row: row["at"])


def _range() -> tuple[date, date]:
    """[from, to] in UTC days; the last 7 days by default."""
    today = datetime.now(UTC).date()
    try:
        start = date.fromisoformat(request.args.get("from") or str(today - timedelta(days=6)))
        end = date.fromisoformat(request.args.get("to") or str(today))
    except ValueError:
        abort(400, "dates must be YYYY-MM-DD")
    if end < start:
        abort(400, "'to' is before 'from'")
    if (end - start).days >= MAX_DAYS:
        abort(400, f"a period is at most {MAX_DAYS} days")
    return start, end


def _rows() -> tuple[date, date, list[dict], dict[str, str]]:
    start, end = _range()
    chosen = {key: request.args.get(key, "").strip() for key in FILTERS}
    field = {"label": "human_label"}
    rows = [
        row
        for row in events_between(current_app.extensions["settings"].prediction_bucket, start, end)
        if all(not value or row[field.get(key, key)] == value for key, value in chosen.items())
    ]
    return start, end, rows, chosen


@bp.get("/audit")
def table():
    start, end, rows, chosen = _rows()
    return render_template("audit.html", rows=rows, columns=COLUMNS, start=start, end=end, chosen=chosen)


def _cell(value: str) -> str:
    """Spreadsheets run cells that start like a formula; neutralise them."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@bp.get("/audit.csv")
def download():
    start, end, rows, _ = _rows()
    buffer = io.StringIO()
    buffer.write("\ufeff")  # a BOM: spreadsheet programs then read the file as UTF-8
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(str(row[c])) for c in COLUMNS])
    return Response(
        buffer.getvalue().encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="decisions_{start}_{end}.csv"'},
    )
