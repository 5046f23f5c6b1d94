"""Drain mode: ``kill -USR1 <serve pid>`` takes no new calls and exits once the live ones end.

SIGUSR1's default action kills a process, which would drop every live call: the opposite of
a drain. So ``serve`` catches it from its first moment (:func:`hold_drain_requests`) and
remembers a request that arrives while it still starts up; the running server (or the front
of ``serve --workers N``) then handles the signal on its loop and honours a remembered request.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

DRAIN_SIGNAL = signal.SIGUSR1
_requested = threading.Event()


def hold_drain_requests() -> None:
    """Remember SIGUSR1 until the loop handles it (call from the main thread, at start)."""
    signal.signal(DRAIN_SIGNAL, _remember)


def _remember(_signum: int, _frame: FrameType | None) -> None:
    _requested.set()


def drain_requested_early() -> bool:
    """Whether SIGUSR1 arrived before the loop's handler was installed."""
    return _requested.is_set()


def drain_timeout(seconds: float) -> float | None:
    """``sip.drain_timeout_s`` as a timeout: 0 means wait for as long as the calls last."""
    return seconds if seconds > 0 else None
