"""Errors that carry a retry decision: raising means "retry me", everything else is acknowledged."""


class ConfigError(ValueError):
    """A configuration value is missing or out of range; the message names the key and the range."""


class MessageError(ValueError):
    """A message cannot be understood; retrying it cannot help."""


class Held(Exception):
    """Retrying cannot help and guessing could lose or double an image: a person must look.

    The image stays where it is (nothing is lost), one ERROR line says why, and the entrance
    acknowledges the request; docs/operations.md, "Runbook" says what to do.
    """

    def __init__(self, reason: str, **fields: object):
        super().__init__(reason)
        self.reason = reason
        self.fields = fields


class BackendUnavailable(RuntimeError):
    """The classifier backend failed in a way a retry may fix (timeout, 5xx, quota)."""
