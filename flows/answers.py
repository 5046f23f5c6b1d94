"""What an utterance means at a question: a step intent, a global intent, a slot value or
free text for ``other``; decided by score so a caller saying "agent" while giving a free-text
reason still reaches a person, but "no" at a yes/no question stays an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flows import slots
from flows.model import Ask, Flow, Intent

SLOT_SCORE = 0.9
FALLBACK_SCORE = 0.5


@dataclass(frozen=True)
class Answer:
    """One interpreted turn; ``label`` is how to read it back in a confirmation."""

    kind: str  # intent | global | slot | other
    value: Any = None
    intent: Intent | None = None
    label: str = ""


def interpret(flow: Flow, step: str, text: str, today: date) -> Answer | None:
    """The best reading of ``text`` at ``step`` (an ask step), or ``None`` for a no-match."""
    ask = flow.steps[step].ask
    assert ask is not None
    match = flow.matchers[step].match(text)
    candidate: Answer | None = None
    score = 0.0
    if ask.slot is not None:
        value = slots.parse_speech(ask.slot, text, today)
        if value is not None:
            score = FALLBACK_SCORE if ask.slot.type == "text" else SLOT_SCORE
            candidate = Answer("slot", value, label=slots.describe(ask.slot, value))
    if match is not None and (match.score > score or (match.score == score and not match.is_global)):
        intent = match.intent
        label = intent.label or (intent.phrases[0] if intent.phrases else intent.name)
        return Answer("global" if match.is_global else "intent", intent.name, intent, label)
    if candidate is None and ask.other:
        return Answer("other", text, label=text)
    return candidate


def answer_target(ask: Ask, answer: Answer) -> str:
    """The step an answer to ``ask`` leads to ("" for repeat and help, which stay)."""
    if answer.kind in ("intent", "global") and answer.intent is not None:
        return answer.intent.goto
    if answer.kind == "other":
        return ask.other
    if ask.yes and ask.no and isinstance(answer.value, bool):
        return ask.yes if answer.value else ask.no
    return ask.next
