"""What the review app refuses, and why, as the page shows it: every refusal carries a short code
the page can act on and a sentence that is true for the reviewer who reads it."""

from __future__ import annotations


class NotAllowed(ValueError):
    """The request names something a reviewer may not touch, or is malformed (400)."""


class NotFound(LookupError):
    """No such image or decision, or not this reviewer's (404)."""


class Refused(Exception):
    """The request is well formed but cannot be done now, for the reason given (409)."""

    def __init__(self, reason: str, message: str, **details: object):
        super().__init__(message)
        self.reason = reason  # a code: decided, undone, other_tab, held_by_other, lease_lost, changed, …
        self.message = message
        self.details = details


class AlreadyDecided(Refused):
    """Someone decided this image first (or has it on screen, or is undoing it)."""

    def __init__(self, name: str, message: str = "", reason: str = "decided", **details: object):
        super().__init__(reason, message or f"{name} was already decided", name=name, **details)
