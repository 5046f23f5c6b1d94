"""Reading typed values out of marked YAML, reporting every problem instead of stopping.

The readers return a usable default after reporting, so one pass finds every problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flows.durations import DurationError, parse_duration
from flows.errors import Problem
from flows.yaml_source import MarkedDict, MarkedList, Pos

MAX_DURATION_S = 86_400.0


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class Reader:
    """Problem collector for one file, with typed getters over :class:`MarkedDict`."""

    file: str
    problems: list[Problem] = field(default_factory=list)

    def report(self, pos: Pos, message: str) -> None:
        self.problems.append(Problem(self.file, pos[0], pos[1], message))

    def check_keys(self, data: MarkedDict, allowed: Iterable[str], where: str) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                self.report(data.where_key(key), f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}")

    def mapping(self, data: MarkedDict, key: str, where: str) -> MarkedDict | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, MarkedDict):
            self.report(data.where_value(key), f"{where}.{key}: expected a mapping, got {_kind(value)}")
            return None
        return value

    def text(self, data: MarkedDict, key: str, where: str, default: str = "") -> str:
        value = data.get(key, default)
        if value is None:
            return default
        if isinstance(value, date):  # an unquoted 2026-03-05 is a date to YAML; keep the text
            return value.isoformat()
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.report(data.where_value(key), f"{where}.{key}: expected text, got {_kind(value)}")
            return default
        return str(value)

    def texts(self, data: MarkedDict, key: str, where: str) -> tuple[str, ...]:
        """Text or a list of texts; each item checked."""
        value = data.get(key)
        if value is None:
            return ()
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return (str(value),)
        if not isinstance(value, MarkedList):
            self.report(data.where_value(key), f"{where}.{key}: expected text or a list of texts")
            return ()
        out: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.report(value.where(index), f"{where}.{key}[{index}]: expected text, got {_kind(item)}")
            else:
                out.append(str(item))
        return tuple(out)

    def boolean(self, data: MarkedDict, key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.report(data.where_value(key), f"{where}.{key}: expected true or false, got {_short(value)}")
            return default
        return value

    def integer(
        self, data: MarkedDict, key: str, where: str, default: int, low: int = 0, *, high: int = 10_000
    ) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.report(
                data.where_value(key),
                f"{where}.{key}: expected a whole number from {low} to {high:,}, got {_short(value)}",
            )
            return default
        return value

    def fraction(self, data: MarkedDict, key: str, where: str, default: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            self.report(
                data.where_value(key), f"{where}.{key}: expected a number from 0 to 1, got {_short(value)}"
            )
            return default
        return float(value)

    def duration(self, data: MarkedDict, key: str, where: str, default: float) -> float:
        if key not in data:
            return default
        try:
            seconds = parse_duration(data[key])
        except DurationError as exc:
            self.report(data.where_value(key), f"{where}.{key}: {exc}")
            return default
        if seconds > MAX_DURATION_S:
            self.report(data.where_value(key), f"{where}.{key}: {_short(data[key])} is longer than 24h")
            return default
        return seconds

    def choice(self, data: MarkedDict, key: str, where: str, choices: tuple[str, ...], default: str) -> str:
        value = data.get(key, default)
        if value not in choices:
            hint = did_you_mean(str(value)[:100], choices)
            self.report(
                data.where_value(key),
                f"{where}.{key}: {_short(value)} is not one of {', '.join(choices)}{hint}",
            )
            return default
        return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    return f"{type(value).__name__} {_short(value)}"


def _short(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: a message quotes a value, it does not reprint it."""
    big = isinstance(value, int) and value.bit_length() > 128
    text = f"a {value.bit_length()}-bit number" if big else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
