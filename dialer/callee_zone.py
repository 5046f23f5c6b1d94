"""The callee's time zone from their number, for calling-hours checks.

``phonenumbers`` maps a number to the IANA zones its range covers. One zone: use it. Several
zones that always show the same clock (checked hourly over 2025-2026, e.g. Europe/London and
Europe/Jersey for a UK mobile) are the same for calling hours: the first listed is used.
Zones whose clocks differ at any hour make the number ambiguous: :func:`zone_for_number`
returns None and the importer asks for a ``timezone`` column rather than guessing, because a
wrong guess could mean a call outside legal hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone
from phonenumbers.tzdata import TIMEZONE_DATA

UNKNOWN_ZONE = "Etc/Unknown"
_PROBE_START = datetime(2025, 1, 1, tzinfo=UTC)
_PROBE_HOURS = 2 * 365 * 24


@lru_cache(maxsize=4096)
def zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        return False
    return True


@lru_cache(maxsize=512)
def _country_zones(country_code: int) -> tuple[str, ...]:
    """Every zone any range of the country maps to (ITU country codes are prefix-free)."""
    prefix = str(country_code)
    zones = {z for key, value in TIMEZONE_DATA.items() if key.startswith(prefix) for z in value}
    zones.discard(UNKNOWN_ZONE)
    return tuple(sorted(zones))


@lru_cache(maxsize=1024)
def same_clock(zones: tuple[str, ...]) -> bool:
    """True if every zone shows the same local time at every probed hour."""
    infos = [ZoneInfo(z) for z in zones if zone_exists(z)]
    if len(infos) != len(zones):
        return False
    for hour in range(_PROBE_HOURS):
        at = _PROBE_START + timedelta(hours=hour)
        offsets = {at.astimezone(info).utcoffset() for info in infos}
        if len(offsets) > 1:
            return False
    return True


def candidate_zones(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    """The zones ``number`` may be in (a fast path for single-zone countries such as China)."""
    country = _country_zones(number.country_code or 0)
    if len(country) == 1:
        return country
    return tuple(z for z in phone_timezone.time_zones_for_number(number) if z != UNKNOWN_ZONE)


def zone_for_number(number: phonenumbers.PhoneNumber) -> tuple[str | None, tuple[str, ...]]:
    """``(zone, candidates)``: the zone to use, or None when unknown or ambiguous."""
    zones = candidate_zones(number)
    if len(zones) == 1 or (zones and same_clock(zones)):
        return zones[0], zones
    return None, zones
