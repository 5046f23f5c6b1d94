"""What keys (DTMF) mean at a question: pure functions the session calls per key.

Every question accepts keys. Intents answer to their ``dtmf`` key and ``yes_no`` to 1 (yes) and
2 (no). In ``digits``, ``number``, ``date``, ``time`` and ``currency`` slots the digits are data
(``*`` is the decimal point for amounts): they are collected until the slot has its most keys,
``#`` or a pause (the session's ``NoInput`` while keys are pending) ends the entry. Global keys
that are not data (``*`` repeat) stay active, before the first data key.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows import slots
from flows.answers import Answer
from flows.model import Flow, Intent

YES_KEY = "1"
NO_KEY = "2"


@dataclass(frozen=True)
class KeyRead:
    """After one key: the data keys collected so far, or a complete answer, or a no-match."""

    digits: str = ""
    answer: Answer | None = None
    no_match: bool = False


def active_globals(flow: Flow, step: str) -> tuple[Intent, ...]:
    """The global intents the question at ``step`` listens for."""
    ask = flow.steps[step].ask
    allowed = None if ask is None else ask.globals
    return tuple(g for g in flow.globals if allowed is None or g.name in allowed)


def global_for_key(flow: Flow, step: str, digit: str) -> Answer | None:
    """The active global intent keyed with ``digit``, as an answer."""
    for intent in active_globals(flow, step):
        if intent.dtmf == digit:
            return Answer("global", intent.name, intent, intent.label)
    return None


def read_key(flow: Flow, step: str, digits: str, digit: str) -> KeyRead:
    """One key at the question of ``step``; ``digits`` are the data keys collected before it."""
    ask = flow.steps[step].ask
    assert ask is not None
    slot = ask.slot
    if slot is not None and slot.dtmf_is_data:
        if digit == "#":
            return finish_keys(flow, step, digits)
        if digit.isdigit() or (digit == "*" and slot.type == "currency"):
            digits += digit
            if len(digits) >= flow.listens[step].dtmf.max_digits:
                return finish_keys(flow, step, digits)
            return KeyRead(digits)
        answer = None if digits else global_for_key(flow, step, digit)
        return KeyRead(answer=answer, no_match=answer is None)
    for intent in ask.intents:
        if intent.dtmf == digit:
            return KeyRead(answer=Answer("intent", intent.name, intent, intent.label or intent.name))
    answer = global_for_key(flow, step, digit)
    if answer is None and slot is not None and slot.type == "yes_no" and digit in (YES_KEY, NO_KEY):
        answer = Answer("slot", digit == YES_KEY, label="yes" if digit == YES_KEY else "no")
    return KeyRead(answer=answer, no_match=answer is None)


def finish_keys(flow: Flow, step: str, digits: str) -> KeyRead:
    """The data keys of ``step``'s slot are complete (full length, ``#`` or a pause)."""
    ask = flow.steps[step].ask
    assert ask is not None and ask.slot is not None
    value = slots.parse_keys(ask.slot, digits) if digits else None
    if value is None:
        return KeyRead(no_match=True)
    return KeyRead(answer=Answer("slot", value, label=slots.describe(ask.slot, value)))
