"""Structured logging: one ``key=value`` line per event, with caller numbers masked.

Numbers, digits and transcripts never go into message text; pass them as fields and let
:func:`mask_number` decide what is shown.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import re
import sys
import time
from typing import Any

_LOGGER = logging.getLogger("ivr")
_SIP_USER = re.compile(r"^(?P<scheme>sips?:|tel:)?(?P<user>[^@;>]*)(?P<rest>.*)$")


def mask_target(target: str) -> str:
    """A transfer target for logs and events: a queue name as it is, a SIP URI masked."""
    return target if target.startswith("queue:") else mask_number(target)


def mask_number(value: str) -> str:
    """Keep the last 2 digits of a number (or of a SIP URI's user part); mask the rest.

    A display name (``"Jane Doe" <sip:...>``) is dropped: it is personal data too.
    """
    uri = value.strip()
    if "<" in uri:
        uri = uri.split("<", 1)[1].split(">", 1)[0]
    match = _SIP_USER.match(uri)
    if match is None:  # pragma: no cover - the pattern matches every string
        return "***"
    user = match.group("user")
    if not user:
        return f"{match.group('scheme') or ''}***{match.group('rest')}"
    digits = sum(ch.isdigit() for ch in user)
    cutoff = sum(ch.isalnum() for ch in user) - (2 if digits >= 6 else 0)
    masked: list[str] = []
    seen = 0
    for ch in user:
        if ch.isalnum():
            masked.append(ch if seen >= cutoff else "*")
            seen += 1
        else:
            masked.append(ch)
    return f"{match.group('scheme') or ''}{''.join(masked)}{match.group('rest')}"


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... event=... key=value`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        parts = [
            f"ts={ts}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"event={_quote(record.getMessage())}",
        ]
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts.extend(f"{key}={_quote(str(value))}" for key, value in fields.items())
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def _quote(text: str) -> str:
    if text and not any(ch in text for ch in ' "=\n'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now, so a replaced (or captured, then closed)
    stderr never makes logging fail."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def enable_crash_tracebacks() -> None:
    """On SIGSEGV, SIGABRT, SIGBUS, SIGFPE or SIGILL (a fault in pjsua2's C code, say) write
    every thread's Python stack to stderr, the log stream: the process dies before logging can
    say anything, and without this its log ends mid-sentence. Left alone if already enabled
    (``PYTHONFAULTHANDLER``, pytest)."""
    if faulthandler.is_enabled():
        return
    # The process's own stderr, not sys.stderr: that may be a capture without a descriptor.
    # No usable stderr (OSError, ValueError) means nowhere to write a traceback to anyway.
    with contextlib.suppress(OSError, ValueError):
        faulthandler.enable(file=sys.__stderr__ if sys.__stderr__ is not None else 2, all_threads=True)


def configure(level: str = "info") -> None:
    handler = _StderrHandler()
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def log_event(
    event: str, level: int = logging.INFO, logger: logging.Logger | None = None, **fields: Any
) -> None:
    """Log one event with structured fields (mask numbers before passing them)."""
    (logger or _LOGGER).log(level, event, extra={"fields": fields})
