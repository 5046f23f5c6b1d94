"""The exception tree every package raises from, so callers can catch one base class.

It lives in the foundation (``config``) because every layer raises from it.
"""

from __future__ import annotations


class IvrError(Exception):
    """Base of every error this engine raises on purpose."""


class ConfigError(IvrError, ValueError):
    """A setting is missing, unknown or of the wrong type; the message says where."""


class SipError(IvrError):
    """The SIP user agent could not start, place or answer a call."""


class MediaError(IvrError):
    """Audio was malformed or an audio engine failed."""


class MissingDependencyError(IvrError):
    """An optional component was selected but what it needs is not installed."""

    def __init__(self, what: str, install_hint: str) -> None:
        super().__init__(f"{what} is not available: {install_hint}")
        self.install_hint = install_hint
