"""Reading an intake request: bytes to a JSON object of known fields, or the answer saying why not.

Only the JSON shape is judged here (types, lengths, Unicode, unknown fields), and every
problem is listed at once so a sender fixes them in one go. The values themselves (the
number, the time zone, ``cooling_off_end``) are judged later by the importer's own row checks
with the campaign's rules (:mod:`dialer.intake`), so a request and a call-list row can never
disagree. The fields are described in docs/intake.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dialer.call_list_csv import MAX_COLUMN_NAME, control_character
from dialer.importer import STANDARD_COLUMNS
from dialer.intake_answers import IntakeAnswer, IntakeStatus, Problem, answer, invalid, label

REQUEST_FIELDS = (*STANDARD_COLUMNS, "fields", "request_id")
MAX_TEXT = 1000
"""Longest text value (a name, a flow variable); the body size limit bounds the whole."""
MAX_FIELDS = 50
MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class IntakeRequest:
    """A request whose JSON shape is right; the row checks come with the campaign."""

    phone: str
    first_name: str = ""
    last_name: str = ""
    timezone: str = ""
    cooling_off_end: str = ""
    priority: int | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    request_id: str | None = None

    def as_row(self) -> tuple[list[str], list[str]]:
        """The request as a call-list header and row, for :class:`dialer.importer.RowParser`."""
        standard = {
            "phone": self.phone,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "timezone": self.timezone,
            "cooling_off_end": self.cooling_off_end,
            "priority": "" if self.priority is None else str(self.priority),
        }
        header = [*STANDARD_COLUMNS, *self.fields]
        values = [standard.get(name, "") for name in STANDARD_COLUMNS] + list(self.fields.values())
        return header, values


class _DuplicateKeyError(ValueError):
    pass


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"the key {label(key)!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_request(body: bytes) -> IntakeRequest | IntakeAnswer:
    """Bytes of a request to an :class:`IntakeRequest`, or the 400/422 answer saying why not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return answer(
            IntakeStatus.MALFORMED, f"the body is not UTF-8 text (byte {exc.start}); nothing stored"
        )
    try:
        data = json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return answer(
            IntakeStatus.MALFORMED,
            f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; nothing stored",
        )
    except RecursionError:
        return answer(
            IntakeStatus.MALFORMED,
            "the body is not JSON this service reads: nested too deeply; nothing stored",
        )
    except ValueError as exc:  # a duplicate key, NaN, an integer of thousands of digits
        return answer(
            IntakeStatus.MALFORMED,
            f"the body is not JSON this service reads: {label(str(exc), 120)}; nothing stored",
        )
    return request_from_json(data)


def request_from_json(data: Any) -> IntakeRequest | IntakeAnswer:
    """A decoded JSON value to an :class:`IntakeRequest`, or the 422 answer listing every problem."""
    if not isinstance(data, dict):
        return IntakeAnswer(
            IntakeStatus.INVALID,
            "the body must be a JSON object; nothing stored",
            (Problem("body", f'expected an object like {{"phone": "+1..."}}, got {_json_type(data)}'),),
        )
    problems: list[Problem] = []
    request_id = _request_id(data.get("request_id"), problems)
    expected = ", ".join(REQUEST_FIELDS)
    problems.extend(
        Problem(label(key), f"unknown field (expected {expected}; flow variables go in 'fields')")
        for key in data
        if key not in REQUEST_FIELDS
    )
    if data.get("phone") is None:
        problems.append(Problem("phone", "missing (required)"))
    texts = {name: _text(data, name, problems) for name in ("phone", "first_name", "last_name", "timezone")}
    cooling_off_end = _text(data, "cooling_off_end", problems)
    priority = _priority(data.get("priority"), problems)
    fields = _fields(data.get("fields"), problems)
    if problems:
        return invalid(problems, request_id)
    return IntakeRequest(
        phone=texts["phone"],
        first_name=texts["first_name"],
        last_name=texts["last_name"],
        timezone=texts["timezone"],
        cooling_off_end=cooling_off_end,
        priority=priority,
        fields=fields,
        request_id=request_id,
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def text_problem(value: str, limit: int = MAX_TEXT) -> str:
    """Why a string cannot be taken before the row checks see it (length, broken Unicode), or ``""``."""
    if len(value) > limit:
        return f"is {len(value):,} characters long (at most {limit:,})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid Unicode (a lone surrogate at character {exc.start + 1})"
    return ""


def _string(value: Any, where: str, problems: list[Problem], limit: int = MAX_TEXT) -> str | None:
    """``value`` if it is a string :func:`text_problem` takes; else None, with the problem noted."""
    if not isinstance(value, str):
        problems.append(Problem(where, f"expected a string, got {_json_type(value)}"))
        return None
    if reason := text_problem(value, limit):
        problems.append(Problem(where, reason))
        return None
    return value


def _text(data: Mapping[str, Any], name: str, problems: list[Problem]) -> str:
    value = data.get(name)
    return "" if value is None else _string(value, name, problems) or ""


def _request_id(value: Any, problems: list[Problem]) -> str | None:
    if value is None or (value := _string(value, "request_id", problems, MAX_REQUEST_ID)) is None:
        return None
    reason = (
        "is empty" if not value else control_character(value) or ("contains a tab" if "\t" in value else "")
    )
    if reason:
        problems.append(Problem("request_id", reason))
        return None
    return value


def _priority(value: Any, problems: list[Problem]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        got = "a number with a fraction" if isinstance(value, float) else _json_type(value)
        problems.append(Problem("priority", f"expected an integer, got {got}"))
        return None
    return value


def _fields(value: Any, problems: list[Problem]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem("fields", f"expected an object of names to strings, got {_json_type(value)}"))
        return {}
    if len(value) > MAX_FIELDS:
        problems.append(Problem("fields", f"has {len(value):,} entries (at most {MAX_FIELDS})"))
        return {}
    out: dict[str, str] = {}
    for name, item in value.items():
        where = f"fields.{label(name)}"
        if reason := _field_name_problem(name):
            problems.append(Problem(where, reason))
        elif (text := _string(item, where, problems)) is not None:
            out[name] = text
    return out


def _field_name_problem(name: str) -> str:
    if not name.strip():
        return "a field name is empty"
    if name in REQUEST_FIELDS:
        return f"{name!r} is a request field: send it at the top level"
    if len(name) > MAX_COLUMN_NAME:
        return f"the name is {len(name):,} characters long (at most {MAX_COLUMN_NAME})"
    reason = text_problem(name) or control_character(name)
    return f"the name {reason}" if reason else ""
