"""Errors that carry a retry decision: raising means "retry me", everything else is acknowledged."""


class ConfigError(ValueError):
    """A configuration value is missing or out of range; the message names the key and the range."""


class MessageError(ValueError):
    """A message cannot be understood; retrying it cannot help."""


class BackendUnavailable(RuntimeError):
    """The classifier backend failed in a way a retry may fix (timeout, 5xx, quota)."""
