"""The review app: reviewers decide the unclear images here; auditors read who decided what.

Shaped like Flask's tutorial: `create_app` reads configuration (environment first, then a test
mapping), validates it, and registers the blueprints. Production runs `main:app` under gunicorn
on App Engine standard, behind IAP.
"""

from __future__ import annotations

import os

from flask import Flask

from inspection import logs
from inspection.errors import ConfigError
from inspection.reviews import Reviews

AUTH_MODES = ("iap", "local")
MAX_REQUEST_BYTES = 64 * 1024  # every request is a small JSON object; larger ones get 413 unread


def _from_env() -> dict:
    env = os.environ
    return {
        "BUCKET": env.get("PREDICTION_BUCKET", ""),
        "AUTH_MODE": env.get("REVIEW_AUTH", "iap"),
        "IAP_AUDIENCE": env.get("IAP_AUDIENCE", ""),
        "IAP_CERTS_URL": env.get("IAP_CERTS_URL", "https://www.gstatic.com/iap/verify/public_key"),
        "ALLOWED_REVIEWERS": env.get("ALLOWED_REVIEWERS", ""),
        "LEASE_SECONDS": env.get("LEASE_SECONDS", "300"),
        "UNDO_SECONDS": env.get("UNDO_SECONDS", "120"),
        "SIGNED_URL_SECONDS": env.get("SIGNED_URL_SECONDS", "300"),
    }


def _validate(config: dict) -> None:
    if not config["BUCKET"]:
        raise ConfigError("PREDICTION_BUCKET is not set: expected the prediction bucket's name")
    if config["AUTH_MODE"] not in AUTH_MODES:
        raise ConfigError(
            f"REVIEW_AUTH={config['AUTH_MODE']!r} is not valid: expected iap (default) or local"
        )
    if config["AUTH_MODE"] == "iap" and not config["IAP_AUDIENCE"].startswith("/projects/"):
        raise ConfigError(
            "IAP_AUDIENCE is not set: expected /projects/<project number>/apps/<project id> (REVIEW_AUTH=iap)"
        )
    for key, low, high in (
        ("LEASE_SECONDS", 30, 3600),
        ("UNDO_SECONDS", 0, 3600),
        ("SIGNED_URL_SECONDS", 60, 3600),
    ):
        try:
            value = int(config[key])
        except (TypeError, ValueError):
            value = None
        if value is None or not low <= value <= high:
            raise ConfigError(f"{key}={config[key]!r} is not valid: expected an integer in [{low}, {high}]")
        config[key] = value


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; a bad setting raises ConfigError naming the key."""
    app = Flask(__name__)
    app.config.from_mapping(_from_env(), MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES)
    if test_config:
        app.config.update(test_config)
    _validate(app.config)

    from review_app import audit, auth, review, security, signing

    app.extensions["reviews"] = Reviews(
        app.config["BUCKET"],
        lease_seconds=app.config["LEASE_SECONDS"],
        undo_seconds=app.config["UNDO_SECONDS"],
    )
    app.extensions["signer"] = signing.create(app.config)
    auth.init_app(app)
    security.init_app(app)
    app.register_blueprint(review.bp)
    app.register_blueprint(audit.bp)
    if app.config["AUTH_MODE"] == "local":
        logs.warning(
            "REVIEW_AUTH=local: no identity is verified; every request acts as "
            f"{auth.LOCAL_REVIEWER}. Never use this behind a public address."
        )
    return app
