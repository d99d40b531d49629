"""CSRF protection and security headers.

CSRF uses a double-submit token: a random cookie (SameSite=Strict, HttpOnly) whose value the page
carries in a meta tag and every state-changing request returns in `X-CSRF-Token`. It needs no
server-side secret, so it holds across gunicorn workers and instances, where a per-process key
(the original showcase's Fernet key) does not.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, request

CSRF_COOKIE = "qi_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def csrf_token() -> str:
    """The token for this browser, minted on first sight."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) < 32:
        token = g.setdefault("new_csrf", secrets.token_urlsafe(32))
    return token


def _check_csrf() -> None:
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "") or request.form.get("csrf_token", "")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        abort(403, "missing or wrong CSRF token")
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        abort(403, "cross-origin request")


def _headers(response):
    storage = current_app.extensions["signer"].origin
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' {storage}; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    iap = current_app.extensions["settings"].auth_mode == "iap"
    if iap:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    # Every page names reviewers and decisions: no browser or proxy may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    new = g.get("new_csrf")
    if new:
        response.set_cookie(
            CSRF_COOKIE,
            new,
            httponly=True,
            samesite="Strict",
            secure=iap,
        )
    return response


def init_app(app: Flask) -> None:
    app.before_request(_check_csrf)
    app.after_request(_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
