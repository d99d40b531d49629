"""The reviewer's page and its JSON API: next image, decide, skip, undo, queue size."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from review_app.decisions import Decisions
from review_app.unclear_queue import AlreadyDecided, Item, NotAllowed, NotFound, Queue

bp = Blueprint("review", __name__)


def queue() -> Queue:
    return current_app.extensions["queue"]


def decisions() -> Decisions:
    return current_app.extensions["decisions"]


def _item_json(item: Item) -> dict:
    signer = current_app.extensions["signer"]
    body = asdict(item)
    body["url"] = signer.url(queue().prediction_bucket, item.name, item.generation)
    body["display_name"] = item.name.split("/", 1)[1]
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
    """A GCS generation: a positive integer (a decimal string or a JSON integer)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        abort(400, "generation must be a positive integer")
    return int(value)


@bp.app_errorhandler(HTTPException)
def _api_error(exc: HTTPException):
    """API callers get the reason as JSON, so the page can show it; pages keep Flask's own."""
    if request.path.startswith("/api/"):
        return jsonify(error=exc.description), exc.code
    return exc


@bp.errorhandler(NotAllowed)
def _not_allowed(exc):
    return jsonify(error=str(exc)), 400


@bp.errorhandler(NotFound)
def _not_found(exc):
    return jsonify(error="no such image or decision"), 404


@bp.get("/")
def page():
    undo_seconds = current_app.extensions["settings"].undo_seconds
    return render_template("review.html", reviewer=g.reviewer, undo_seconds=undo_seconds)


@bp.get("/api/next")
def next_image():
    exclude = set(request.args.getlist("exclude"))
    if len(exclude) > 200:
        abort(400, "too many exclusions")
    item = queue().next_item(g.reviewer, exclude)
    return jsonify(empty=True) if item is None else jsonify(_item_json(item))


@bp.get("/api/queue")
def queue_size():
    count, capped = queue().count()
    return jsonify(unclear=count, capped=capped)


@bp.post("/api/decide")
def decide():
    body = _body()
    generation = _generation(body.get("generation"))
    try:
        decision = decisions().decide(body.get("name"), generation, body.get("label"), g.reviewer)
    except AlreadyDecided:
        return jsonify(error="already decided by another reviewer", conflict=True), 409
    return jsonify(asdict(decision))


@bp.post("/api/skip")
def skip():
    queue().release(_body().get("name"), g.reviewer)
    return ("", 204)


@bp.post("/api/undo")
def undo():
    body = _body()
    generation = _generation(body["generation"]) if body.get("generation") is not None else None
    try:
        item = decisions().undo(body.get("decision"), generation, g.reviewer)
    except AlreadyDecided:
        return jsonify(error="the image changed since; nothing was undone", conflict=True), 409
    return jsonify(_item_json(item))
