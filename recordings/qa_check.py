"""Judging one call against a QA rules file: ``evaluate(rules, sidecar) -> QaResult``.

Pure: no clock, no files. The batch (:mod:`recordings.qa_batch`) feeds it sealed sidecars; the
live path can feed it the sidecar of a call that just ended. Each rule ends as

- ``pass`` / ``fail`` (with the timestamps, in seconds from the start of the recording, of
  the turns or gaps that decide it);
- ``not_applicable``: its ``when:`` does not hold for this call (another outcome, or the bot
  never reached that part of the flow);
- ``not_evaluable``: the transcript the rule needs is missing (no text on that track, or the
  answer was redacted). The engine does not guess: such a call is ``incomplete``, not passed.

The score is the weighted share of evaluated rules that passed (0-100). A call passes when no
critical rule failed and its score reaches the file's ``pass_score`` even if every
not-evaluable rule had failed; it fails when a critical rule failed or the score misses
``pass_score`` even if every not-evaluable rule had passed; otherwise it is ``incomplete``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from recordings.qa_context import EPSILON, Context, RuleStatus, Verdict
from recordings.qa_file import QA_SCHEMA
from recordings.qa_outcome_rules import outcome_consistent
from recordings.qa_prompt_rules import caller_says, required_prompt
from recordings.qa_rules import (
    Acknowledgement,
    ForbiddenPhrases,
    MaxSilence,
    NoMatch,
    OutcomeConsistent,
    RequiredPrompt,
    Rule,
    RuleSet,
    When,
)
from recordings.qa_transcript import Call, Span, call_from
from recordings.qa_whole_call_rules import forbidden_phrases, max_silence, no_match
from recordings.sidecar import Sidecar

CallStatus = Literal["pass", "fail", "incomplete"]


@dataclass(frozen=True)
class RuleResult:
    """How one rule ended for a call, as reported (JSON, CSV, the console)."""

    rule_id: str
    kind: str
    status: RuleStatus
    detail: str = ""
    spans: tuple[Span, ...] = ()
    critical: bool = False
    weight: float = 1.0
    where: str = ""
    """``FILE:LINE:COL`` of the rule."""

    @property
    def at(self) -> str:
        """The timestamps as text (``12.30-15.10s, 40.02s``)."""
        return ", ".join(span.label() for span in self.spans)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "kind": self.kind,
            "status": self.status,
            "critical": self.critical,
            "weight": self.weight,
            "detail": self.detail,
            "at": [span.to_json() for span in self.spans],
            "where": self.where,
        }


@dataclass(frozen=True)
class QaResult:
    """One call judged against one rules file, naming the exact rules (``rules_sha256``) it used."""

    call_id: str
    status: CallStatus
    score: float | None
    """Weighted share of evaluated rules that passed, 0-100; ``None`` when no rule could be evaluated."""
    results: tuple[RuleResult, ...]
    outcome: str = ""
    flow_name: str = ""
    flow_version: str = ""
    rules_name: str = ""
    rules_version: str = ""
    rules_file: str = ""
    rules_sha256: str = ""
    pass_score: float = 100.0

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    @property
    def not_evaluable(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.status == "not_evaluable")

    def to_json(self) -> dict[str, Any]:
        return {
            "qa_schema": QA_SCHEMA,
            "call_id": self.call_id,
            "flow": {"name": self.flow_name, "version": self.flow_version},
            "outcome": self.outcome,
            "rules": {
                "name": self.rules_name,
                "version": self.rules_version,
                "file": self.rules_file,
                "sha256": self.rules_sha256,
                "pass_score": self.pass_score,
            },
            "status": self.status,
            "passed": self.passed,
            "score": self.score,
            "results": [r.to_json() for r in self.results],
        }


def evaluate(rules: RuleSet, sidecar: Sidecar | Mapping[str, Any]) -> QaResult:
    """Judge one call: ``sidecar`` is a :class:`Sidecar` or its JSON object (as read from disk).

    Raises :class:`~recordings.qa_transcript.QaInputError` only for a mapping that is not a sidecar.
    """
    call = call_from(sidecar)
    context = Context(call, rules)
    ordered = sorted(rules.rules, key=lambda rule: isinstance(rule.check, OutcomeConsistent))
    for rule in ordered:
        context.verdicts[rule.id] = _judge(context, rule)
    results = tuple(_result(rule, context.verdicts[rule.id]) for rule in rules.rules)
    score, status = _score(results, rules.pass_score)
    return QaResult(
        call_id=call.call_id,
        status=status,
        score=score,
        results=results,
        outcome=call.outcome,
        flow_name=call.flow_name,
        flow_version=call.flow_version,
        rules_name=rules.name,
        rules_version=rules.version,
        rules_file=rules.file,
        rules_sha256=rules.sha256,
        pass_score=rules.pass_score,
    )


def _result(rule: Rule, verdict: Verdict) -> RuleResult:
    """The rule's verdict as reported, each span once and in time order."""
    spans = sorted(dict.fromkeys(verdict.spans), key=lambda s: (s.start_s, s.end_s))
    return RuleResult(
        rule.id,
        rule.kind,
        verdict.status,
        verdict.detail,
        tuple(spans),
        rule.critical,
        rule.weight,
        rule.where,
    )


def _score(results: Sequence[RuleResult], pass_score: float) -> tuple[float | None, CallStatus]:
    """The score over evaluated rules, and the verdict (see the module docstring)."""
    passed = sum(r.weight for r in results if r.status == "pass")
    failed = sum(r.weight for r in results if r.status == "fail")
    unknown = sum(r.weight for r in results if r.status == "not_evaluable")
    judged, total = passed + failed, passed + failed + unknown
    if not total:
        return 100.0, "pass"  # no rule applied to this call
    score = round(100 * passed / judged, 1) if judged else None
    best, worst = 100 * (passed + unknown) / total, 100 * passed / total
    if any(r.critical and r.status == "fail" for r in results) or best < pass_score - EPSILON:
        return score, "fail"
    critical_unknown = any(r.critical and r.status == "not_evaluable" for r in results)
    if unknown and (critical_unknown or worst < pass_score - EPSILON):
        return score, "incomplete"
    return score, "pass"


def _judge(context: Context, rule: Rule) -> Verdict:
    """The rule's verdict: ``not_applicable`` (or ``not_evaluable``) unless its ``when:`` holds."""
    call = context.call
    skipped = _skipped(call, rule.when)
    if skipped is not None:
        return skipped
    check = rule.check
    if isinstance(check, RequiredPrompt):
        return required_prompt(context, rule.id, check)
    if isinstance(check, Acknowledgement):
        return caller_says(context, check.says, missing_anchor="not_applicable")
    if isinstance(check, ForbiddenPhrases):
        return forbidden_phrases(call, check)
    if isinstance(check, MaxSilence):
        return max_silence(call, check)
    if isinstance(check, NoMatch):
        return no_match(call, check)
    return outcome_consistent(context, check)


def _skipped(call: Call, when: When) -> Verdict | None:
    """Why a rule does not apply to (or cannot tell whether it applies to) this call, if so."""
    if when.outcomes and call.outcome not in when.outcomes:
        return Verdict(
            "not_applicable",
            f"applies when the outcome is {_either(when.outcomes)} (this call: {call.outcome or 'none'!r})",
        )
    if when.not_outcomes and call.outcome in when.not_outcomes:
        return Verdict("not_applicable", f"does not apply to outcome {call.outcome!r}")
    if when.bot_said is not None:
        if not call.has_text("bot"):
            return Verdict(
                "not_evaluable",
                "the bot track has no transcript: cannot tell whether "
                f"the bot said {when.bot_said.text[:60]!r}",
            )
        if not call.saying("bot", when.bot_said):
            return Verdict("not_applicable", f"the bot never said {when.bot_said.text[:60]!r}")
    return None


def _either(names: Sequence[str]) -> str:
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
