"""Exponential backoff for a reconnect loop: wait, double, start again after a success.

The MQTT event publisher (``ivr.event_publisher``) and the MQTT campaign intake
(``dialer.intake_mqtt``) both retry a lost broker this way; one helper keeps their timing the
same. The wait ends early when the owner is closing, so a shutdown never waits out a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib

from config.errors import ConfigError


class Backoff:
    """``delay`` starts at ``initial_s`` and doubles after each :meth:`wait`, up to ``max_s``."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ConfigError(f"backoff: need 0 < initial ({initial_s} s) <= max ({max_s} s)")
        self.initial_s = initial_s
        self.max_s = max_s
        self.delay = initial_s

    def reset(self) -> None:
        """Connected again: the next failure waits ``initial_s``."""
        self.delay = self.initial_s

    def advance(self) -> float:
        """The delay to wait now; the next one is doubled (pure: for tests and sync callers)."""
        delay = self.delay
        self.delay = min(delay * 2, self.max_s)
        return delay

    async def wait(self, closing: asyncio.Event) -> None:
        """Wait the current delay, or until ``closing`` is set, then double the delay."""
        delay = self.advance()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), timeout=delay)
