"""What the rule checks share while one call is judged: verdicts so far, and where prompts were said.

Rules may depend on each other (an acknowledgement follows a required prompt's last reading, an
outcome rule requires other rules), so :func:`recordings.qa_check.evaluate` judges them in order
into one :class:`Context` that the checks of every family read and write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from recordings.qa_rules import RuleSet
from recordings.qa_transcript import Call, Span, Turn

MAX_LISTED = 10
"""At most this many hits or gaps are quoted in one rule's detail."""
EPSILON = 1e-9
"""Tolerance of comparisons between computed seconds or scores (float rounding)."""

RuleStatus = Literal["pass", "fail", "not_applicable", "not_evaluable"]


@dataclass
class Verdict:
    """How one rule ended for this call, why, and the stretches of the recording that decided it."""

    status: RuleStatus
    detail: str = ""
    spans: list[Span] = field(default_factory=list)


@dataclass(frozen=True)
class Anchor:
    """Where a required prompt was (last) said: what an acknowledgement must follow."""

    position: int
    end_s: float

    @classmethod
    def after(cls, turn: Turn) -> Anchor:
        return cls(turn.position, turn.end_s)


@dataclass
class Context:
    """One call being judged: each rule's verdict once judged, each required prompt's anchor."""

    call: Call
    rules: RuleSet
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    anchors: dict[str, Anchor] = field(default_factory=dict)


def untranscribed(call: Call, *speakers: str) -> Verdict | None:
    """``not_evaluable`` when a track a rule reads has no transcript: the engine does not guess."""
    missing = [speaker for speaker in speakers if not call.has_text(speaker)]
    if not missing:
        return None
    return Verdict("not_evaluable", f"the {' and '.join(missing)} track has no transcript")
