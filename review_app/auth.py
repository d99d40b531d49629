"""Who is asking: the verified IAP identity, or the fixed local identity in explicit local mode.

Fail closed: in IAP mode a request without a valid `x-goog-iap-jwt-assertion` gets 401, and one
from outside the optional allow-list gets 403.
"""

from __future__ import annotations

import threading
import time

import requests
from flask import Flask, abort, current_app, g, request
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from inspection import logs

LOCAL_REVIEWER = "local-reviewer@localhost"
IAP_ISSUER = "https://cloud.google.com/iap"
CERTS_TTL_S = 3600
CLOCK_SKEW_S = 30


class IapKeys:
    """IAP's public keys, fetched once an hour (and when a token names an unknown key)."""

    def __init__(self, url: str):
        self.url = url
        self._keys: dict[str, str] = {}
        self._fetched = 0.0
        self._lock = threading.Lock()

    def get(self, kid: str | None) -> dict[str, str]:
        with self._lock:
            stale = time.monotonic() - self._fetched > CERTS_TTL_S
            if stale or (kid and kid not in self._keys):
                response = requests.get(self.url, timeout=10)
                response.raise_for_status()
                self._keys, self._fetched = response.json(), time.monotonic()
            return self._keys


def verify_iap_assertion(token: str, audience: str, keys: IapKeys) -> str:
    """The verified email in an IAP JWT; ValueError for anything invalid."""
    try:
        header = jwt.decode_header(token)
        claims = jwt.decode(
            token, certs=keys.get(header.get("kid")), audience=audience, clock_skew_in_seconds=CLOCK_SKEW_S
        )
    except (ValueError, auth_exceptions.GoogleAuthError, requests.RequestException) as exc:
        raise ValueError(f"invalid IAP assertion: {exc}") from None
    if claims.get("iss") != IAP_ISSUER:
        raise ValueError("invalid IAP assertion: wrong issuer")
    email = claims.get("email")
    if not email:
        raise ValueError("invalid IAP assertion: no email")
    return email.lower()


def allowed(email: str, allow_list: str) -> bool:
    """An empty list allows everyone IAP let through; entries are emails or @domains."""
    entries = [e.strip().lower() for e in allow_list.split(",") if e.strip()]
    return not entries or email in entries or any(e.startswith("@") and email.endswith(e) for e in entries)


def _identify() -> None:
    if request.endpoint == "static":
        return
    settings = current_app.extensions["settings"]
    if settings.auth_mode == "local":
        g.reviewer = LOCAL_REVIEWER
        return
    token = request.headers.get("x-goog-iap-jwt-assertion", "")
    if not token:
        abort(401, "no IAP assertion")
    try:
        g.reviewer = verify_iap_assertion(token, settings.iap_audience, current_app.extensions["iap_keys"])
    except ValueError as exc:
        logs.warning("refused an invalid IAP assertion", reason=str(exc))
        abort(401, "invalid IAP assertion")
    if not allowed(g.reviewer, settings.allowed_reviewers):
        abort(403, "not on the reviewer list")


def init_app(app: Flask) -> None:
    app.extensions["iap_keys"] = IapKeys(app.extensions["settings"].iap_certs_url)
    app.before_request(_identify)
