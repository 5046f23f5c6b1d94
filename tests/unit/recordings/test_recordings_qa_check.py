"""Judging one call (``evaluate``): the score and the call's verdict, the result's JSON, a mapping
that is not a sidecar refused; and the constructed calls (:class:`Script`) the other QA tests use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recordings.qa_check import QaResult, RuleResult, evaluate
from recordings.qa_rules import RuleSet
from recordings.qa_rules_loader import load_rules, parse_rules
from recordings.qa_transcript import QaInputError
from recordings.sidecar import Pause, Sidecar, Turn

ROOT = Path(__file__).resolve().parents[3]
COMPLIANCE_RULES = ROOT / "flows" / "library" / "qa" / "compliance_callback.yaml"
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
DISCLOSURE = (
    "Before your purchase can take effect, I must read you the risk disclosure for Acme Private Equity "
    "Fund III. Please listen carefully.",
    "Private funds carry a high level of risk. The value of your investment can go down as well as up, "
    "and you may lose some or all of the money you invest.",
    "Private funds are not easy to sell. You may not be able to withdraw your money for several years, "
    "and there may be fees if you do.",
    "Past performance is not a guide to future returns, and this investment is not covered by a deposit "
    "guarantee scheme.",
)
ACK_QUESTION = (
    "Do you confirm that you have heard and understood this risk disclosure, and that you want your "
    "purchase to go ahead?"
)
SECONDS_PER_WORD = 0.39  # the flow's 155 words a minute


@dataclass
class Script:
    """A call built turn by turn on a running clock, like the call core writes it."""

    flow: str = "compliance_callback"
    outcome: str = ""
    now: float = 0.0
    turns: list[dict[str, Any]] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)

    def bot(self, text: str, seconds: float | None = None, **mark: Any) -> dict[str, Any]:
        length = len(text.split()) * SECONDS_PER_WORD if seconds is None else seconds
        turn = {
            "speaker": "bot",
            "text": text,
            "start_s": self.now,
            "end_s": self.now + length,
            "confidence": None,
            **mark,
        }
        self.turns.append(turn)
        self.now += length + 0.3
        return turn

    def caller(self, text: str, seconds: float = 1.0, at: float | None = None) -> dict[str, Any]:
        start = self.now if at is None else at
        turn = {
            "speaker": "caller",
            "text": text,
            "start_s": start,
            "end_s": start + seconds,
            "confidence": 0.9,
        }
        self.turns.append(turn)
        if at is None:
            self.now = start + seconds + 0.5
        return turn

    def silence(self, seconds: float) -> None:
        self.now += seconds

    def data(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "call_id": "c1",
            "status": "complete",
            "direction": "outbound",
            "flow": {"name": self.flow, "version": "1.0"},
            "outcome": self.outcome,
            "started_at": "2024-05-01T09:30:00.000Z",
            "duration_s": self.now,
            "turns": self.turns,
            "pauses": [{"start_s": p.start_s, "end_s": p.end_s, "reason": p.reason} for p in self.pauses],
        }

    def sidecar(self) -> Sidecar:
        return Sidecar(
            call_id="c1",
            direction="outbound",
            from_masked="+49*****",
            to_masked="+49*****",
            started_at=T0,
            wav_name="c1.wav",
            status="complete",
            duration_s=self.now,
            flow_name=self.flow,
            flow_version="1.0",
            outcome=self.outcome,
            pauses=tuple(self.pauses),
            turns=tuple(
                Turn(t["speaker"], t["text"], t["start_s"], t["end_s"], t["confidence"]) for t in self.turns
            ),
        )


def compliance_call(*, answer: str = "yes", outcome: str = "confirmed", disclosure: bool = True) -> Script:
    """The compliance callback up to the disclosure; the caller of :func:`read_disclosure` goes on."""
    s = Script(outcome=outcome)
    s.bot(
        "Hello, this is an automated call from Acme Wealth about your recent investment. "
        "This call is recorded."
    )
    s.bot("Am I speaking with Jane Doe?")
    s.caller("yes")
    s.bot("Before we go on, I need to confirm your identity. Please tell me your date of birth.")
    s.caller("the fourth of july nineteen eighty", 2.0)
    s.bot(
        "Thank you. Our records show that on the first of May you bought Acme Private Equity Fund III for "
        "ten thousand dollars. Is that correct?"
    )
    s.caller("yes")
    if disclosure:
        read_disclosure(s)
        s.bot(ACK_QUESTION)
        s.caller(answer)
    s.bot("Thank you, Jane. Your purchase is confirmed and will now take effect. Goodbye.")
    return s


def read_disclosure(s: Script) -> list[dict[str, Any]]:
    return [s.bot(text) for text in DISCLOSURE]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(COMPLIANCE_RULES)


def result_of(result: QaResult, rule_id: str) -> RuleResult:
    return next(r for r in result.results if r.rule_id == rule_id)


# -- scoring ----------------------------------------------------------------------------------


SCORED = """
qa: {name: scored, pass_score: 70}
rules:
  - {id: heavy, kind: forbidden_phrases, speaker: bot, phrases: [alpha], weight: 3}
  - {id: light, kind: forbidden_phrases, speaker: bot, phrases: [beta]}
  - {id: caller_side, kind: forbidden_phrases, speaker: caller, phrases: [gamma]}
  - {id: vital, kind: forbidden_phrases, speaker: bot, phrases: [delta], critical: true, weight: 0.5}
"""


@pytest.mark.parametrize(
    ("bot", "caller", "status", "score"),
    [
        ("hello", "hi", "pass", 100.0),
        ("beta", "hi", "pass", 81.8),  # 4.5 of 5.5 weights passed, over 70
        ("alpha", "hi", "fail", 45.5),  # misses pass_score 70
        ("delta", "hi", "fail", 90.9),  # a critical rule failed, whatever the score
        ("hello", None, "pass", 100.0),  # caller_side unknown, but 4.5 of 5.5 passes anyway
        ("beta", None, "incomplete", 77.8),  # 3.5 of 4.5 judged; 3.5 of 5.5 if caller_side failed
        ("alpha", None, "fail", 33.3),  # 2.5 of 5.5 even if caller_side passed
    ],
)
def test_score_pass_fail_and_incomplete(bot: str, caller: str | None, status: str, score: float) -> None:
    s = Script(flow="any")
    s.bot(bot)
    if caller is not None:
        s.caller(caller)
    result = evaluate(parse_rules(SCORED, "scored.yaml"), s.data())
    assert (result.status, result.score) == (status, score)


def test_nothing_to_judge_is_a_pass_and_nothing_evaluable_has_no_score() -> None:
    rules = parse_rules(
        "qa: {name: r}\nrules:\n  - {id: c, kind: forbidden_phrases, speaker: caller, "
        "phrases: [x], critical: true}\n",
        "r.yaml",
    )
    empty = evaluate(rules, Script(flow="any").data())
    assert (empty.status, empty.score) == ("incomplete", None)
    only_when = parse_rules(
        "qa: {name: r}\nrules:\n  - {id: c, kind: no_match, max: 0, when: {outcome: confirmed}}\n", "r.yaml"
    )
    assert (evaluate(only_when, Script(flow="any").data()).score) == 100.0


def test_the_result_serializes_with_every_rule_and_its_position(rules: RuleSet) -> None:
    document = evaluate(rules, compliance_call(answer="no").data()).to_json()
    assert document["qa_schema"] == 1 and document["status"] == "fail" and document["passed"] is False
    failed = [r for r in document["results"] if r["status"] == "fail"]
    assert [r["rule"] for r in failed] == ["disclosure_acknowledged", "confirmed_needs_yes_after_disclosure"]
    line = COMPLIANCE_RULES.read_text().splitlines().index("  - id: disclosure_acknowledged") + 1
    assert failed[0]["where"].endswith(f"flows/library/qa/compliance_callback.yaml:{line}:5")
    assert all({"start_s", "end_s"} <= set(span) for r in failed for span in r["at"])


def test_a_mapping_that_is_not_a_sidecar_is_refused(rules: RuleSet) -> None:
    with pytest.raises(QaInputError, match=r"turns\[0\].start_s: expected a number"):
        evaluate(rules, {"turns": [{"speaker": "bot", "text": "hi", "start_s": "soon", "end_s": 1}]})
    with pytest.raises(QaInputError, match="turns: expected a list"):
        evaluate(rules, {"turns": "none"})
