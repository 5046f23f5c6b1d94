"""Numbers as callers say them, after the recognizer wrote them down.

Recognizers return ``"one two three four"``, ``"1234"``, ``"twelve thirty four"`` or
``"one hundred and twenty"`` for the same intent; these helpers turn all of them into digits.
"""

from __future__ import annotations

import re

UNITS = {
    "zero": 0,
    "oh": 0,
    "o": 0,
    "nought": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
_REPEAT = {"double": 2, "triple": 3}
_TOKEN = re.compile(r"[a-z]+|\d+")


def tokens(text: str) -> list[str]:
    """Lower-case words and digit runs; ``1,250`` stays one number, ``21st`` becomes ``21``."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower())
    text = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", text)
    return _TOKEN.findall(text)


def digit_string(text: str) -> str | None:
    """Every digit the caller said, in order: ``"four oh double two"`` -> ``"4022"``.

    Words that are not numbers (``"my pin is"``) are skipped; ``None`` if there were no digits.
    """
    out: list[str] = []
    repeat = 1
    pending_tens: int | None = None
    for tok in tokens(text):
        if tok.isdigit():
            if pending_tens is not None:
                out.append(str(pending_tens))
                pending_tens = None
            out.append(tok * repeat)
            repeat = 1
        elif tok in _REPEAT:
            repeat = _REPEAT[tok]
        elif tok in TENS:
            if pending_tens is not None:
                out.append(str(pending_tens))
            pending_tens = TENS[tok]
        elif tok in UNITS:
            value = UNITS[tok]
            if pending_tens is not None and 0 < value < 10:
                out.append(str(pending_tens + value))
            else:
                if pending_tens is not None:
                    out.append(str(pending_tens))
                out.append(str(value) * repeat)
            pending_tens = None
            repeat = 1
    if pending_tens is not None:
        out.append(str(pending_tens))
    return "".join(out) or None


def number_value(words: list[str]) -> int | None:
    """A cardinal number from words/digits: ``["one", "hundred", "and", "five"]`` -> ``105``.

    Without a scale word the groups are read one after another, as callers say codes and
    years: ``twelve thirty four`` -> 1234, ``nineteen eighty five`` -> 1985.
    """
    if not any(tok in SCALES for tok in words):
        digits = digit_string(" ".join(words))
        return int(digits) if digits else None
    total = 0
    current = 0
    for tok in words:
        if tok.isdigit():
            current += int(tok)
        elif tok in UNITS:
            current += UNITS[tok]
        elif tok in TENS:
            current += TENS[tok]
        elif tok == "hundred":
            current = (current or 1) * 100
        elif tok in SCALES:
            total += (current or 1) * SCALES[tok]
            current = 0
        elif tok != "and":
            return None
    return total + current


def find_number(text: str) -> int | None:
    """The first run of number words in ``text`` as one value (``"about 250 please"`` -> 250)."""
    run: list[str] = []
    for tok in tokens(text):
        if (
            tok.isdigit()
            or tok in UNITS
            or tok in TENS
            or tok in SCALES
            or tok in _REPEAT
            or (tok == "and" and run)
        ):
            run.append(tok)
        elif run:
            break
    while run and run[-1] == "and":
        run.pop()
    return number_value(run) if run else None
