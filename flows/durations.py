"""Durations as admins write them: ``6s``, ``500ms``, ``1m30s``, ``1.5s`` or a bare number of seconds."""

from __future__ import annotations

import math
import re

from config.errors import IvrError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class DurationError(IvrError, ValueError):
    """The text is not a duration; the message shows the accepted forms."""


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raises :class:`DurationError` for anything else (or negatives)."""
    if isinstance(value, bool):
        raise DurationError(f"invalid duration {value!r} (use e.g. 5s, 500ms, 1m30s)")
    if isinstance(value, int | float):
        if value < 0:
            raise DurationError(f"invalid duration {value!r}: must not be negative")
        if not math.isfinite(value) or value > 1e12:
            raise DurationError("invalid duration: must be a finite number of seconds")
        return float(value)
    if not isinstance(value, str):
        raise DurationError(f"invalid duration {value!r} (use e.g. 5s, 500ms, 1m30s)")
    text = value.strip().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text) or not math.isfinite(total):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise DurationError(f"invalid duration '{shown}' (use e.g. 5s, 500ms, 1m30s)")
    return total
