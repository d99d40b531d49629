"""Where a running demo says where its services are, for `scripts.local.upload` and `scripts.sweep`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from scripts.local.ports import HOST, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE = ROOT / ".demo"
STACK_FILE = "stack.json"
RECORDS = "records"  # the local sink's folder of the plant's records (scripts/local/sink.py)


def running_stack(state: Path) -> dict | None:
    """The running demo's description, or None at once when no demo is running (a file left by one
    that was killed names a dead process or a closed port, and is removed)."""
    path = state / STACK_FILE
    try:
        stack = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not _alive(stack.get("pid")) or not _answers(stack.get("gcs", "")):
        path.unlink(missing_ok=True)
        return None
    return stack


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(url: str) -> bool:
    if not url.startswith(f"http://{HOST}:"):
        return False
    try:
        wait_for_http(f"{url}/storage/v1/b", timeout=1)
    except TimeoutError:
        return False
    return True
