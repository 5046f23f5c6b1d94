"""The HTTP intake rate limit: a token bucket per client address.

It runs before the token check, so a stranger guessing tokens or flooding the port is slowed
at the cost of a dictionary lookup. The table of addresses is bounded, so a flood from many
addresses cannot grow it without end. The bucket is per process (see docs/intake.md).
"""

from __future__ import annotations

from collections import OrderedDict

MAX_CLIENTS_TRACKED = 10_000


class RateLimiter:
    """A token bucket per client address; the least recently seen are forgotten beyond a bound."""

    def __init__(self, rate_per_s: float, burst: int, max_clients: int = MAX_CLIENTS_TRACKED) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, client: str, now: float) -> float:
        """0 if the request may go ahead (and counts), else the seconds until it may."""
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
