"""Prompt templates and conditions in a jinja2 sandbox.

Admins write ``Hello {{ contact.first_name }}`` and ``if: balance > 100``; the sandbox keeps
a flow file from reaching Python internals, and :mod:`flows.template_limits` bounds what a
template may build and how long it may run. Compiled templates are cached per source text,
so a turn costs a dictionary look-up plus rendering. A template that fails at run time
renders as empty text (a condition as false) and is logged without its values: a bad
contact row must not drop the call. A template past its limits raises
:class:`~flows.errors.TemplateLimitError` instead: the session ends the call politely.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes

from config.logs import log_event
from flows.errors import TemplateLimitError
from flows.template_limits import MAX_PROMPT_CHARS, LimitedSandbox, budget, check_size, join_bounded

_LOGGER = logging.getLogger("ivr.flows")
_SINGLE_EXPR = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Names every template may use without declaring them (runtime globals and call data).
BUILTIN_NAMES = frozenset(
    {
        "now",
        "today",
        "is_open",
        "is_holiday",
        "reference_code",
        "heard",
        "last_intent",
        "outcome",
        "contact",
        "caller",
        "call",
    }
)


def spell(value: object) -> str:
    """``AB12`` -> ``A B 1 2``: read codes and numbers character by character."""
    return " ".join(ch for ch in str(value) if not ch.isspace())


def spoken_date(value: object) -> str:
    """``2026-03-05`` -> ``March 5, 2026`` (dates and ISO strings; anything else unchanged)."""
    day: date | None = (
        value.date() if isinstance(value, datetime) else value if isinstance(value, date) else None
    )
    if day is None:
        try:
            day = date.fromisoformat(str(value)[:10])
        except ValueError:
            return str(value)
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


def spoken_time(value: object) -> str:
    """``15:30`` -> ``3:30 PM``."""
    match = re.match(r"^(\d{1,2}):(\d{2})", str(value))
    if not match:
        return str(value)
    hour, minute = int(match.group(1)), int(match.group(2))
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12} {suffix}" if minute == 0 else f"{hour12}:{minute:02d} {suffix}"


def money(value: object, currency: str = "dollars") -> str:
    """``1234.5`` -> ``1,234 dollars and 50 cents``."""
    try:
        cents = round(float(str(value).replace(",", "")) * 100)
    except ValueError:
        return str(value)
    whole, frac = divmod(cents, 100)
    text = f"{whole:,} {currency}"
    return f"{text} and {frac} cents" if frac else text


def reference_code(seed: object, length: int = 6) -> str:
    """A stable reference a caller can write down, derived from ``seed`` (e.g. the call id)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    digest = hashlib.sha256(str(seed).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[: max(1, min(length, 16))])


def _make_env() -> LimitedSandbox:
    env = LimitedSandbox(autoescape=False, keep_trailing_newline=False)
    env.filters.update(
        {"spell": spell, "spoken_date": spoken_date, "spoken_time": spoken_time, "money": money}
    )
    env.limit_filters()
    env.globals.update({"reference_code": reference_code})
    return env


ENV = _make_env()


@lru_cache(maxsize=4096)
def _template(text: str) -> jinja2.Template:
    return ENV.from_string(text)


@lru_cache(maxsize=4096)
def _expression(text: str) -> Callable[..., Any]:
    return ENV.compile_expression(text)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def single_expression(text: str) -> str | None:
    """The expression inside ``{{ ... }}`` when that is the whole text (for typed ``set`` values)."""
    match = _SINGLE_EXPR.match(text)
    if match is None or "{{" in match.group(1) or "}}" in match.group(1):
        return None
    return match.group(1).strip()


def referenced_names(text: str, expression: bool = False) -> tuple[set[str], list[tuple[str, str]]]:
    """Top-level names a template reads, and ``(name, attribute)`` pairs like ``contact.first_name``.

    Raises ``jinja2.TemplateSyntaxError`` for text that does not parse.
    """
    tree = ENV.parse("{{ (" + text + ") }}" if expression else text)
    names = set(meta.find_undeclared_variables(tree))
    attrs: list[tuple[str, str]] = []
    for node in _walk(tree):
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            attrs.append((node.node.name, node.attr))
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.node, nodes.Name)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            attrs.append((node.node.name, node.arg.value))
    return names, attrs


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render a prompt; plain text (no ``{{``) is returned as is without touching jinja2.

    Raises :class:`TemplateLimitError` when the template passes a limit; any other failure
    renders empty text.
    """
    if not is_template(text):
        return text
    try:
        with budget():
            output = join_bounded(_template(text).generate(context), MAX_PROMPT_CHARS)
        return " ".join(output.split())
    except TemplateLimitError as exc:
        log_event("flow_template_over_limit", logging.ERROR, _LOGGER, error=str(exc))
        raise
    except Exception as exc:  # a broken template must not end the call
        log_event("flow_template_failed", logging.WARNING, _LOGGER, error=type(exc).__name__)
        return ""


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a condition or ``set`` expression; failure gives ``None`` (falsy).

    Raises :class:`TemplateLimitError` when the expression passes a limit.
    """
    try:
        with budget():
            value = check_size(_expression(expression)(**context), "the expression's value")
    except TemplateLimitError as exc:
        log_event("flow_expression_over_limit", logging.ERROR, _LOGGER, error=str(exc))
        raise
    except Exception as exc:  # a broken expression must not end the call
        log_event("flow_expression_failed", logging.WARNING, _LOGGER, error=type(exc).__name__)
        return None
    return None if isinstance(value, jinja2.Undefined) else value


def limit_problem(text: str, expression: bool, variables: Mapping[str, Any]) -> str | None:
    """Why ``text`` passes a limit when run on sample data (declared variables, empty call
    data), or ``None``. Other failures are left to run time: real data may differ.
    """
    context = {
        "contact": {},
        "caller": {},
        "call": {"id": "sample-call"},
        "heard": "",
        "last_intent": "",
        "outcome": "",
        **variables,
        "now": _SAMPLE_NOW,
        "today": _SAMPLE_NOW.date().isoformat(),
        "is_open": lambda _name: True,
        "is_holiday": lambda _name: False,
    }
    try:
        if expression:
            with budget():
                check_size(_expression(text)(**context), "the expression's value")
        else:
            with budget():
                join_bounded(_template(text).generate(context), MAX_PROMPT_CHARS)
    except TemplateLimitError as exc:
        return str(exc)
    except Exception:  # data-dependent failures are not a limit problem
        return None
    return None


_SAMPLE_NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def value_of(raw: Any, context: Mapping[str, Any]) -> Any:
    """A ``set`` value: non-text as is, ``{{ expr }}`` typed, other templates as text."""
    if not isinstance(raw, str):
        return raw
    expr = single_expression(raw)
    if expr is not None:
        return evaluate(expr, context)
    return render(raw, context)
