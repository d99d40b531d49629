"""The plant's records in an analytical store: the local sink writes the record lines as Parquet,
DuckDB reads them with the queries written once (inspection/records.py), and the same queries
transpile to BigQuery's dialect."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlglot

from inspection import outcomes, records
from scripts.local.sink import RecordSink
from scripts.report import Day

DAY = date(2026, 11, 20)


@pytest.fixture
def sink(tmp_path):
    installed = RecordSink(tmp_path / "records").install()
    yield installed
    installed.uninstall()


def at(day: date, seconds: int = 0) -> str:
    return (datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


def routed(n: int, folder: str, day: date = DAY, line: str = "line-1") -> outcomes.Routed:
    return outcomes.Routed(
        event_id=f"routed-{day}-{n}",
        occurred_at=at(day, n),
        image=f"{line}/part-{n}.jpeg",
        line=line,
        object=f"{folder}/{line}/part-{n}.jpeg",
        generation=str(1000 + n),
        folder=folder,
        label="defect" if folder == "defect" else "ok",
        score=0.97,
        model="m1",
        threshold=0.9,
        _in_queue=False,  # the reviewers' queue is not part of these tests
    )


def decided(n: int, label: str, day: date = DAY, reviewer: str = "r@example.com") -> outcomes.Decided:
    return outcomes.Decided(
        event_id=f"decided-{day}-{n}",
        occurred_at=at(day, 100 + n),
        image=f"line-1/part-{n}.jpeg",
        line="line-1",
        object=f"human_decided/{label}/line-1/part-{n}.jpeg",
        folder="human_decided",
        label=label,
        reviewer=reviewer,
        agreement="overrule" if label == "defect" else "agree",
        model="m1",
        model_label="ok",
        model_score=0.8,
        threshold=0.9,
        waited_s=60.0 * (n + 1),
    )


def undone(n: int, of: outcomes.Decided, day: date = DAY) -> outcomes.Undone:
    return outcomes.Undone(
        event_id=f"undone-{day}-{n}",
        occurred_at=at(day, 200 + n),
        image=of.image,
        line="line-1",
        object=f"unclear/{of.image}",
        reviewer=of.reviewer,
        label=of.label,
        undoes=of.event_id,
    )


def report(sink, start: date = DAY, end: date = DAY) -> dict[tuple[str, date], Day]:
    sink.flush()
    return {(row["line"], row["day"]): Day.of(row) for row in records.report_rows(sink.store, start, end)}


def test_the_report_counts_every_outcome_once(sink, caplog):
    for n, folder in enumerate(["ok", "ok", "defect", "unclear", "unclear"]):
        outcomes.record(routed(n, folder))
    first = decided(3, "defect")
    outcomes.record(first)
    outcomes.record(first)  # a process died after recording and before marking its claim done
    [figures] = report(sink).values()
    assert (figures.routed_ok, figures.routed_defect, figures.routed_unclear) == (2, 1, 2)
    assert (figures.human_defect, figures.overruled, figures.images) == (1, 1, 5)
    assert figures.defect_rate == pytest.approx(2 / 4)  # (1 auto + 1 human) of 4 with a label


def test_an_undone_decision_is_not_counted_and_the_decision_after_it_is(sink):
    """The report ignored undos: decided, undone and decided again counted two decisions."""
    outcomes.record(routed(1, "unclear"))
    wrong = decided(1, "defect")
    outcomes.record(wrong)
    outcomes.record(undone(1, wrong))
    outcomes.record(decided(2, "ok"))
    [figures] = report(sink).values()
    assert (figures.human_ok, figures.human_defect, figures.agreed, figures.overruled) == (1, 0, 1, 0)


def test_an_undo_the_next_day_still_cancels_the_decision(sink):
    outcomes.record(routed(1, "unclear"))
    wrong = decided(1, "defect")
    outcomes.record(wrong)
    outcomes.record(undone(1, wrong, day=DAY + timedelta(days=1)))
    assert report(sink)[("line-1", DAY)].human_defect == 0


def test_the_report_reads_only_the_days_asked_for(sink):
    for day in (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)):
        outcomes.record(routed(1, "ok", day))
    assert list(report(sink)) == [("line-1", DAY)]
    sink.flush()
    assert sorted(p.name for p in sink.store.root.iterdir()) == [
        f"day={d}" for d in (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1))
    ]


def test_time_to_decide_and_the_model_in_force(sink):
    outcomes.record(routed(1, "ok"))
    for n in range(9):
        outcomes.record(decided(n, "ok"))
    [figures] = report(sink).values()
    assert figures.wait_p50_s == pytest.approx(300, abs=60)
    assert (figures.models, figures.thresholds) == ("m1", "0.9")


def test_the_report_names_the_guard_and_counts_what_no_guard_checked(sink):
    """Issue 31: a model served with `inputGuard: none` is said in the plant report, photo by photo."""
    from dataclasses import replace

    from scripts.report import render

    outcomes.record(replace(routed(1, "ok"), guard="sha256:0123456789ab"))
    outcomes.record(
        replace(routed(2, "unclear"), guard="sha256:0123456789ab", unclear_reason="unusual_input")
    )
    outcomes.record(routed(3, "ok"))  # decided by a model nothing guarded
    outcomes.record(replace(routed(4, "unclear"), model="none"))  # day zero: no model to guard
    [figures] = report(sink).values()
    assert (figures.guards, figures.unusual, figures.unguarded) == ("sha256:0123456789ab", 1, 1)
    page = render({"line-1": {DAY: figures}}, [DAY], {}, None)
    assert "sha256:0123456789ab (1)" in page and "none: 1 photos decided unguarded" in page


def test_the_audit_pages_through_a_period_oldest_first_and_filters(sink):
    made = [decided(n, "ok" if n % 3 else "defect", reviewer=f"r{n % 2}@example.com") for n in range(25)]
    for outcome in made:
        outcomes.record(outcome)
    outcomes.record(undone(0, made[0]))
    sink.flush()
    every = list(records.audit_pages(sink.store, DAY, DAY, {}, page=10))
    assert [r["event_id"] for r in every] == [o.event_id for o in made] + ["undone-2026-11-20-0"]
    only = list(records.audit_pages(sink.store, DAY, DAY, {"reviewer": "r1@example.com", "label": "defect"}))
    assert {(r["reviewer"], r["label"]) for r in only} == {("r1@example.com", "defect")}
    params = records.audit_params(DAY, DAY, {}, ("", ""), 10)
    assert sink.store.query(records.AUDIT_COUNT, DAY, DAY, params) == [{"events": 26}]


def test_a_day_written_before_a_column_existed_is_still_read(sink, tmp_path):
    """Records outlive releases: a partition written before `heatmap` was a column (issue 25) reads
    it as empty, in the report and the audit (make bench's stored year showed the binder error)."""
    import duckdb

    outcomes.record(decided(0, "defect"))
    sink.flush()
    [written] = sink.store.partition(DAY).glob("*.parquet")
    with duckdb.connect() as con:
        table = con.read_parquet(str(written))
        kept = ", ".join(c for c in table.columns if c != "heatmap")
        table.project(kept).write_parquet(str(written.with_name("older.parquet")))
    written.unlink()
    [row] = list(records.audit_pages(sink.store, DAY, DAY, {}))
    assert row["label"] == "defect" and row["heatmap"] is None
    assert report(sink)[("line-1", DAY)].human_defect == 1


def test_the_sink_keeps_only_record_lines(sink):
    logging.getLogger("quality-inspection").info("sweep", extra={"fields": {"stranded": 1}})
    outcomes.record(routed(1, "ok"))
    sink.flush()
    assert len(list(sink.store.root.rglob("*.parquet"))) == 1
    assert len(report(sink)) == 1


@pytest.mark.parametrize(
    "query", [records.REPORT, records.AUDIT_PAGE, records.AUDIT_COUNT], ids=["report", "page", "count"]
)
def test_every_query_is_valid_bigquery_sql_over_the_sinks_tables(query):
    """Written once in DuckDB's SQL; what BigQuery receives must parse in BigQuery's grammar, and
    must not use the aggregate forms BigQuery lacks (PERCENTILE_CONT is analytic only there)."""
    store = records.BigQueryStore("my-project", "acme_qi_records")
    sql = store.sql(query, ["run_googleapis_com_stdout", "stdout"])
    parsed = sqlglot.parse_one(sql, read="bigquery")
    assert parsed is not None
    assert "PERCENTILE_CONT" not in sql and "QUANTILE" not in sql.upper().replace("APPROX_QUANTILES", "")
    assert "$" not in sql.replace("'$.", "")  # every parameter is @name


def test_the_bigquery_queries_give_duckdbs_answers_on_the_same_records(sink, caplog):
    """What BigQuery receives (the sink's tables, the payload read as JSON, the body transpiled to
    BigQuery's dialect) is run, translated back by SQLGlot, on DuckDB tables shaped as the sink
    makes them, holding the very lines the handlers log; its answers must be the local store's."""
    import duckdb

    from tests.helpers import logged

    made = [routed(n, folder) for n, folder in enumerate(["ok", "defect", "unclear", "unclear", "ok"])]
    first, second = decided(2, "defect", reviewer="r1@example.com"), decided(3, "ok")
    made += [first, second, undone(0, first), routed(9, "ok", DAY + timedelta(days=1))]
    for outcome in made:
        outcomes.record(outcome)
    outcomes.record(second)  # recorded twice, as a retry after a crash would
    lines = [line for line in logged(caplog) if line.get("record")]
    sink.flush()

    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS p")
    con.execute("CREATE SCHEMA p.d")
    tables = {"decided": "stdout", "undone": "stdout"}  # the review app's log; the functions' below
    for table in ("run_googleapis_com_stdout", "stdout"):
        con.execute(f"CREATE TABLE p.d.{table} (timestamp TIMESTAMPTZ, jsonPayload JSON)")
    for line in lines:
        table = tables.get(line["event"], "run_googleapis_com_stdout")
        con.execute(f"INSERT INTO p.d.{table} VALUES (?, ?)", [line["time"], json.dumps(line)])  # noqa: S608 (two fixed names)
    store = records.BigQueryStore("p", "d")

    def both(body: str, start: date, end: date, params: dict) -> tuple[list, list]:
        shipped = store.sql(body, ["run_googleapis_com_stdout", "stdout"])  # what BigQuery gets
        back = sqlglot.transpile(shipped, read="bigquery", write="duckdb")[0]
        given = {
            **{k: v for k, v in params.items() if f"${k}" in body},
            "_from": start.isoformat(),
            "_to": (end + timedelta(days=1)).isoformat(),
        }
        cursor = con.execute(back, given)
        names = [d[0] for d in cursor.description]
        bigquery = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        return bigquery, sink.store.query(body, start, end, params)

    report_params = {"start": DAY, "end": DAY}
    got, want = both(records.REPORT, DAY, DAY + timedelta(days=1), report_params)
    assert got == want and want  # the same figures, the undo subtracted, the copy counted once
    page = records.audit_params(DAY, DAY, {}, ("", ""), 3)
    got, want = both(records.AUDIT_PAGE, DAY, DAY, page)
    assert got == want and len(want) == 3
    for filters in ({}, {"reviewer": "r1@example.com"}, {"label": "ok"}):
        count = records.audit_params(DAY, DAY, filters, ("", ""), 10)
        assert both(records.AUDIT_COUNT, DAY, DAY, count)[0] == both(records.AUDIT_COUNT, DAY, DAY, count)[1]


def test_the_bench_writes_its_store_with_what_the_project_installs(tmp_path):
    """Issue 32: `make bench` failed on a clean clone, importing pyarrow, which the project does
    not install. The bench's year is now written by DuckDB; one day of it, read back."""
    from datetime import date

    import duckdb

    from bench import records as bench_records

    rows = bench_records._day(date(2026, 3, 1), 500, seed=1)
    bench_records._write(tmp_path, date(2026, 3, 1), rows)
    [written] = tmp_path.glob("day=2026-03-01/*.parquet")
    with duckdb.connect() as con:
        table = con.read_parquet(str(written))
        [(counted,)] = table.count("*").fetchall()
        types = dict(zip(table.columns, (str(t) for t in table.types), strict=True))
    assert counted == len(rows["event"])
    assert types["record"] == "BIGINT" and types["event"] == "VARCHAR"
