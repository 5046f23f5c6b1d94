"""How fast a trunk may take new calls: a concurrency cap plus a calls-per-second token bucket.

One :class:`Pacer` per trunk, shared by every worker dialling through it. Time is a monotonic
float in seconds passed by the caller (``loop.time()`` in the asyncio adapter), never read
here. ``try_acquire(now)`` admits a call and must be paired with exactly one
``release(now)`` when that call ends, whatever the result. ``pause()`` stops admitting new
calls at once; calls in progress continue.

    pacer = Pacer(max_concurrent=10, calls_per_second=2.0)
    if pacer.try_acquire(now):
        ...  # originate; later: pacer.release(later)
    else:
        wake_at = pacer.next_slot_time(now)   # None: wait for a release or resume()
"""

from __future__ import annotations

from dataclasses import dataclass

from dialer.call_result import PolicyError


@dataclass(frozen=True)
class PacingLimits:
    """A trunk's limits; ``burst`` is how many calls may start back to back after a lull."""

    max_concurrent: int
    calls_per_second: float
    burst: float = 1.0

    def __post_init__(self) -> None:
        if self.max_concurrent < 1:
            raise PolicyError(f"pacing max_concurrent {self.max_concurrent} must be at least 1")
        if not self.calls_per_second > 0:
            raise PolicyError(f"pacing calls_per_second {self.calls_per_second} must be positive")
        if self.burst < 1.0:
            raise PolicyError(f"pacing burst {self.burst} must be at least 1")


class Pacer:
    """Admission control for one trunk; see the module docstring."""

    def __init__(self, max_concurrent: int, calls_per_second: float, burst: float = 1.0) -> None:
        self._limits = PacingLimits(max_concurrent, calls_per_second, burst)
        self._tokens = self._limits.burst
        self._last: float | None = None
        self._active = 0
        self._paused = False

    @property
    def limits(self) -> PacingLimits:
        return self._limits

    @property
    def active(self) -> int:
        """Calls admitted and not yet released."""
        return self._active

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Admit no new call until :meth:`resume`; calls in progress are not touched."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def set_limits(self, max_concurrent: int, calls_per_second: float, burst: float | None = None) -> None:
        """Change limits live (a campaign edit); tokens already earned are kept up to the burst."""
        self._limits = PacingLimits(
            max_concurrent, calls_per_second, self._limits.burst if burst is None else burst
        )
        self._tokens = min(self._tokens, self._limits.burst)

    def try_acquire(self, now: float) -> bool:
        """Admit one new call at ``now`` if paused, concurrency and rate all allow it."""
        self._refill(now)
        if self._paused or self._active >= self._limits.max_concurrent or self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self._active += 1
        return True

    def release(self, now: float) -> None:
        """A call admitted earlier has ended (answered, failed or cancelled)."""
        self._refill(now)
        if self._active == 0:
            raise PolicyError("pacer release without a matching try_acquire (calls in progress: 0)")
        self._active -= 1

    def next_slot_time(self, now: float) -> float | None:
        """When :meth:`try_acquire` may next succeed: ``now`` if it would, a later time if only
        the rate limit is in the way, None if it waits on a release or a resume."""
        self._refill(now)
        if self._paused or self._active >= self._limits.max_concurrent:
            return None
        if self._tokens >= 1.0:
            return now
        return now + (1.0 - self._tokens) / self._limits.calls_per_second

    def _refill(self, now: float) -> None:
        if self._last is None:
            self._last = now
            return
        # A clock that steps back (another worker's stale time) earns nothing, never goes negative.
        elapsed = max(0.0, now - self._last)
        self._last = max(self._last, now)
        self._tokens = min(self._limits.burst, self._tokens + elapsed * self._limits.calls_per_second)
