"""Cloud Run function `sweep`: re-drive stranded images and dead-lettered predictions.

Called by Cloud Scheduler (and `python -m scripts.sweep`) with an OIDC token; the work is in
inspection.sweep. It answers the sweep's report as JSON.
"""

from __future__ import annotations

import dataclasses
import functools

import functions_framework
from flask import Request, jsonify

from inspection import calls
from inspection.model import classifiers
from inspection.settings import SweepSettings
from inspection.sweep import run as run_sweep

SETTINGS = SweepSettings.from_env()  # a bad value stops the instance here, naming the variable


@functools.cache
def _classifier() -> classifiers.Classifier:
    """Loaded only when an image is stranded: most sweeps find nothing."""
    return classifiers.create(SETTINGS.predict)


@functions_framework.http
@calls.serves("sweep")
def sweep(request: Request):
    """Entry point: one sweep, whatever the body."""
    return jsonify(dataclasses.asdict(run_sweep(SETTINGS, _classifier)))
