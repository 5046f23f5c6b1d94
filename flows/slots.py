"""Built-in slot types: turn what the caller said or keyed into a typed value.

Values are stored as plain data a template, an export and JSON all understand: ``bool`` for
yes/no, ``str`` of digits, ``int`` numbers, ``"120.50"`` amounts, ``"YYYY-MM-DD"`` dates,
``"HH:MM"`` times and the transcript for free text.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from flows.model import Slot
from flows.spoken import ORDINALS, TENS, UNITS, digit_string, find_number, number_value, tokens
from flows.templates import spoken_date, spoken_time

YES_WORDS = frozenset(
    {
        "yes",
        "yeah",
        "yep",
        "yup",
        "correct",
        "right",
        "sure",
        "ok",
        "okay",
        "affirmative",
        "absolutely",
        "certainly",
        "indeed",
        "confirm",
        "true",
        "agree",
    }
)
NO_WORDS = frozenset(
    {
        "no",
        "nope",
        "nah",
        "not",
        "dont",
        "wrong",
        "incorrect",
        "negative",
        "never",
        "isnt",
        "decline",
        "false",
    }
)
YES_NO_PHRASES = ("yes", "yeah", "correct", "that's right", "no", "nope", "not really", "that's wrong")
_MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DTMF_FORMATS = {"MMDDYYYY": (0, 2, 4), "DDMMYYYY": (2, 0, 4), "YYYYMMDD": (4, 6, 0)}
DTMF_FORMATS = tuple(_DTMF_FORMATS)


def _words(text: str) -> list[str]:
    return tokens(text.replace("'", ""))


def parse_yes_no(text: str) -> bool | None:
    """``True``/``False``, or ``None`` when it is neither, unsure, or both ("yes... not really")."""
    words = set(_words(text))
    strong_yes = words & {"yes", "yeah", "yep", "yup", "absolutely", "certainly"}
    negative = words & NO_WORDS
    if ({"not", "sure"} <= words or {"dont", "know"} <= words) and not words & {"no", "nope"}:
        return None
    if negative:
        return None if strong_yes else False
    return True if words & YES_WORDS else None


def parse_digits(slot: Slot, text: str) -> str | None:
    digits = digit_string(text)
    return digits if digits is not None and _length_ok(slot, digits) else None


def _length_ok(slot: Slot, digits: str) -> bool:
    if slot.length:
        return len(digits) == slot.length
    return len(digits) >= slot.min_length and (not slot.max_length or len(digits) <= slot.max_length)


def parse_currency(text: str) -> str | None:
    """``"$120.50"``, ``"120 dollars and 50 cents"``, ``"one hundred twenty"`` -> ``"120.50"``."""
    words = _words(text)
    unit = next((w for w in ("dollars", "dollar", "bucks") if w in words), None)
    if unit is not None:
        cut = words.index(unit)
        whole_value = number_value([w for w in words[:cut] if w != "and"]) if cut else None
        rest = [w for w in words[cut + 1 :] if w not in ("and", "cents", "cent")]
        cent_value = number_value(rest) if rest else 0
        if whole_value is None or cent_value is None or not 0 <= cent_value < 100:
            return None
        return f"{whole_value}.{cent_value:02d}"
    match = re.search(r"(\d[\d,]*)\.(\d{1,2})\b", text)
    if match:
        return f"{int(match.group(1).replace(',', ''))}.{int(match.group(2).ljust(2, '0')):02d}"
    value = find_number(text)
    return None if value is None else f"{value}.00"


def parse_date(text: str, today: date) -> str | None:
    """ISO ``2026-03-05``, ``March 5th 2026``, ``the fifth of March``, ``tomorrow``, ``Monday``."""
    iso = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", text)
    if iso:
        return _iso(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    words = _words(text)
    if "today" in words:
        return today.isoformat()
    if "tomorrow" in words:
        return (today + timedelta(days=1)).isoformat()
    for index, name in enumerate(_WEEKDAYS):
        if name in words:
            ahead = (index - today.weekday()) % 7 or 7
            return (today + timedelta(days=ahead)).isoformat()
    month = next((i + 1 for i, name in enumerate(_MONTH_NAMES) if name in words), None)
    if month is None:
        return None
    position = words.index(_MONTH_NAMES[month - 1])
    before, after = words[:position], words[position + 1 :]
    day = _day(before)[0]
    if day is None:
        day, after = _day(after)
    if day is None:
        return None
    year_words = [w for w in after if w.isdigit() or w in UNITS or w in TENS or w in ("thousand", "and")]
    year = number_value(year_words) if year_words else None
    if year is None:
        year = today.year if (month, day) >= (today.month, today.day) else today.year + 1
    return _iso(year, month, day)


def _day(words: list[str]) -> tuple[int | None, list[str]]:
    """A day of the month at the start (after "the"): ``twenty first`` / ``21`` / ``fifth``."""
    words = [w for w in words if w not in ("the", "of", "on")]
    if not words:
        return None, words
    first = words[0]
    if first.isdigit() and 1 <= int(first) <= 31:
        return int(first), words[1:]
    if first in TENS and len(words) > 1 and words[1] in ORDINALS and ORDINALS[words[1]] < 10:
        return TENS[first] + ORDINALS[words[1]], words[2:]
    if first in ORDINALS:
        return ORDINALS[first], words[1:]
    if first in UNITS and 1 <= UNITS[first] <= 31:
        return UNITS[first], words[1:]
    return None, words


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_time(text: str) -> str | None:
    """``3 pm``, ``three thirty in the afternoon``, ``15:30``, ``noon`` -> ``"HH:MM"``."""
    words = _words(text)
    if "noon" in words or "midday" in words:
        return "12:00"
    clock = re.search(r"\b(\d{1,2})(?::(\d{2}))?\b", text)
    hour: int | None
    minute = 0
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2) or 0)
    else:
        numbers = [w for w in words if w in UNITS or w in TENS]
        if not numbers:
            return None
        hour = UNITS.get(numbers[0])
        if hour is None:
            return None
        rest = numbers[1:]
        minute = (number_value(rest) or 0) if rest else 0
        if "half" in words and "past" in words:
            minute = 30
    afternoon = bool({"pm", "afternoon", "evening", "tonight"} & set(words)) or "p" in words
    if afternoon and hour < 12:
        hour += 12
    if ("am" in words or "morning" in words) and hour == 12:
        hour = 0
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return f"{hour:02d}:{minute:02d}"


def parse_speech(slot: Slot, text: str, today: date) -> Any:
    """The slot value in an utterance, or ``None`` if it holds none."""
    if slot.type == "yes_no":
        return parse_yes_no(text)
    if slot.type == "digits":
        return parse_digits(slot, text)
    if slot.type == "number":
        return find_number(text)
    if slot.type == "currency":
        return parse_currency(text)
    if slot.type == "date":
        return parse_date(text, today)
    if slot.type == "time":
        return parse_time(text)
    return text.strip() or None


def parse_keys(slot: Slot, keys: str) -> Any:
    """The slot value in keyed digits (``*`` is the decimal point for amounts), or ``None``."""
    if slot.type == "yes_no":
        return {"1": True, "2": False}.get(keys)
    if slot.type == "currency":
        whole, _, cents = keys.partition("*")
        if not whole.isdigit() or (cents and not (cents.isdigit() and len(cents) <= 2)):
            return None
        return f"{int(whole)}.{int(cents.ljust(2, '0')) if cents else 0:02d}"
    if not keys.isdigit():
        return None
    if slot.type == "digits":
        return keys if _length_ok(slot, keys) else None
    if slot.type == "number":
        return int(keys)
    if slot.type == "date":
        if len(keys) != 8:
            return None
        m, d, y = _DTMF_FORMATS[slot.dtmf_format]
        return _iso(int(keys[y : y + 4]), int(keys[m : m + 2]), int(keys[d : d + 2]))
    if slot.type == "time":
        if len(keys) != 4:
            return None
        hour, minute = int(keys[:2]), int(keys[2:])
        return f"{hour:02d}:{minute:02d}" if hour <= 23 and minute <= 59 else None
    return None


def max_keys(slot: Slot) -> int:
    """How many keys complete this slot without waiting for ``#`` or a pause."""
    return {"yes_no": 1, "date": 8, "time": 4, "number": 12, "currency": 10, "text": 1}.get(
        slot.type, slot.length or slot.max_length or 20
    )


def describe(slot: Slot, value: Any) -> str:
    """How to read a value back to the caller in a confirmation."""
    if slot.type == "yes_no":
        return "yes" if value else "no"
    if slot.type == "digits":
        return " ".join(str(value))
    if slot.type == "currency":
        whole, _, cents = str(value).partition(".")
        return f"{whole} dollars" + (f" and {int(cents)} cents" if cents and int(cents) else "")
    if slot.type == "date":
        return spoken_date(value)
    if slot.type == "time":
        return spoken_time(value)
    return str(value)


def phrases(slot: Slot) -> tuple[str, ...]:
    """What a grammar-mode recognizer should expect for this slot (empty: decode freely)."""
    return YES_NO_PHRASES if slot.type == "yes_no" else ()
