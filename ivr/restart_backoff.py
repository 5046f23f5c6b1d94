"""When a dead ``serve`` worker is started again: a doubling backoff, and a cap per minute.

Sans-I/O: the worker pool tells it when a worker died and when it was started again (monotonic
seconds), and it answers how long to wait. A worker that keeps dying is restarted ever more
slowly, and once it has been restarted ``per_minute`` times within a minute the cap holds it
back and says so, so a crash loop shows in the log instead of spinning quietly. A worker that
ran for ``stable_after_s`` before dying counts as a new incident: the backoff starts over.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

WINDOW_S = 60.0


@dataclass(frozen=True)
class RestartDecision:
    delay_s: float
    """Wait this long before starting the worker again."""
    capped: bool
    """The per-minute cap, not the backoff, set the delay: the worker is crash-looping."""
    recent_restarts: int
    """Restarts within the last minute, as of the death."""


class RestartBackoff:
    """1 s, 2 s, 4 s ... up to ``max_s`` between restarts; at most ``per_minute`` a minute."""

    def __init__(
        self,
        initial_s: float = 1.0,
        max_s: float = 30.0,
        per_minute: int = 4,
        stable_after_s: float = 60.0,
    ) -> None:
        if initial_s <= 0 or max_s < initial_s or per_minute < 1:
            raise ValueError(
                f"restart backoff: need 0 < initial_s <= max_s and per_minute >= 1, "
                f"got {initial_s}, {max_s}, {per_minute}"
            )
        self.initial_s = initial_s
        self.max_s = max_s
        self.per_minute = per_minute
        self.stable_after_s = stable_after_s
        self._next_s = initial_s
        self._starts: deque[float] = deque(maxlen=per_minute)
        self._last_start: float | None = None

    def on_death(self, now: float) -> RestartDecision:
        """The worker died at ``now``: how long to wait before starting it again."""
        if self._last_start is None or now - self._last_start >= self.stable_after_s:
            self._next_s = self.initial_s
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self.max_s)
        recent = sum(1 for t in self._starts if now - t < WINDOW_S)
        capped = False
        if len(self._starts) == self.per_minute:
            # The restart may happen once the oldest of the last ``per_minute`` leaves the window.
            until_allowed = self._starts[0] + WINDOW_S - now
            if until_allowed > delay:
                delay, capped = until_allowed, True
        return RestartDecision(delay, capped, recent)

    def on_restart(self, now: float) -> None:
        """The worker was started again at ``now``."""
        self._starts.append(now)
        self._last_start = now
