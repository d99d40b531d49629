"""Who is asking, and what they may do.

- Identity: the verified IAP identity, or the fixed local identity in explicit local mode. Fail
  closed: in IAP mode a request without a valid `x-goog-iap-jwt-assertion` gets 401.
- Roles: reviewers decide, auditors read the audit trail; two roles, each with its own IAP access.
  In the cloud each role is its own App Engine service (ROLE=review or ROLE=audit), and IAP admits
  to each only the members the stack lists for it (infra/review.py). The app checks again against
  its own allow-list where one is set (ALLOWED_REVIEWERS, ALLOWED_AUDITORS): a list that is set
  but names no one admits no one. A member listed as both may do both, on each service.
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
REFETCH_AFTER_S = 60
CLOCK_SKEW_S = 30


class IapKeys:
    """IAP's public keys, fetched once an hour, and again for a token naming an unknown key, but at
    most once a minute: a stream of forged key ids must not make every request wait on Google."""

    def __init__(self, url: str):
        self.url = url
        self._keys: dict[str, str] = {}
        self._fetched = float("-inf")
        self._lock = threading.Lock()

    def get(self, kid: str | None) -> dict[str, str]:
        age = time.monotonic() - self._fetched
        if age <= CERTS_TTL_S and (not kid or kid in self._keys or age < REFETCH_AFTER_S):
            return self._keys
        with self._lock:
            age = time.monotonic() - self._fetched
            if age > CERTS_TTL_S or (kid and kid not in self._keys and age >= REFETCH_AFTER_S):
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


def allowed(email: str, allow_list: tuple[str, ...] | None) -> bool:
    """None (no list set) allows everyone IAP let through; a list allows its emails and @domains,
    and an empty one allows no one."""
    if allow_list is None:
        return True
    return email in allow_list or any(e.startswith("@") and email.endswith(e) for e in allow_list)


def reviewers_only() -> None:
    settings = current_app.extensions["settings"]
    if request.endpoint == "static" or settings.auth_mode == "local":
        return
    if not allowed(g.reviewer, settings.allowed_reviewers):
        abort(403, "not on the reviewer list (ALLOWED_REVIEWERS)")


def auditors_only() -> None:
    settings = current_app.extensions["settings"]
    if settings.auth_mode == "local":
        return
    if not allowed(g.reviewer, settings.allowed_auditors):
        abort(403, "the audit view is for auditors (ALLOWED_AUDITORS)")


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


def init_app(app: Flask) -> None:
    app.extensions["iap_keys"] = IapKeys(app.extensions["settings"].iap_certs_url)
    app.before_request(_identify)
