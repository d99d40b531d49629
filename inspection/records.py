"""The plant's records, read back with SQL: the outcome lines (inspection/outcomes.py) in an
analytical store, one row per record line.

- **In the cloud** a Cloud Logging sink delivers exactly the record lines (`jsonPayload.record`)
  of the functions and the review app into a BigQuery dataset, in tables partitioned by day
  (infra/records.py; docs/operations.md, "The plant's records"). `BigQueryStore` reads them.
- **On a laptop** the local stack's sink (scripts/local/sink.py) writes the same lines as Parquet
  files partitioned by day, and `LocalStore` reads them with DuckDB.

Every query is written once, in DuckDB's SQL, against one relation `records` whose columns are the
record fields (plus `day`). sqlglot transpiles it to BigQuery's dialect. Each store supplies
`records` for the days asked for and no others (partition pruning: a day costs the same however
long the history).

A record line can be written twice (a process that died between recording and marking its claim
done), and the copies are identical, because every field is built from the claim. Queries
therefore count distinct rows or `event_id`s. An undone decision is not a decision: `undone`
records name the `decided` record they cancel (`undoes`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

from inspection import calls, outcomes

# --- the columns: every field of every outcome kind -----------------------------------------------------

_SQL_TYPES = {"str": "VARCHAR", "float": "DOUBLE", "float | None": "DOUBLE", "int": "BIGINT"}


def _columns() -> dict[str, str]:
    found = {"record": "BIGINT", "event": "VARCHAR"}
    for kind in outcomes.KINDS:
        for f in dataclasses.fields(kind):
            if not f.name.startswith("_"):
                found.setdefault(f.name, _SQL_TYPES[str(f.type)])
    return found


COLUMNS: dict[str, str] = _columns()  # column → DuckDB type; `day` (DATE) is added by each store
MAX_DAYS = 366


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


# --- the queries, written once ---------------------------------------------------------------------------

# Net figures per line and day: routed images by folder, rejections, people's decisions net of
# undos (an undo may land the day after its decision, so `records` reaches one day past `$end`).
REPORT = """
WITH r AS (SELECT DISTINCT * FROM records),
undone AS (SELECT DISTINCT undoes FROM r WHERE event = 'undone'),
kept AS (
    SELECT * FROM r
    WHERE day BETWEEN $start AND $end AND event <> 'undone'
      AND NOT (event = 'decided' AND event_id IN (SELECT undoes FROM undone))
)
SELECT
    line,
    day,
    SUM(CASE WHEN event = 'routed' AND folder = 'ok' THEN 1 ELSE 0 END) AS routed_ok,
    SUM(CASE WHEN event = 'routed' AND folder = 'defect' THEN 1 ELSE 0 END) AS routed_defect,
    SUM(CASE WHEN event = 'routed' AND folder = 'unclear' THEN 1 ELSE 0 END) AS routed_unclear,
    SUM(CASE WHEN event = 'routed' AND unclear_reason = 'unusual_input' THEN 1 ELSE 0 END) AS unusual,
    SUM(CASE WHEN event = 'routed' AND unclear_reason = 'anomalous' THEN 1 ELSE 0 END) AS anomalous,
    SUM(CASE WHEN event = 'decided' AND unclear_reason = 'anomalous' AND label = 'defect' THEN 1 ELSE 0 END)
        AS escapes_prevented,
    SUM(CASE WHEN event = 'rejected' THEN 1 ELSE 0 END) AS rejected,
    SUM(CASE WHEN event = 'decided' AND label = 'ok' THEN 1 ELSE 0 END) AS human_ok,
    SUM(CASE WHEN event = 'decided' AND label = 'defect' THEN 1 ELSE 0 END) AS human_defect,
    SUM(CASE WHEN event = 'decided' AND label = 'unusable' THEN 1 ELSE 0 END) AS human_unusable,
    SUM(CASE WHEN event = 'decided' AND agreement = 'agree' THEN 1 ELSE 0 END) AS agreed,
    SUM(CASE WHEN event = 'decided' AND agreement = 'overrule' THEN 1 ELSE 0 END) AS overruled,
    APPROX_QUANTILE(CASE WHEN event = 'decided' THEN waited_s END, 0.5) AS wait_p50_s,
    APPROX_QUANTILE(CASE WHEN event = 'decided' THEN waited_s END, 0.9) AS wait_p90_s,
    STRING_AGG(DISTINCT CASE WHEN event = 'routed' THEN model END, ', ') AS models,
    STRING_AGG(DISTINCT CASE WHEN event = 'routed' AND guard <> '' THEN guard END, ', ') AS guards,
    SUM(CASE WHEN event = 'routed' AND COALESCE(guard, '') = '' AND model <> 'none' THEN 1 ELSE 0 END)
        AS unguarded,
    STRING_AGG(DISTINCT CASE WHEN event = 'routed' THEN CAST(threshold AS VARCHAR) END, ', ') AS thresholds
FROM kept
GROUP BY line, day
ORDER BY line, day
"""

AUDIT_COLUMNS = (
    "occurred_at",
    "event_id",
    "event",
    "reviewer",
    "line",
    "image",
    "label",
    "model_label",
    "model_score",
    "agreement",
    "unclear_reason",
    "heatmap",
    "waited_s",
    "object",
    "undoes",
)
_AUDIT_WHERE = """
    event IN ('decided', 'undone') AND day BETWEEN $start AND $end
    AND ($reviewer = '' OR reviewer = $reviewer)
    AND ($line = '' OR line = $line)
    AND ($label = '' OR label = $label)
    AND ($agreement = '' OR agreement = $agreement)
"""
# One page of decisions and undos, oldest first, after the cursor (keyset paging: a page costs the
# same wherever it is). Copies of a record sort next to each other, so the page is taken with room
# to spare and then made distinct.
AUDIT_PAGE = f"""
SELECT DISTINCT * FROM (
    SELECT {", ".join(AUDIT_COLUMNS)} FROM records
    WHERE {_AUDIT_WHERE}
      AND (occurred_at > $after_at OR (occurred_at = $after_at AND event_id > $after_id))
    ORDER BY occurred_at, event_id
    LIMIT $fetch
)
ORDER BY occurred_at, event_id
LIMIT $page
"""
AUDIT_COUNT = f"SELECT COUNT(DISTINCT event_id) AS events FROM records WHERE {_AUDIT_WHERE}"
# How many images have their first record (routed or rejected) in the period.
ARRIVED = (
    "SELECT COUNT(DISTINCT event_id) AS images FROM records "
    "WHERE event IN ('routed', 'rejected') AND day BETWEEN $start AND $end"
)


def with_records(relation: str, body: str) -> str:
    """`body` with `records` defined as `relation`, as its first common table expression."""
    stripped = body.strip()
    if stripped[:4].upper() == "WITH":
        return f"WITH records AS ({relation}),{stripped[4:]}"
    return f"WITH records AS ({relation}) {stripped}"


@functools.cache
def bigquery_sql(body: str) -> str:
    """A query body in BigQuery's dialect."""
    import sqlglot

    return sqlglot.transpile(body, read="duckdb", write="bigquery")[0]


# --- the stores -------------------------------------------------------------------------------------------


class Store(Protocol):
    def query(self, body: str, start: date, end: date, params: Mapping[str, object]) -> list[dict]:
        """Rows of `body` run over the records of the days from `start` to `end`."""
        ...


def audit_params(
    start: date, end: date, filters: Mapping[str, str], after: tuple[str, str], page: int
) -> dict:
    return {
        "start": start,
        "end": end,
        **{key: filters.get(key, "") for key in ("reviewer", "line", "label", "agreement")},
        "after_at": after[0],
        "after_id": after[1],
        "fetch": page * 2,
        "page": page,
    }


class LocalStore:
    """DuckDB over the local sink's Parquet files: `<root>/day=YYYY-MM-DD/*.parquet`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def partition(self, day: date) -> Path:
        return self.root / f"day={day.isoformat()}"

    def relation(self, start: date, end: date, present: set[str] | None = None) -> str:
        """`records` over the days' files. A column none of them has (files written before it
        existed) reads as NULL: `present` names the columns the files have (None: all)."""
        files = self.files(start, end)
        if not files:
            nothing = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in COLUMNS.items())
            return f"SELECT {nothing}, CAST(NULL AS DATE) AS day WHERE FALSE"
        columns = ", ".join(
            f"CAST({name if present is None or name in present else 'NULL'} AS {kind}) AS {name}"
            for name, kind in COLUMNS.items()
        )
        return f"SELECT {columns}, CAST(day AS DATE) AS day FROM {self._read(files)}"

    def files(self, start: date, end: date) -> list[str]:
        return [str(p) for day in days(start, end) for p in sorted(self.partition(day).glob("*.parquet"))]

    @staticmethod
    def _read(files: list[str]) -> str:
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true)"

    def query(self, body: str, start: date, end: date, params: Mapping[str, object]) -> list[dict]:
        import duckdb

        _record_query(calls.RECORDS, ["(each day's table)"])
        with duckdb.connect() as con:
            files = self.files(start, end)
            present = None
            if files:
                described = con.execute(f"DESCRIBE SELECT * FROM {self._read(files)}").fetchall()
                present = {row[0] for row in described}
            sql = with_records(self.relation(start, end, present), body)
            cursor = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in body})
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class BigQueryStore:
    """The dataset the Logging sink writes to. The sink makes one table per log it routes (the
    functions' and the review app's), partitioned by day and named after the log, and infers each
    table's columns from the lines it has seen; so each table's `jsonPayload` is read as JSON, and
    only the partitions of the days asked for are scanned."""

    def __init__(self, project: str, dataset: str, client=None):
        self.project, self.dataset = project, dataset
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from google.cloud import bigquery

            self._client = bigquery.Client(project=self.project)
        return self._client

    def tables(self) -> list[str]:
        return sorted(t.table_id for t in self.client.list_tables(f"{self.project}.{self.dataset}"))

    def relation(self, tables: list[str]) -> str:
        """`records` in BigQuery's SQL, over the sink's tables; `@_from` and `@_to` bound the
        partitions read."""
        if not tables:
            nothing = ", ".join(f"CAST(NULL AS {_bigquery_type(k)}) AS {n}" for n, k in COLUMNS.items())
            return f"SELECT {nothing}, CAST(NULL AS DATE) AS day FROM UNNEST([1]) WHERE FALSE"
        payload = " UNION ALL ".join(
            "SELECT timestamp, TO_JSON_STRING(jsonPayload) AS p "
            f"FROM `{self.project}.{self.dataset}.{table}` "
            "WHERE timestamp >= TIMESTAMP(@_from) AND timestamp < TIMESTAMP(@_to)"
            for table in tables
        )
        columns = ", ".join(
            f"SAFE_CAST(JSON_VALUE(p, '$.{name}') AS {_bigquery_type(kind)}) AS {name}"
            for name, kind in COLUMNS.items()
        )
        return (
            f"SELECT {columns}, DATE(timestamp) AS day FROM ({payload}) "
            f"WHERE JSON_VALUE(p, '$.record') IS NOT NULL"
        )

    def sql(self, body: str, tables: list[str]) -> str:
        return with_records(self.relation(tables), bigquery_sql(body))

    def query(self, body: str, start: date, end: date, params: Mapping[str, object]) -> list[dict]:
        from google.cloud import bigquery

        tables = self.tables()
        _record_query(f"projects/{self.project}/datasets/{self.dataset}", tables)
        sql = self.sql(body, tables)
        given = {
            **{k: v for k, v in params.items() if f"${k}" in body},
            "_from": start.isoformat(),
            "_to": (end + timedelta(days=1)).isoformat(),
        }
        config = bigquery.QueryJobConfig(query_parameters=[_parameter(k, v) for k, v in given.items()])
        return [dict(row.items()) for row in self.client.query(sql, job_config=config).result()]


def _record_query(dataset: str, tables: list[str]) -> None:
    """What a query of the records asks of BigQuery: the dataset's tables listed, a query job in
    the project, each table's rows read (https://cloud.google.com/bigquery/docs/access-control)."""
    calls.record("bigquery.tables.list", dataset)
    calls.record("bigquery.jobs.create", dataset.split("/datasets/")[0])
    for table in tables:
        calls.record("bigquery.tables.getData", f"{dataset}/tables/{table}")


def _bigquery_type(duckdb_type: str) -> str:
    return {"VARCHAR": "STRING", "DOUBLE": "FLOAT64", "BIGINT": "INT64"}[duckdb_type]


def _parameter(name: str, value: object):
    from google.cloud import bigquery

    kind = (
        "DATE"
        if isinstance(value, date)
        else "INT64"
        if isinstance(value, int) and not isinstance(value, bool)
        else "FLOAT64"
        if isinstance(value, float)
        else "STRING"
    )
    return bigquery.ScalarQueryParameter(name, kind, value)


def open_store(location: str) -> Store:
    """`bigquery:<project>.<dataset>`, or a local folder of the local sink."""
    if location.startswith("bigquery:"):
        project, _, dataset = location.removeprefix("bigquery:").partition(".")
        return BigQueryStore(project, dataset)
    return LocalStore(location)


def audit_pages(
    store: Store, start: date, end: date, filters: Mapping[str, str], page: int = 500
) -> Iterator[dict]:
    """Every decision and undo of the period, page by page: for the CSV, streamed."""
    after = ("", "")
    while True:
        rows = store.query(AUDIT_PAGE, start, end, audit_params(start, end, filters, after, page))
        if not rows:  # a page may come back short (copies of records), so only an empty one ends
            return
        yield from rows
        after = (rows[-1]["occurred_at"], rows[-1]["event_id"])


def report_rows(store: Store, start: date, end: date) -> list[dict]:
    """The REPORT figures per line and day, from `start` to `end`."""
    return store.query(REPORT, start, end + timedelta(days=1), {"start": start, "end": end})
