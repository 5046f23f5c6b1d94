"""Business hours in the contact center's time zone, and the template sandbox."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flows.business_hours import BusinessHours
from flows.templates import evaluate, money, reference_code, render, spell, spoken_date, value_of

NEW_YORK = BusinessHours(
    "main",
    ZoneInfo("America/New_York"),
    {0: ((8 * 60, 20 * 60),), 5: ((9 * 60, 13 * 60),)},
    frozenset({date(2026, 12, 28)}),
)


def test_open_hours_follow_the_local_clock() -> None:
    monday_9am_ny = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert NEW_YORK.is_open(monday_9am_ny)
    assert not NEW_YORK.is_open(datetime(2026, 3, 2, 12, 59, tzinfo=UTC))  # 7:59 in New York
    assert NEW_YORK.is_open(datetime(2026, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=-4))))  # any zone
    assert not NEW_YORK.is_open(datetime(2026, 3, 3, 14, 0, tzinfo=UTC))  # Tuesday: no hours
    assert NEW_YORK.is_open(datetime(2026, 3, 2, 14, 0))  # naive means UTC


def test_daylight_saving_time_moves_the_utc_window() -> None:
    summer_monday_8am = datetime(2026, 7, 6, 12, 0, tzinfo=UTC)  # EDT, UTC-4
    assert NEW_YORK.is_open(summer_monday_8am)
    assert not NEW_YORK.is_open(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))  # EST 7:00


def test_holidays_close_the_whole_local_day() -> None:
    holiday_monday = datetime(2026, 12, 28, 15, 0, tzinfo=UTC)
    assert NEW_YORK.is_holiday(holiday_monday) and not NEW_YORK.is_open(holiday_monday)
    assert NEW_YORK.is_holiday(datetime(2026, 12, 29, 4, 59, tzinfo=UTC))  # 23:59 on the 28th in New York
    assert not NEW_YORK.is_holiday(datetime(2026, 12, 29, 5, 0, tzinfo=UTC))


def test_templates_render_variables_and_filters() -> None:
    context = {"contact": {"first_name": "Ana"}, "amount": "1234.5"}
    assert render("Hello {{ contact.first_name }}, you owe {{ amount | money }}.", context) == (
        "Hello Ana, you owe 1,234 dollars and 50 cents."
    )
    assert render("plain text", {}) == "plain text"
    assert spell("AB12") == "A B 1 2" and spoken_date("2026-03-05") == "March 5, 2026"
    assert money("10") == "10 dollars"
    assert reference_code("call-1") == reference_code("call-1") != reference_code("call-2")


def test_set_values_keep_their_type() -> None:
    assert value_of("{{ attempts + 1 }}", {"attempts": 1}) == 2
    assert value_of("{{ a }}-{{ b }}", {"a": 1, "b": 2}) == "1-2"
    assert value_of(5, {}) == 5


def test_sandbox_blocks_python_internals_without_ending_the_call() -> None:
    assert render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}) == ""
    assert evaluate("().__class__.__bases__[0].__subclasses__()", {}) is None
    assert render("{{ 1 / 0 }}", {}) == ""
    assert evaluate("missing > 3", {}) is None
