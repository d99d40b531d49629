"""Whole-process import time of each entrypoint: what a cold start pays before the first request."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from bench import ENTRYPOINT_ENV

ENTRYPOINTS = {
    "predict": ("functions/predict", ENTRYPOINT_ENV["predict"]),
    "move": ("functions/move", ENTRYPOINT_ENV["move"]),
    "review_app": ("review_app", ENTRYPOINT_ENV["review_app"]),
}


def measure(runs: int = 7) -> dict[str, float]:
    figures = {}
    baseline = _median([sys.executable, "-c", "pass"], {}, runs)
    for name, (folder, env) in ENTRYPOINTS.items():
        code = f"import sys; sys.path[:0] = ['.', {folder!r}]; import main"
        figures[f"import_s_{name}"] = round(_median([sys.executable, "-c", code], env, runs) - baseline, 3)
    figures["import_s_interpreter"] = round(baseline, 3)
    return figures


def _median(command: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    clean = {
        k: v for k, v in os.environ.items() if k not in ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")
    }
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env={**clean, **env}, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)
