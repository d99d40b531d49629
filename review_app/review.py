"""The reviewer's page and its JSON API: next image, decide, skip, undo, queue size."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request

from inspection.reviews import AlreadyDecided, Item, NotAllowed, NotFound, Reviews

bp = Blueprint("review", __name__)


def reviews() -> Reviews:
    return current_app.extensions["reviews"]


def _item_json(item: Item) -> dict:
    signer = current_app.extensions["signer"]
    body = asdict(item)
    body["url"] = signer.url(current_app.config["BUCKET"], item.name, item.generation)
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


@bp.errorhandler(NotAllowed)
def _not_allowed(exc):
    return jsonify(error=str(exc)), 400


@bp.errorhandler(NotFound)
def _not_found(exc):
    return jsonify(error="no such image or decision"), 404


@bp.get("/")
def page():
    return render_template("review.html", reviewer=g.reviewer)


@bp.get("/api/next")
def next_image():
    exclude = set(request.args.getlist("exclude"))
    if len(exclude) > 200:
        abort(400, "too many exclusions")
    item = reviews().next_item(g.reviewer, exclude)
    return jsonify(empty=True) if item is None else jsonify(_item_json(item))


@bp.get("/api/queue")
def queue():
    count, capped = reviews().count_unclear()
    return jsonify(unclear=count, capped=capped)


@bp.post("/api/decide")
def decide():
    body = _body()
    generation = _generation(body.get("generation"))
    try:
        decision = reviews().decide(body.get("name"), generation, body.get("label"), g.reviewer)
    except AlreadyDecided:
        return jsonify(error="already decided by another reviewer"), 409
    return jsonify(asdict(decision))


@bp.post("/api/skip")
def skip():
    reviews().release(_body().get("name"), g.reviewer)
    return ("", 204)


@bp.post("/api/undo")
def undo():
    try:
        item = reviews().undo(_body().get("decision"), g.reviewer)
    except AlreadyDecided:
        return jsonify(error="the image changed since; nothing was undone"), 409
    return jsonify(_item_json(item))
