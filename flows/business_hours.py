"""Opening hours and holidays of a contact center, in its own time zone.

``now`` may be in any time zone (it is converted); a naive ``now`` is taken as UTC, which is
what the engine passes around.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.yaml_source import MarkedDict, MarkedList, Pos

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")

Report = Callable[[Pos, str], None]


@dataclass(frozen=True)
class BusinessHours:
    """Weekly opening ranges (minutes after local midnight) per weekday, plus closed days."""

    name: str
    timezone: ZoneInfo
    weekly: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now.astimezone(self.timezone)

    def is_holiday(self, now: datetime) -> bool:
        return self.local(now).date() in self.holidays

    def is_open(self, now: datetime) -> bool:
        local = self.local(now)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly.get(local.weekday(), ()))


def _days(spec: str) -> list[int] | None:
    """``mon``, ``mon-fri``, ``sat,sun``, ``daily`` or ``weekdays`` to weekday numbers."""
    spec = spec.strip().lower()
    if spec in ("daily", "every day"):
        return list(range(7))
    if spec == "weekdays":
        return list(range(5))
    if spec == "weekends":
        return [5, 6]
    result: list[int] = []
    for part in spec.split(","):
        bounds = [p.strip()[:3] for p in part.split("-")]
        if any(b not in DAYS for b in bounds) or len(bounds) > 2:
            return None
        first, last = DAYS.index(bounds[0]), DAYS.index(bounds[-1])
        if last < first:
            return None
        result.extend(range(first, last + 1))
    return result


def _ranges(value: object) -> tuple[tuple[int, int], ...] | str:
    """Parse ``08:00-20:00`` (comma-separated for several); returns an error text on failure."""
    if isinstance(value, bool) or value is None:
        return f"invalid opening hours {value!r} (use e.g. '08:00-20:00' or closed)"
    if isinstance(value, int):
        return f"opening hours {value!r} were read as a number: quote them, e.g. '08:00-20:00'"
    text = str(value).strip().lower()
    if text == "closed":
        return ()
    result: list[tuple[int, int]] = []
    for part in text.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            return f"invalid opening hours '{part.strip()}' (use e.g. '08:00-20:00')"
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or end <= start:
            return f"invalid opening hours '{part.strip()}': the end must be after the start, within one day"
        result.append((start, end))
    return tuple(result)


def parse_business_hours(name: str, raw: MarkedDict, report: Report) -> BusinessHours | None:
    """Build a calendar from its YAML mapping, reporting every problem through ``report``."""
    tz_name = raw.get("timezone")
    zone: ZoneInfo | None = None
    if not isinstance(tz_name, str) or not tz_name:
        report(
            raw.where_key("timezone") if "timezone" in raw else raw.pos,
            f"business_hours.{name}: needs a timezone (e.g. Europe/London)",
        )
    else:
        try:
            zone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            report(raw.where_value("timezone"), f"business_hours.{name}: unknown time zone {tz_name[:60]!r}")
    weekly: dict[int, tuple[tuple[int, int], ...]] = {}
    hours = raw.get("hours")
    if not isinstance(hours, MarkedDict):
        report(
            raw.where_value("hours") if "hours" in raw else raw.pos,
            f"business_hours.{name}.hours: expected a mapping of days to opening hours",
        )
    else:
        for day_spec, value in hours.items():
            days = _days(day_spec)
            if days is None:
                report(
                    hours.where_key(day_spec),
                    f"business_hours.{name}.hours: invalid days '{day_spec}' (use e.g. mon-fri, sat, sun)",
                )
                continue
            ranges = _ranges(value)
            if isinstance(ranges, str):
                report(hours.where_value(day_spec), f"business_hours.{name}.hours.{day_spec}: {ranges}")
                continue
            for day in days:
                weekly[day] = weekly.get(day, ()) + ranges
    holidays: set[date] = set()
    raw_holidays = raw.get("holidays", [])
    if not isinstance(raw_holidays, MarkedList):
        report(raw.where_value("holidays"), f"business_hours.{name}.holidays: expected a list of dates")
    else:
        for index, entry in enumerate(raw_holidays):
            item = entry.date() if isinstance(entry, datetime) else entry
            if isinstance(item, date):
                holidays.add(item)
                continue
            try:
                holidays.add(date.fromisoformat(str(item)))
            except ValueError:
                report(
                    raw_holidays.where(index),
                    f"business_hours.{name}.holidays: invalid date '{item}' (use YYYY-MM-DD)",
                )
    if zone is None:
        return None
    return BusinessHours(name, zone, weekly, frozenset(holidays))
