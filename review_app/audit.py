"""The auditors' view: every decision and undo in a period, filtered, page by page, and as CSV.

Only the auditors on ALLOWED_AUDITORS may see it (their own list, apart from the reviewers'). It
reads the plant's records (inspection/records.py: BigQuery in the cloud, the local sink's files in
local mode), only the days asked for, one page at a time; the CSV streams the period row by row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
)

from inspection import calls, layout, records
from review_app.auth import auditors_only
from review_app.errors import NotAllowed
from review_app.unclear_queue import check_name

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
    "heatmap",
)
FILTERS = {
    "reviewer": None,
    "line": None,
    "label": ("", *layout.DECISIONS),
    "agreement": ("", "agree", "overrule", "no_model", "not_judged"),
}
MAX_DAYS = 92
PAGE = 100
MAX_FILTER_CHARS = 320


bp.before_request(auditors_only)


def store() -> records.Store:
    location = current_app.extensions["settings"].records
    if not location:
        abort(503, "no records store is configured (RECORDS)")
    return records.open_store(location)


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


def _filters() -> dict[str, str]:
    chosen = {}
    for key, choices in FILTERS.items():
        value = request.args.get(key, "").strip()
        if choices is not None and value not in choices:
            abort(400, f"{key} must be one of: {', '.join(c or 'any' for c in choices)}")
        if len(value) > MAX_FILTER_CHARS:
            abort(400, f"{key} is longer than {MAX_FILTER_CHARS} characters")
        chosen[key] = value
    return chosen


def row(record: dict) -> dict[str, str]:
    """A record as the auditor reads it: names shown as they are, controls made visible."""
    score = record.get("model_score")
    return {
        "at": str(record["occurred_at"]),
        "event": "decision" if record["event"] == "decided" else "undo",
        "reviewer": record.get("reviewer") or "",
        "line": record.get("line") or "",
        "image": layout.displayed(record.get("image") or ""),
        "human_label": record.get("label") or "",
        "model_label": record.get("model_label") or "",
        "model_score": f"{score:.6f}" if isinstance(score, float) else "",
        "agreement": record.get("agreement") or "",
        "object": layout.displayed(record.get("object") or ""),
        "heatmap": record.get("heatmap") or "",
        "event_id": record["event_id"],
        "_object": record.get("object") or "",  # the name as stored, for the link to the photo
    }


@bp.get("/audit")
def table():
    start, end = _range()
    chosen = _filters()
    after = (request.args.get("after_at", "")[:64], request.args.get("after_id", "")[:64])
    found = store()
    params = records.audit_params(start, end, chosen, after, PAGE)
    page = [row(r) for r in found.query(records.AUDIT_PAGE, start, end, params)]
    total = found.query(records.AUDIT_COUNT, start, end, params)[0]["events"]
    here = {**chosen, "from": start.isoformat(), "to": end.isoformat()}
    following = None
    if len(page) == PAGE:
        following = {**here, "after_at": page[-1]["at"], "after_id": page[-1]["event_id"]}
    return render_template(
        "audit.html",
        rows=page,
        columns=COLUMNS,
        start=start,
        end=end,
        chosen=chosen,
        total=total,
        here=here,
        following=following,
        first=not after[0],
    )


@bp.get("/audit/photo")
def photo():
    """The photo a reviewer decided, and over it the anomaly map they could see (if there was
    one), by short-lived URLs the audit service signs."""
    name, heatmap = request.args.get("object", ""), request.args.get("heatmap", "")
    try:
        check_name(name)
    except NotAllowed as exc:
        abort(400, str(exc))
    if layout.parse(name).folder != layout.HUMAN_DECIDED:
        abort(400, "only a decided photo (human_decided/) can be shown")
    if heatmap and not layout.HEATMAP_NAME.match(heatmap):
        abort(400, "heatmap must be heatmaps/<40 hex digits>.png")
    bucket, signer = current_app.extensions["settings"].prediction_bucket, current_app.extensions["signer"]
    return render_template(
        "audit_photo.html",
        name=layout.displayed(name),
        photo_url=signer.url(bucket, name, None),
        heatmap_url=signer.url(bucket, heatmap, None) if heatmap else "",
    )


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _cell(value: str) -> str:
    """Spreadsheets run cells that start like a formula, and skip leading spaces to find that start
    (" =1+1" is a formula too); neutralise them."""
    return "'" + value if value[:1] in FORMULA_STARTS or value.lstrip()[:1] in FORMULA_STARTS else value


@bp.get("/audit.csv")
def download():
    start, end = _range()
    chosen = _filters()
    found = store()

    def lines() -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # a BOM: spreadsheet programs then read the file as UTF-8
        writer.writerow(COLUMNS)
        # streamed after the request's own hooks ran: each page is read as the audit service
        for record in calls.each_acting_as(bp.name, records.audit_pages(found, start, end, chosen)):
            shown = row(record)
            writer.writerow([_cell(shown[c]) for c in COLUMNS])
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue().encode("utf-8")

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="decisions_{start}_{end}.csv"'},
    )
