"""Time zone from a number: single zones, same-clock groups, and real ambiguity."""

from __future__ import annotations

import phonenumbers
import pytest

from dialer.callee_zone import same_clock, zone_exists, zone_for_number


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+86 138 1234 5678", "Asia/Shanghai"),  # single-zone country: fast path
        ("+1 212 555 0123", "America/New_York"),  # a geographic NANP area code
        ("+49 151 23456789", "Europe/Berlin"),
        ("+44 7911 123456", "Europe/Guernsey"),  # four zones with London's clock: equivalent
    ],
)
def test_dialer_data_zone_for_number(number: str, zone: str) -> None:
    assert zone_for_number(phonenumbers.parse(number))[0] == zone


@pytest.mark.parametrize("number", ["+7 912 345 6789", "+1 800 555 0100", "+61 412 345 678"])
def test_dialer_data_ambiguous_number_has_no_zone(number: str) -> None:
    zone, candidates = zone_for_number(phonenumbers.parse(number))
    assert zone is None and len(candidates) > 1


def test_dialer_data_same_clock_checks_every_hour() -> None:
    assert same_clock(("Europe/London", "Europe/Jersey", "Europe/Dublin"))
    assert not same_clock(("Europe/London", "Europe/Lisbon", "Africa/Casablanca"))
    # Same offsets and DST days, but Cuba switches at midnight and New York at 02:00.
    assert not same_clock(("America/New_York", "America/Nassau", "America/Havana"))
    assert not same_clock(("Europe/London", "Mars/Olympus"))
    assert zone_exists("Asia/Urumqi") and not zone_exists("Mars/Olympus") and not zone_exists("../etc")
