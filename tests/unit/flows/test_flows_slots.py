"""Slot parsing from speech and keys, spoken numbers, durations and intent matching."""

from __future__ import annotations

from datetime import date

import pytest

from flows.durations import DurationError, parse_duration
from flows.matching import PhraseMatcher
from flows.model import Intent, Slot
from flows.slots import describe, parse_keys, parse_speech, parse_yes_no
from flows.spoken import digit_string, find_number

TODAY = date(2026, 3, 2)  # a Monday


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("yes", True),
        ("yeah that's right", True),
        ("correct", True),
        ("no", False),
        ("nope", False),
        ("no that's not right", False),
        ("it is not correct", False),
        ("not really", False),
        ("I'm not sure", None),
        ("I don't know", None),
        ("banana", None),
        ("yes no", None),
    ],
)
def test_yes_no(text: str, want: bool | None) -> None:
    assert parse_yes_no(text) is want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("four three two one", "4321"),
        ("my pin is 4321", "4321"),
        ("four oh double two", "4022"),
        ("twelve thirty four", "1234"),
        ("nothing", None),
    ],
)
def test_digit_strings(text: str, want: str | None) -> None:
    assert digit_string(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("one hundred and twenty", 120),
        ("two thousand and one", 2001),
        ("1,250", 1250),
        ("nineteen eighty five", 1985),
        ("about 250 please", 250),
        ("two hundred fifty thousand", 250000),
    ],
)
def test_numbers(text: str, want: int) -> None:
    assert find_number(text) == want


@pytest.mark.parametrize(
    ("slot", "text", "want"),
    [
        (Slot("digits", length=4), "one two three four", "1234"),
        (Slot("digits", length=4), "one two three", None),
        (Slot("currency"), "$120.50", "120.50"),
        (Slot("currency"), "120 dollars and 50 cents", "120.50"),
        (Slot("currency"), "two hundred and fifty", "250.00"),
        (Slot("date"), "March 5th 2026", "2026-03-05"),
        (Slot("date"), "the fourth of july nineteen eighty", "1980-07-04"),
        (Slot("date"), "tomorrow", "2026-03-03"),
        (Slot("date"), "friday", "2026-03-06"),
        (Slot("date"), "february thirtieth", None),
        (Slot("time"), "3 pm", "15:00"),
        (Slot("time"), "ten thirty in the morning", "10:30"),
        (Slot("time"), "noon", "12:00"),
        (Slot("number"), "forty two", 42),
        (Slot("text"), "  I moved house ", "I moved house"),
    ],
)
def test_speech_values(slot: Slot, text: str, want: object) -> None:
    assert parse_speech(slot, text, TODAY) == want


@pytest.mark.parametrize(
    ("slot", "keys", "want"),
    [
        (Slot("yes_no"), "1", True),
        (Slot("yes_no"), "2", False),
        (Slot("yes_no"), "3", None),
        (Slot("digits", length=4), "0042", "0042"),
        (Slot("digits", length=4), "42", None),
        (Slot("currency"), "60*5", "60.50"),
        (Slot("currency"), "60**5", None),
        (Slot("date"), "07041980", "1980-07-04"),
        (Slot("date", dtmf_format="DDMMYYYY"), "04071980", "1980-07-04"),
        (Slot("date"), "13041980", None),
        (Slot("time"), "1530", "15:30"),
        (Slot("time"), "2560", None),
        (Slot("number"), "123", 123),
    ],
)
def test_key_values(slot: Slot, keys: str, want: object) -> None:
    assert parse_keys(slot, keys) == want


def test_values_are_read_back_naturally() -> None:
    assert describe(Slot("digits"), "1234") == "1 2 3 4"
    assert describe(Slot("currency"), "45.20") == "45 dollars and 20 cents"
    assert describe(Slot("date"), "2026-03-06") == "March 6, 2026"
    assert describe(Slot("time"), "15:30") == "3:30 PM"


@pytest.mark.parametrize(
    ("text", "seconds"), [("6s", 6.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5s", 1.5), (3, 3.0)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["fast", "3 sec", "-5s", "", True, "5s5"])
def test_invalid_durations(text: object) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


def test_phrase_matching_prefers_exact_and_longer_phrases_and_step_over_global() -> None:
    balance = Intent("balance", ("balance", "check my balance"), goto="b")
    card = Intent("card", ("lost card", "my card was stolen"), goto="c")
    agent = Intent("agent", ("agent", "balance"), goto="a")
    matcher = PhraseMatcher((balance, card), (agent,))
    best = matcher.match("uh I want to check my balance please")
    assert best is not None and best.intent.name == "balance" and not best.is_global
    exact = matcher.match("Balance!")
    assert exact is not None and exact.intent.name == "balance" and exact.score == 1.0
    partial = matcher.match("my card got stolen")
    assert partial is not None and partial.intent.name == "card" and partial.score < 0.8
    assert matcher.match("the weather is nice") is None
