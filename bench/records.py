"""The plant's records at plant scale, in DuckDB: a year of a 10-line plant, written as the local
sink writes it (Parquet, one folder per day), then the quality report for one day and audit pages
for a week, timed; and what the same queries would scan and cost in BigQuery.

The year: ten lines at one photo a second make 864,000 outcomes a day. Writing 300 million rows is
more than this machine's disk and the bench's time allow, so the year holds one full plant day
(the day the report reads) and 364 quieter days, 10.4 million outcomes in all; the report's time
for one day does not depend on the others (partition pruning), which `records_report_flat_*`
shows by timing the same day in a store of 10,000 outcomes and in this one.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from inspection import records

ROOT = Path(__file__).resolve().parents[1] / ".build" / "bench-records"
LINES = 10
PLANT_DAY = 864_000  # ten lines, one photo a second each
QUIET_DAY = 26_200  # the other days of the year: 10.4 million outcomes in all
YEAR_START = date(2026, 1, 1)
REPORT_DAY = date(2026, 7, 1)
UNCLEAR, REJECTED, UNDONE = 0.05, 0.002, 0.01  # shares of images, and of decisions undone
TIB = 2**40
BIGQUERY_PER_TIB = 6.25  # on-demand (https://cloud.google.com/bigquery/pricing), read 2026-11-29


def _day(day: date, images: int, seed: int) -> dict[str, np.ndarray]:
    """One day's outcomes: every image routed (or rejected), the unclear ones decided, some undone."""
    rng = np.random.default_rng(seed)
    n = np.arange(images)
    line = (n % LINES).astype(str)
    line = np.char.add("line-", line)
    roll = rng.random(images)
    folder = np.where(roll < UNCLEAR, "unclear", np.where(roll < UNCLEAR + 0.05, "defect", "ok"))
    event = np.where(rng.random(images) < REJECTED, "rejected", "routed")
    seconds = np.sort(rng.integers(0, 86_400, images))
    stamp = [f"{day.isoformat()}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00:00" for s in seconds]
    image = np.char.add(np.char.add(line, "/part-"), n.astype(str))
    rows = {
        "record": np.ones(images, dtype=np.int64),
        "event": event,
        "event_id": np.char.add(f"{day.isoformat()}-r", n.astype(str)),
        "occurred_at": np.array(stamp),
        "image": image,
        "line": line,
        "object": np.char.add(np.char.add(folder, "/"), image),
        "folder": np.where(event == "rejected", "rejected", folder),
        "label": np.where(folder == "defect", "defect", "ok"),
        "score": rng.uniform(0.5, 1.0, images),
        "model": np.full(images, "edge-2026-06"),
        "threshold": np.full(images, 0.9),
    }
    unclear = np.flatnonzero((folder == "unclear") & (event == "routed"))
    decided = {
        "record": np.ones(len(unclear), dtype=np.int64),
        "event": np.full(len(unclear), "decided"),
        "event_id": np.char.add(f"{day.isoformat()}-d", unclear.astype(str)),
        "occurred_at": np.array(stamp)[unclear],
        "image": image[unclear],
        "line": line[unclear],
        "object": np.char.add("human_decided/ok/", image[unclear]),
        "folder": np.full(len(unclear), "human_decided"),
        "label": np.where(rng.random(len(unclear)) < 0.3, "defect", "ok"),
        "reviewer": np.char.add("reviewer-", (unclear % 20).astype(str)),
        "model_label": np.full(len(unclear), "ok"),
        "model_score": rng.uniform(0.5, 0.9, len(unclear)),
        "waited_s": rng.exponential(900, len(unclear)),
    }
    decided["agreement"] = np.where(decided["label"] == "ok", "agree", "overrule")
    undo = rng.random(len(unclear)) < UNDONE
    undone = {
        "record": np.ones(int(undo.sum()), dtype=np.int64),
        "event": np.full(int(undo.sum()), "undone"),
        "event_id": np.char.add(f"{day.isoformat()}-u", unclear[undo].astype(str)),
        "occurred_at": decided["occurred_at"][undo],
        "image": decided["image"][undo],
        "line": decided["line"][undo],
        "object": np.char.add("unclear/", decided["image"][undo]),
        "reviewer": decided["reviewer"][undo],
        "label": decided["label"][undo],
        "undoes": decided["event_id"][undo],
    }
    return _concat([rows, decided, undone])


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, list]:
    out: dict[str, list] = {}
    for name in records.COLUMNS:
        column = []
        for part in parts:
            size = len(part["event"])
            values = part.get(name)
            column.extend([None] * size if values is None else values.tolist())
        out[name] = column
    return out


def _write(root: Path, day: date, rows: dict[str, list]) -> None:
    """One day as the local store keeps it, written by DuckDB (pyarrow is not a dependency: a clean
    clone's `make bench` failed on it)."""
    import duckdb
    import pandas as pd

    folder = root / f"day={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({name: pd.Series(rows[name], dtype=object) for name in records.COLUMNS})
    columns = ", ".join(f'CAST("{name}" AS {kind}) AS "{name}"' for name, kind in records.COLUMNS.items())
    target = str(folder / "bench.parquet").replace("'", "''")
    with duckdb.connect() as con:
        con.register("day_rows", frame)
        con.execute(f"COPY (SELECT {columns} FROM day_rows) TO '{target}' (FORMAT parquet)")


def build_year(root: Path) -> tuple[int, int]:
    """The year's store, built once and kept in .build/ (outcomes, bytes of its record lines on the
    report day as Cloud Logging would carry them)."""
    done = root / "done.json"
    if done.exists():
        facts = json.loads(done.read_text())
        return facts["outcomes"], facts["report_day_payload_bytes"]
    total, payload = 0, 0
    for offset in range(365):
        day = YEAR_START + timedelta(days=offset)
        rows = _day(day, PLANT_DAY if day == REPORT_DAY else QUIET_DAY, seed=offset)
        _write(root, day, rows)
        total += len(rows["event"])
        if day == REPORT_DAY:
            sample = [
                {k: v[i] for k, v in rows.items() if v[i] is not None}
                for i in range(0, len(rows["event"]), 997)
            ]
            payload = round(statistics.mean(len(json.dumps(s)) for s in sample) * len(rows["event"]))
    done.write_text(json.dumps({"outcomes": total, "report_day_payload_bytes": payload}))
    return total, payload


def _timed(run, repeat: int = 5) -> float:
    """Median seconds of `repeat` runs, after one to warm the file cache."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure() -> dict[str, float]:
    root = ROOT / "year"
    outcomes, payload = build_year(root)
    store = records.LocalStore(root)
    report_s = _timed(lambda: records.report_rows(store, REPORT_DAY, REPORT_DAY))
    week_start, week_end = REPORT_DAY - timedelta(days=6), REPORT_DAY
    pages = {}
    for name, filters in {
        "all": {},
        "reviewer": {"reviewer": "reviewer-7"},
        "line": {"line": "line-3"},
        "label": {"label": "defect"},
        "agreement": {"agreement": "overrule"},
    }.items():
        params = records.audit_params(week_start, week_end, filters, ("", ""), 100)
        pages[name] = _timed(lambda p=params: store.query(records.AUDIT_PAGE, week_start, week_end, p))
    # The same day in a store of only 10,000 outcomes: the year around it must not matter.
    small = ROOT / "small"
    if not (small / "done").exists():
        rows = _day(REPORT_DAY, 9_500, seed=7)
        _write(small, REPORT_DAY, rows)
        (small / "done").write_text("")
    small_store = records.LocalStore(small)
    small_s = _timed(lambda: records.report_rows(small_store, REPORT_DAY, REPORT_DAY))
    big_small_day = ROOT / "year-small-day"
    if not (big_small_day / "done").exists():  # the year again, but the report day holds 10,000 outcomes
        for path in root.glob("day=*"):
            target = big_small_day / path.name
            target.mkdir(parents=True, exist_ok=True)
            if path.name != f"day={REPORT_DAY.isoformat()}":
                (target / "bench.parquet").symlink_to(path / "bench.parquet")
        _write(big_small_day, REPORT_DAY, _day(REPORT_DAY, 9_500, seed=7))
        (big_small_day / "done").write_text("")
    big_s = _timed(lambda: records.report_rows(records.LocalStore(big_small_day), REPORT_DAY, REPORT_DAY))
    # BigQuery scans the payload column of the partitions of the days read, at least 10 MB per table:
    # a report reads its day and the next (an undo may come the day after its decision), an audit
    # page its week; in a real plant every day is a plant day.
    report_bytes = 2 * payload
    week_bytes = 7 * payload
    return {
        "records_outcomes_in_store": outcomes,
        "records_report_one_plant_day_s": round(report_s, 3),
        **{f"records_audit_page_week_{k}_ms": round(v * 1000, 1) for k, v in pages.items()},
        "records_report_flat_10k_store_ms": round(small_s * 1000, 1),
        "records_report_flat_10m_store_ms": round(big_s * 1000, 1),
        "records_bigquery_report_gib_scanned": round(report_bytes / 2**30, 2),
        "records_bigquery_report_usd": round(report_bytes / TIB * BIGQUERY_PER_TIB, 4),
        "records_bigquery_audit_page_week_gib_scanned": round(week_bytes / 2**30, 2),
        "records_bigquery_audit_page_week_usd": round(week_bytes / TIB * BIGQUERY_PER_TIB, 4),
    }
