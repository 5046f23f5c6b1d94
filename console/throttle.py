"""Login throttling: after a few failures a user name, or a client address, is locked out for a
time that doubles with each further failure. Pure: fed ``now`` (seconds, monotonic), no I/O.

Both keys count separately, so guessing one account's password from many addresses, and many
accounts' passwords from one address, are both slowed. A success clears the user's count (not
the address's: one good password must not unlock an address that is guessing others').
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass
class LoginThrottle:
    free_failures: int = 5
    """Failures allowed before the first lockout."""
    base_lockout_s: float = 30.0
    max_lockout_s: float = 3600.0
    forget_after_s: float = 86_400.0
    """A key with no failure for this long starts again from zero."""
    max_keys: int = 100_000
    """Records kept at most (the oldest are dropped), so a flood of names cannot fill memory."""
    _records: dict[str, _Record] = field(default_factory=dict)

    def locked_for(self, keys: tuple[str, ...], now: float) -> float:
        """Seconds until every key in ``keys`` may try again (0.0 when none is locked)."""
        wait = 0.0
        for key in keys:
            record = self._records.get(key)
            if record is not None and record.locked_until > now:
                wait = max(wait, record.locked_until - now)
        return wait

    def failed(self, keys: tuple[str, ...], now: float) -> float:
        """Count a failed login for each key; the lockout (seconds) it now brings, 0.0 if none."""
        wait = 0.0
        for key in keys:
            record = self._records.get(key)
            if record is None or now - record.last > self.forget_after_s:
                record = self._records[key] = _Record()
            record.failures += 1
            record.last = now
            over = record.failures - self.free_failures
            if over >= 0:
                lockout = min(self.max_lockout_s, self.base_lockout_s * 2.0**over)
                record.locked_until = now + lockout
                wait = max(wait, lockout)
        self._trim()
        return wait

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)

    def _trim(self) -> None:
        if len(self._records) > self.max_keys:
            oldest = sorted(self._records, key=lambda k: self._records[k].last)
            for key in oldest[: len(self._records) - self.max_keys]:
                del self._records[key]
