"""Calling hours in the callee's local time, across zones, DST days and holidays."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from dialer.call_result import PolicyError
from dialer.calling_hours import CallingHours, local_instant, zone

NY = "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_default_hours_nine_to_nine_local() -> None:
    hours = CallingHours()
    # 2025-01-15 is a Wednesday; New York is UTC-5 in winter.
    assert not hours.is_open(utc(2025, 1, 15, 13, 59), NY)
    assert hours.is_open(utc(2025, 1, 15, 14, 0), NY)
    assert hours.is_open(utc(2025, 2, 1, 1, 59), NY)  # 20:59 local
    assert not hours.is_open(utc(2025, 1, 16, 2, 0), NY)  # 21:00 local: closed
    assert hours.next_open(utc(2025, 1, 16, 2, 0), NY) == utc(2025, 1, 16, 14, 0)


def test_same_instant_differs_by_callee_zone() -> None:
    hours = CallingHours()
    at = utc(2025, 6, 2, 3, 0)  # 11:00 in Shanghai, 23:00 (previous day) in New York
    assert hours.is_open(at, "Asia/Shanghai")
    assert not hours.is_open(at, NY)
    assert hours.next_open(at, NY) == utc(2025, 6, 2, 13, 0)  # 09:00 EDT


def test_spring_forward_day_new_york() -> None:
    hours = CallingHours()
    # 2025-03-09: clocks jump 02:00 EST -> 03:00 EDT; 09:00 local is 13:00 UTC, not 14:00.
    assert hours.next_open(utc(2025, 3, 9, 6, 0), NY) == utc(2025, 3, 9, 13, 0)
    assert not hours.is_open(utc(2025, 3, 9, 12, 59), NY)
    assert hours.is_open(utc(2025, 3, 9, 13, 0), NY)


def test_start_inside_the_dst_gap_opens_at_the_jump() -> None:
    hours = CallingHours.from_config({"default": "02:30-21:00"})
    opened = hours.next_open(utc(2025, 3, 9, 5, 0), NY)
    assert opened == utc(2025, 3, 9, 7, 0)
    assert opened.astimezone(zone(NY)).hour == 3


def test_fall_back_ambiguous_start_opens_at_first_occurrence() -> None:
    hours = CallingHours.from_config({"default": "01:30-21:00"})
    # 2025-11-02: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    assert hours.next_open(utc(2025, 11, 2, 4, 0), NY) == utc(2025, 11, 2, 5, 30)
    assert local_instant(date(2025, 11, 2), datetime(2025, 1, 1, 1, 30).time(), zone(NY)) == utc(
        2025, 11, 2, 5, 30)


def test_fall_back_day_closes_at_local_nine_pm() -> None:
    hours = CallingHours()
    assert hours.closes_at(utc(2025, 11, 2, 15, 0), NY) == utc(2025, 11, 3, 2, 0)  # 21:00 EST


def test_lord_howe_half_hour_shift() -> None:
    hours = CallingHours()
    lh = "Australia/Lord_Howe"
    # 2025-04-06 02:00 local: UTC+11 -> UTC+10:30. 09:00 local is then 22:30 UTC the day before.
    assert hours.next_open(utc(2025, 4, 5, 12, 0), lh) == utc(2025, 4, 5, 22, 30)
    # The day before, still on +11: 09:00 local was 22:00 UTC.
    assert hours.next_open(utc(2025, 4, 4, 12, 0), lh) == utc(2025, 4, 4, 22, 0)


def test_weekday_hours_closed_days_and_holidays() -> None:
    hours = CallingHours.from_config({
        "default": "09:00-20:00", "saturday": "10:00-14:00", "sunday": "closed",
        "monday": ["09:00-12:00", "14:00-18:00"], "holidays": ["2025-06-09"]})
    sh = "Asia/Shanghai"  # UTC+8, no DST
    sat_noon = utc(2025, 6, 7, 4, 0)
    assert hours.is_open(sat_noon, sh)
    assert not hours.is_open(utc(2025, 6, 7, 6, 0), sh)  # 14:00 Saturday
    # Saturday 14:00 -> Sunday closed -> Monday 2025-06-09 holiday -> Tuesday 09:00.
    assert hours.next_open(utc(2025, 6, 7, 6, 0), sh) == utc(2025, 6, 10, 1, 0)
    # Lunch break on a regular Monday.
    assert not hours.is_open(utc(2025, 6, 16, 5, 0), sh)  # 13:00
    assert hours.next_open(utc(2025, 6, 16, 5, 0), sh) == utc(2025, 6, 16, 6, 0)


def test_midnight_end_and_instant_in_other_offset() -> None:
    hours = CallingHours.from_config({"default": "18:00-24:00"})
    at = datetime(2025, 1, 15, 23, 30, tzinfo=timezone(timedelta(hours=1)))  # 22:30 UTC
    assert hours.is_open(at, "UTC")
    assert hours.closes_at(at, "UTC") == utc(2025, 1, 16, 0, 0)


def test_result_ignores_server_time_zone() -> None:
    hours = CallingHours()
    at = utc(2025, 3, 9, 6, 0)
    before = os.environ.get("TZ")
    try:
        results = []
        for tz in ("Pacific/Kiritimati", "America/Adak", "UTC"):
            os.environ["TZ"] = tz
            time.tzset()
            results.append(hours.next_open(at, NY))
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()
    assert results == [utc(2025, 3, 9, 13, 0)] * 3


def test_never_open_is_an_error() -> None:
    hours = CallingHours.from_config({"default": "closed"})
    with pytest.raises(PolicyError, match="never open"):
        hours.next_open(utc(2025, 1, 1), NY)
    assert hours.next_open_before(utc(2025, 1, 1), NY, None) is None


def test_next_open_before_a_limit() -> None:
    hours = CallingHours()
    at = utc(2025, 1, 16, 2, 0)  # 21:00 New York
    assert hours.next_open_before(at, NY, utc(2025, 1, 16, 14, 0)) is None
    assert hours.next_open_before(at, NY, utc(2025, 1, 16, 14, 1)) == utc(2025, 1, 16, 14, 0)


@pytest.mark.parametrize(("config", "message"), [
    ({"default": "9-21"}, "calling_hours.default: '9-21' is not an interval"),
    ({"monday": "21:00-09:00"}, "calling_hours.monday: '21:00-09:00': end must be after start"),
    ({"tuesday": "08:00-25:00"}, "outside 00:00..24:00"),
    ({"funday": "closed"}, "unknown key 'funday'"),
    ({"holidays": ["2025-13-01"]}, r"calling_hours.holidays: '2025-13-01' is not a date"),
    ({"holidays": "2025-12-25"}, "expected a list of dates"),
    ({"friday": ["09:00-13:00", "12:00-18:00"]}, "friday: 09:00-13:00 overlaps 12:00-18:00"),
    ({"sunday": 9}, "calling_hours.sunday: expected"),
])
def test_bad_config_names_the_key(config: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        CallingHours.from_config(config)


def test_unknown_zone_and_naive_time_are_errors() -> None:
    with pytest.raises(PolicyError, match="unknown time zone 'Mars/Olympus'"):
        CallingHours().is_open(utc(2025, 1, 1), "Mars/Olympus")
    with pytest.raises(PolicyError, match="has no time zone"):
        CallingHours().is_open(datetime(2025, 1, 1, 12), NY)


ZONES = [NY, "Asia/Shanghai", "Australia/Lord_Howe", "Europe/London", "America/Santiago"]


@pytest.mark.parametrize("tz", ZONES)
def test_next_open_is_open_and_nothing_earlier_is(tz: str) -> None:
    hours = CallingHours.from_config({"saturday": "10:00-14:00", "sunday": "closed"})
    rng = random.Random(tz)
    local = zone(tz)
    for _ in range(150):
        at = utc(2025, 1, 1) + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        opens = hours.next_open(at, tz)
        assert opens >= at
        assert hours.is_open(opens, tz)
        wall = opens.astimezone(local)
        assert wall.weekday() != 6 and (9 if wall.weekday() < 5 else 10) <= wall.hour
        step = max((opens - at) / 20, timedelta(minutes=1))
        probe = at
        while probe < opens:
            assert not hours.is_open(probe, tz)
            probe += step
