"""Structured logs: one JSON object per line with `severity` and `message`, as Cloud Logging reads them.

One system: the standard `logging` module with one JSON formatter on the root logger, so the
functions, the review app (Flask's and werkzeug's loggers included), functions-framework and the
scripts all write the same lines. A traceback travels inside its line (`stack_trace`, which
Error Reporting reads), never as bare stderr. `info(message, **fields)` and friends add fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

LOGGER = logging.getLogger("quality-inspection")
_SEVERITY = {"WARNING": "WARNING", "CRITICAL": "CRITICAL", "ERROR": "ERROR", "INFO": "INFO", "DEBUG": "DEBUG"}
_stream = None  # None: stdout (read at each line, so a test's or the demo's redirection applies)


class JsonFormatter(logging.Formatter):
    """A record → one JSON line; fields given as `extra={"fields": {...}}` join the top level."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
        }
        if record.name not in ("quality-inspection", "root"):
            entry["logger"] = record.name
        fields = getattr(record, "fields", None) or {}
        entry.update({key: value for key, value in fields.items() if value is not None})
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):
    def emit(self, record: logging.LogRecord) -> None:
        self.stream = _stream or sys.stdout
        super().emit(record)


def setup(level: int = logging.INFO) -> None:
    """Send every logger's records through the JSON formatter (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(h, _Handler) for h in root.handlers):
        for handler in list(root.handlers):
            if type(handler) is logging.StreamHandler:  # a bare stderr handler someone installed
                root.removeHandler(handler)
        handler = _Handler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(min(root.level or level, level))


def send_to(stream) -> None:  # None: stdout again
    """Write log lines to `stream` instead of stdout (the local demo keeps its console readable)."""
    global _stream
    _stream = stream


def stream():
    """Where log lines go now: what `send_to` named, or stdout."""
    return _stream or sys.stdout


def log(severity: int, message: str, **fields: object) -> None:
    LOGGER.log(severity, message, extra={"fields": fields})


def info(message: str, **fields: object) -> None:
    log(logging.INFO, message, **fields)


def warning(message: str, **fields: object) -> None:
    log(logging.WARNING, message, **fields)


def error(message: str, **fields: object) -> None:
    log(logging.ERROR, message, **fields)


def exception(message: str, **fields: object) -> None:
    """An ERROR line with the traceback of the exception being handled (`stack_trace`)."""
    LOGGER.error(message, exc_info=True, extra={"fields": fields})


setup()
