"""When a contact may legally be called, in the callee's local time.

Hours are wall-clock intervals per weekday in the callee's IANA time zone (default 09:00-21:00
every day), minus holidays (local dates). Every answer is computed from an aware UTC instant,
so the server's own time zone never matters, and intervals are turned into UTC instants per
local date, so DST days are handled: an interval that starts inside a spring-forward gap opens
when the clock jumps past it, and an ambiguous start (fall-back) opens at its first occurrence.

    hours = CallingHours.from_config({"default": "09:00-21:00", "sunday": "closed",
                                      "holidays": ["2025-12-25"]})
    hours.is_open(now_utc, "America/New_York")
    hours.next_open(now_utc, "Asia/Shanghai")   # an aware UTC datetime
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.call_result import PolicyError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SEARCH_DAYS = 400  # a year of holidays plus slack; beyond that the hours never open
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Interval:
    """Local wall-clock ``[start, end)``; ``end=None`` means midnight at the end of the day."""

    start: time
    end: time | None

    def __post_init__(self) -> None:
        if self.end is not None and self.end <= self.start:
            raise PolicyError(f"calling hours interval {self}: end must be after start")

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"

    @classmethod
    def parse(cls, text: str, where: str = "calling hours") -> Interval:
        """Parse ``"HH:MM-HH:MM"`` (``24:00`` allowed as the end)."""
        match = _INTERVAL.match(text)
        if match is None:
            raise PolicyError(f"{where}: {text!r} is not an interval like '09:00-21:00'")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise PolicyError(f"{where}: {text!r} has a time outside 00:00..24:00")
        end = None if h2 == 24 else time(h2, m2)
        if end is not None and end <= time(h1, m1):
            raise PolicyError(f"{where}: {text!r}: end must be after start (split overnight hours)")
        return cls(time(h1, m1), end)


DEFAULT_INTERVAL = Interval(time(9, 0), time(21, 0))


def zone(tz: str | tzinfo) -> tzinfo:
    """The time zone named ``tz`` (an IANA name), or ``tz`` itself."""
    if not isinstance(tz, str):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PolicyError(f"unknown time zone {tz!r} (expected an IANA name like 'Europe/Paris')") from None


def require_aware(at: datetime, name: str = "time") -> datetime:
    """Reject naive datetimes: a naive time would silently take the server's zone."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise PolicyError(f"{name} {at.isoformat()} has no time zone; pass an aware UTC datetime")
    return at


def local_instant(day: date, wall: time | None, tz: tzinfo) -> datetime:
    """The first UTC instant at which the local clock in ``tz`` reads ``wall`` or later on ``day``.

    ``wall=None`` is the midnight ending ``day``. In a spring-forward gap the wall time never
    shows; the answer is then the instant of the jump.
    """
    if wall is None:
        return local_instant(day + timedelta(days=1), time(0), tz)
    naive = datetime.combine(day, wall)
    early = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if early.astimezone(tz).replace(tzinfo=None) == naive:
        late = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        return min(early, late)  # ambiguous (fall-back): the first occurrence
    # In a gap: fold=1 maps with the offset after the jump (too early), fold=0 with the one
    # before it (too late); the jump lies between them. Search for it to the second.
    low = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    high = int(early.timestamp())
    low, high = min(low, high), max(low, high)
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, UTC)


@dataclass(frozen=True)
class CallingHours:
    """Weekly local calling hours with holiday dates; see the module docstring."""

    weekly: tuple[tuple[Interval, ...], ...] = field(default=((DEFAULT_INTERVAL,),) * 7)
    """Seven entries, Monday first; an empty entry means closed all day."""
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise PolicyError(f"calling hours need 7 weekdays, got {len(self.weekly)}")
        for name, day in zip(WEEKDAYS, self.weekly, strict=True):
            ordered = sorted(day, key=lambda iv: iv.start)
            for first, second in pairwise(ordered):
                if first.end is None or first.end > second.start:
                    raise PolicyError(f"calling hours {name}: {first} overlaps {second}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, where: str = "calling_hours") -> CallingHours:
        """Build from data such as a campaign's YAML or JSON settings.

        Keys: ``default`` (applies to every weekday not given), one key per weekday
        (``monday``..``sunday``), each an interval ``"09:00-21:00"``, a list of intervals,
        or ``"closed"``; ``holidays``: a list of ISO dates. Errors name ``where`` and the key.
        """
        config = dict(config or {})
        unknown = set(config) - {"default", "holidays", *WEEKDAYS}
        if unknown:
            raise PolicyError(
                f"{where}: unknown key {sorted(unknown)[0]!r} (expected default, holidays or a weekday name)"
            )
        default = _intervals(config.get("default", str(DEFAULT_INTERVAL)), f"{where}.default")
        weekly = tuple(
            _intervals(config[name], f"{where}.{name}") if name in config else default for name in WEEKDAYS
        )
        return cls(weekly=weekly, holidays=_holidays(config.get("holidays", ()), f"{where}.holidays"))

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        """The local intervals of ``day`` (none on a holiday)."""
        if day in self.holidays:
            return ()
        return tuple(sorted(self.weekly[day.weekday()], key=lambda iv: iv.start))

    def is_open(self, at_utc: datetime, tz: str | tzinfo) -> bool:
        """True if a call may start at ``at_utc`` in the callee's zone ``tz``."""
        return self.next_open(at_utc, tz) == at_utc

    def next_open(self, at_utc: datetime, tz: str | tzinfo) -> datetime:
        """The earliest instant at or after ``at_utc`` when calling is allowed (UTC).

        Returns ``at_utc`` itself when open. Raises :class:`PolicyError` if the hours never
        open within a year (every day closed or a holiday).
        """
        start, _ = self.open_interval(at_utc, tz)
        return start

    def closes_at(self, at_utc: datetime, tz: str | tzinfo) -> datetime:
        """When the interval that is open at (or next opens after) ``at_utc`` closes (UTC)."""
        _, end = self.open_interval(at_utc, tz)
        return end

    def next_open_before(self, at_utc: datetime, tz: str | tzinfo, limit: datetime | None) -> datetime | None:
        """Like :meth:`next_open`, but None when it is not before ``limit`` (or never)."""
        found = self._first_interval(at_utc, tz, limit)
        return None if found is None else found[0]

    def open_interval(self, at_utc: datetime, tz: str | tzinfo) -> tuple[datetime, datetime]:
        """``(open, close)`` in UTC of the first allowed interval that ends after ``at_utc``,
        with ``open`` clipped to ``at_utc``."""
        found = self._first_interval(at_utc, tz, None)
        if found is None:
            raise PolicyError(
                f"calling hours never open within {_SEARCH_DAYS} days after {at_utc.isoformat()}"
            )
        return found

    def _first_interval(
        self, at_utc: datetime, tz: str | tzinfo, limit: datetime | None
    ) -> tuple[datetime, datetime] | None:
        require_aware(at_utc, "calling hours time")
        if limit is not None:
            require_aware(limit, "calling hours limit")
        zone_info = zone(tz)
        at = at_utc.astimezone(UTC)
        # Start a day early: an interval of yesterday's local date may still be running when
        # DST shifts today's midnight.
        first = at.astimezone(zone_info).date() - timedelta(days=1)
        for offset in range(_SEARCH_DAYS):
            day = first + timedelta(days=offset)
            for interval in self.intervals_on(day):
                begin = local_instant(day, interval.start, zone_info)
                if limit is not None and begin >= limit:
                    return None
                end = local_instant(day, interval.end, zone_info)
                if end > at and begin < end:
                    start = max(begin, at)
                    return None if limit is not None and start >= limit else (start, end)
        return None


def _intervals(value: Any, where: str) -> tuple[Interval, ...]:
    if isinstance(value, str) and value.strip().lower() == "closed":
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise PolicyError(f"{where}: expected '09:00-21:00', a list of intervals or 'closed', got {value!r}")
    result = []
    for item in items:
        if not isinstance(item, str):
            raise PolicyError(f"{where}: expected an interval like '09:00-21:00', got {item!r}")
        result.append(Interval.parse(item, where))
    return tuple(result)


def _holidays(value: Any, where: str) -> frozenset[date]:
    if not isinstance(value, list | tuple | set | frozenset):
        raise PolicyError(f"{where}: expected a list of dates, got {value!r}")
    days = set()
    for item in value:
        if isinstance(item, datetime):
            raise PolicyError(f"{where}: {item!r} is a datetime; holidays are local dates")
        if isinstance(item, date):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(str(item)))
        except ValueError:
            raise PolicyError(f"{where}: {item!r} is not a date like 2025-12-25") from None
    return frozenset(days)
