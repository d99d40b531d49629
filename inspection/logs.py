"""Structured logs: one JSON object per line with `severity` and `message`, as Cloud Logging reads them."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime

_lock = threading.Lock()
_stream = None  # None: stdout, where Cloud Run collects it


def send_to(stream) -> None:
    """Write log lines to `stream` instead of stdout (the local demo keeps its console readable)."""
    global _stream
    _stream = stream


def log(severity: str, message: str, **fields: object) -> None:
    """Write one JSON log line to stdout; fields that are None are left out."""
    entry = {"severity": severity, "message": message, "time": datetime.now(UTC).isoformat()}
    entry.update({key: value for key, value in fields.items() if value is not None})
    line = json.dumps(entry, default=str, ensure_ascii=False)
    with _lock:
        out = _stream or sys.stdout
        out.write(line + "\n")
        out.flush()


def info(message: str, **fields: object) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: object) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: object) -> None:
    log("ERROR", message, **fields)
