"""`create_app`: the review app, built from its settings (review_app/__init__.py says how)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Flask

from inspection import logs
from inspection.settings import ReviewSettings
from review_app.decisions import Decisions
from review_app.unclear_queue import Queue

MAX_REQUEST_BYTES = 64 * 1024  # every request is a small JSON object; larger ones get 413 unread


def create_app(test_config: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment, overridden by `test_config` (the same variable names);
    a bad setting raises ConfigError naming the variable."""
    settings = ReviewSettings.from_env({**os.environ, **(test_config or {})})
    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES)

    from review_app import audit, auth, review, security, signing

    queue = Queue(
        settings.prediction_bucket, lease_seconds=settings.lease_seconds, line_segment=settings.line_segment
    )
    app.extensions.update(
        settings=settings,
        queue=queue,
        decisions=Decisions(queue, undo_seconds=settings.undo_seconds, line_segment=settings.line_segment),
        signer=signing.create(settings),
    )
    auth.init_app(app)
    security.init_app(app)
    calls_init(app)
    # One role per deployment in the cloud (ROLE), each behind its own IAP access; both locally.
    if settings.role in ("review", "both"):
        app.register_blueprint(review.bp)
    if settings.role in ("audit", "both"):
        app.register_blueprint(audit.bp)
    app.jinja_env.globals["serves"] = lambda role: settings.role in (role, "both")
    if settings.auth_mode == "local":
        logs.warning(
            "REVIEW_AUTH=local: no identity is verified; every request acts as "
            f"{auth.LOCAL_REVIEWER}. Never use this behind a public address."
        )
    return app


def calls_init(app: Flask) -> None:
    """Each blueprint is its own service in the cloud (review, audit), with its own account; every
    call a request makes names that service (inspection/calls.py)."""
    from flask import g, request

    from inspection import calls

    @app.before_request
    def _acting_as():
        g.calls_token = calls.begin(request.blueprint or "review")

    @app.teardown_request
    def _done(_exc):
        calls.end(g.pop("calls_token", None))
