"""The reviewer's page and its JSON API. Every request that takes or changes a lease or a decision
is a POST (CSRF-checked by review_app.security); every field is validated, and a refusal answers
409 with the true reason (review_app.errors)."""

from __future__ import annotations

import re
from dataclasses import asdict

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from inspection import layout
from inspection.errors import Held
from review_app.auth import reviewers_only
from review_app.decisions import Decisions
from review_app.errors import NotAllowed, NotFound, Refused
from review_app.leases import PREFETCH, VIEW
from review_app.unclear_queue import Item, Queue

bp = Blueprint("review", __name__)
bp.before_request(reviewers_only)

TAB = re.compile(r"^[A-Za-z0-9-]{1,64}$")
GENERATION = re.compile(r"^[0-9]{1,19}$")  # GCS generations are int64; no other digits, no giant numbers
MAX_EXCLUDED = 4


def queue() -> Queue:
    return current_app.extensions["queue"]


def decisions() -> Decisions:
    return current_app.extensions["decisions"]


def _item_json(item: Item) -> dict:
    body = asdict(item)
    body["url"] = _url(item.name, item.generation)
    body["heatmap_url"] = _url(item.heatmap, None) if item.heatmap else ""
    body["display_name"] = layout.displayed(layout.parse(item.name).name)
    return body


def _body() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes
        body = None
    if not isinstance(body, dict):
        abort(400, "expected a JSON object")
    return body


def _generation(value: object) -> int:
    """A GCS generation: a positive integer (a decimal string of ASCII digits, or a JSON integer)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not GENERATION.match(text) or int(text) == 0:
        abort(400, "generation must be a positive integer of at most 19 digits")
    return int(text)


def _tab(body: dict) -> str:
    tab = body.get("tab", "")
    if not isinstance(tab, str) or (tab and not TAB.match(tab)):
        abort(400, "tab must be 1 to 64 letters, digits or '-'")
    return tab


def _text(body: dict, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        abort(400, f"{key} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        abort(400, f"{key} is not valid UTF-8")
    return value


@bp.app_errorhandler(HTTPException)
def _api_error(exc: HTTPException):
    """API callers get the reason as JSON, so the page can show it; pages keep Flask's own."""
    if request.path.startswith("/api/"):
        return jsonify(error=exc.description, reason=exc.name.lower().replace(" ", "_")), exc.code
    return exc


@bp.errorhandler(NotAllowed)
def _not_allowed(exc):
    return jsonify(error=str(exc), reason="not_allowed"), 400


@bp.errorhandler(NotFound)
def _not_found(exc):
    return jsonify(error="no such image or decision", reason="not_found"), 404


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    return jsonify(error=exc.message, reason=exc.reason, conflict=True, **exc.details), 409


@bp.errorhandler(Held)
def _held(exc: Held):
    return jsonify(error=f"held for a person: {exc.reason}", reason="held", conflict=True), 409


@bp.get("/")
def page():
    settings = current_app.extensions["settings"]
    return render_template(
        "review.html",
        reviewer=g.reviewer,
        undo_seconds=settings.undo_seconds,
        renew_seconds=max(10, settings.lease_seconds // 3),
    )


@bp.post("/api/next")
def next_image():
    body = _body()
    kind = body.get("kind", VIEW)
    if kind not in (VIEW, PREFETCH):
        abort(400, "kind must be view or prefetch")
    exclude = body.get("exclude", [])
    if (
        not isinstance(exclude, list)
        or len(exclude) > MAX_EXCLUDED
        or not all(isinstance(e, str) for e in exclude)
    ):
        abort(400, f"exclude must be a list of at most {MAX_EXCLUDED} names")
    reclaim = body.get("reclaim", False)
    if not isinstance(reclaim, bool):
        abort(400, "reclaim must be true or false")
    item = queue().next_item(g.reviewer, _tab(body), kind, frozenset(exclude), reclaim)
    return jsonify(empty=True) if item is None else jsonify(_item_json(item))


@bp.post("/api/show")
def show():
    """The tab shows the image it prefetched; a fresh URL comes with it."""
    return _held_on(queue().show)


@bp.post("/api/renew")
def renew():
    """The image is still on screen; a fresh URL comes with it (for loading it again)."""
    return _held_on(queue().renew)


def _held_on(hold):
    """`hold` (show or renew) the tab's lease on the image the body names; its new expiry and URL."""
    body = _body()
    name, generation = _text(body, "name"), _generation(body.get("generation"))
    expires = hold(name, generation, g.reviewer, _tab(body))
    return jsonify(lease_expires=expires, url=_url(name, generation))


def _url(name: str, generation: int | None) -> str:
    return current_app.extensions["signer"].url(queue().prediction_bucket, name, generation)


@bp.get("/api/queue")
def queue_size():
    count, capped = queue().count()
    return jsonify(unclear=count, capped=capped)


@bp.post("/api/decide")
def decide():
    body = _body()
    generation = _generation(body.get("generation"))
    label = body.get("label")
    if label not in layout.DECISIONS:
        abort(400, f"label must be one of {', '.join(layout.DECISIONS)}")
    decision = decisions().decide(_text(body, "name"), generation, label, g.reviewer, _tab(body))
    return jsonify(asdict(decision))


@bp.post("/api/skip")
def skip():
    body = _body()
    queue().release(_text(body, "name"), g.reviewer, _tab(body))
    return ("", 204)


@bp.post("/api/release")
def release():
    """What a closing tab gives back (navigator.sendBeacon: a form with the CSRF token)."""
    tab = request.form.get("tab", "")
    if tab and not TAB.match(tab):
        abort(400, "tab must be 1 to 64 letters, digits or '-'")
    for name in request.form.getlist("name")[:MAX_EXCLUDED]:
        queue().release(name, g.reviewer, tab)
    return ("", 204)


@bp.post("/api/undo")
def undo():
    body = _body()
    generation = _generation(body["generation"]) if body.get("generation") is not None else None
    item = decisions().undo(_text(body, "decision"), generation, g.reviewer, _tab(body))
    return jsonify(_item_json(item))
