"""The local stack's log sink: what Cloud Logging's sink does for BigQuery, on a laptop.

It takes exactly the record lines (`record` set; inspection/outcomes.py) from the logging system of
the process it is installed in, the same lines the handlers write to their log, and writes them
as Parquet, partitioned by the day each outcome occurred: `<root>/day=YYYY-MM-DD/<pid>-<n>.parquet`.
inspection.records.LocalStore reads them with DuckDB. Lines arrive in the store within a second
(`flush_every_s`); in the cloud the sink takes seconds to minutes.

Each process writes only its own files, and merges its many small files of a day into one once
they pile up (write the merged file, then remove the parts: a reader sees the parts, both, or the
merged file, and reads count distinct records). Nothing is lost if a process dies: at most the
last second of lines, and the move's claim records them again on its retry.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

from inspection.records import COLUMNS, LocalStore

MERGE_AFTER = 20  # small files of one day from this process before they are merged into one


class RecordSink(logging.Handler):
    """A logging handler that keeps the record lines; `install()` puts it on the root logger."""

    def __init__(self, root: str | Path, flush_every_s: float = 1.0):
        super().__init__(level=logging.INFO)
        self.store = LocalStore(root)
        self.flush_every_s = flush_every_s
        self._pending: list[dict] = []
        self._pending_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sequence = 0

    def install(self) -> RecordSink:
        self.store.root.mkdir(parents=True, exist_ok=True)
        logging.getLogger().addHandler(self)
        self._thread = threading.Thread(target=self._flush_loop, daemon=True, name="record-sink")
        self._thread.start()
        return self

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None)
        if not fields or "record" not in fields:
            return
        row = {name: fields.get(name) for name in COLUMNS}
        with self._pending_lock:
            self._pending.append(row)

    def flush(self) -> None:
        """Write what has arrived; afterwards every record logged so far is in the store."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
        if not rows:
            return
        by_day: dict[date, list[dict]] = defaultdict(list)
        for row in rows:
            by_day[datetime.fromisoformat(row["occurred_at"]).date()].append(row)
        with self._write_lock:
            for day, batch in by_day.items():
                folder = self.store.partition(day)
                folder.mkdir(parents=True, exist_ok=True)
                self._sequence += 1
                write_parquet(batch, folder / f"{os.getpid()}-{self._sequence}.parquet")
                self._merge(folder)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_every_s):
            try:
                self.flush()
            except Exception:  # a full disk must not stop the pipeline; the next flush tries again
                logging.getLogger(__name__).exception("could not write records to the local store")

    def _merge(self, folder: Path) -> None:
        mine = sorted(folder.glob(f"{os.getpid()}-*.parquet"))
        if len(mine) < MERGE_AFTER:
            return
        import duckdb

        self._sequence += 1
        listed = ", ".join(f"'{p}'" for p in mine)
        target = folder / f"{os.getpid()}-{self._sequence}.parquet"
        partial = target.with_suffix(".part")
        with duckdb.connect() as con:
            con.execute(
                f"COPY (SELECT DISTINCT * FROM read_parquet([{listed}])) TO '{partial}' (FORMAT parquet)"
            )
        os.replace(partial, target)
        for path in mine:
            path.unlink()


def write_parquet(rows: list[dict], path: Path) -> None:
    """Rows with every record column, typed as the store reads them; written whole or not at all."""
    import duckdb

    partial = path.with_suffix(".part")
    names = list(COLUMNS)
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE batch ({', '.join(f'{n} {t}' for n, t in COLUMNS.items())})")
        con.executemany(
            f"INSERT INTO batch VALUES ({', '.join('?' for _ in names)})",
            [[row.get(n) for n in names] for row in rows],
        )
        con.execute(f"COPY batch TO '{partial}' (FORMAT parquet)")
    os.replace(partial, path)
