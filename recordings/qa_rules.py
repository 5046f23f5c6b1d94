"""QA rules as the checks see them: what a recorded call of a flow or campaign must (not) contain.

These are the validated, immutable form of a rules file; reading and validating the YAML is
:mod:`recordings.qa_rules_loader`'s job, so the checks (:mod:`recordings.qa_check`) never see
raw YAML. The format is described in ``docs/qa.md``; in short::

    qa:
      name: compliance_callback
      applies_to: {flows: [compliance_callback]}
      pass_score: 100
    rules:
      - id: disclosure_in_full
        kind: required_prompt
        text: [Private funds carry a high level of risk., ...]
        critical: true
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from flows.errors import Problem
from recordings.errors import RecordingError
from recordings.qa_matching import Phrase

DEFAULT_NO_MATCH_PHRASES = ("didn't understand", "didn't get that", "didn't catch that")
"""What the bot says when it did not understand: the engine's default no-match prompts
(``flows.model.Settings.no_match_prompts``) and the shipped flows' own reprompts."""
DEFAULT_WITHIN_TURNS = 2
DEFAULT_PASS_SCORE = 100.0

Speaker = Literal["bot", "caller", "agent", "any"]


class QaRulesError(RecordingError):
    """A QA rules file is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"QA rules are invalid ({len(self.problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class When:
    """A rule applies only to calls that match every condition given."""

    outcomes: tuple[str, ...] = ()
    not_outcomes: tuple[str, ...] = ()
    bot_said: Phrase | None = None


@dataclass(frozen=True)
class CallerSays:
    """The caller answers with one of ``phrases`` within ``within_turns`` of their turns after
    the bot said ``after`` (its last occurrence) or after rule ``after_rule``'s prompt."""

    phrases: tuple[Phrase, ...]
    not_phrases: tuple[Phrase, ...] = ()
    within_turns: int = DEFAULT_WITHIN_TURNS
    after: Phrase | None = None
    after_rule: str = ""


@dataclass(frozen=True)
class RequiredPrompt:
    """The bot says every segment, in order, in full, without the caller talking over it."""

    segments: tuple[Phrase, ...]
    barge_in_allowed: bool = False
    max_words_per_minute: float | None = None


@dataclass(frozen=True)
class Acknowledgement:
    """The caller agrees to what the bot said (e.g. confirms they heard a disclosure)."""

    says: CallerSays


@dataclass(frozen=True)
class ForbiddenPhrases:
    """Nobody (or only ``speaker``) may say any of ``phrases``, anywhere in the call."""

    phrases: tuple[Phrase, ...]
    speaker: Speaker = "any"


@dataclass(frozen=True)
class MaxSilence:
    """No silence longer than ``max_gap_s`` between turns (recording pauses do not count), except
    after a bot turn saying one of ``except_after`` (e.g. "take your time")."""

    max_gap_s: float
    except_after: tuple[Phrase, ...] = ()


@dataclass(frozen=True)
class NoMatch:
    """The bot reprompts because it did not understand at most ``max_count`` times."""

    max_count: int
    phrases: tuple[Phrase, ...]


@dataclass(frozen=True)
class OutcomeConsistent:
    """A call that ended with one of ``outcomes`` passed the rules it ``requires`` and the caller
    said what that outcome implies."""

    outcomes: tuple[str, ...]
    requires: tuple[str, ...] = ()
    caller_says: CallerSays | None = None


Check = RequiredPrompt | Acknowledgement | ForbiddenPhrases | MaxSilence | NoMatch | OutcomeConsistent


@dataclass(frozen=True)
class Rule:
    """One rule: what every rule has, and its kind's ``check``; ``line``/``col`` locate it in ``file``."""

    id: str
    kind: str
    check: Check
    description: str = ""
    weight: float = 1.0
    critical: bool = False
    when: When = When()
    file: str = ""
    line: int = 0
    col: int = 0

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class RuleSet:
    """One validated rules file."""

    name: str
    rules: tuple[Rule, ...]
    file: str = "<rules>"
    version: str = ""
    description: str = ""
    flows: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    pass_score: float = DEFAULT_PASS_SCORE
    sha256: str = ""
    """SHA-256 of the file's bytes: a QA result names the exact rules it was judged by."""
    line: int = 1
    col: int = 1

    def rule(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)

    def applies_to(self, flow_name: str, campaign: str = "") -> int:
        """How specifically this file claims a call: 3 campaign, 2 flow, 1 any call, 0 not at all."""
        if campaign and campaign in self.campaigns:
            return 3
        if flow_name and flow_name in self.flows:
            return 2
        return 1 if not self.flows and not self.campaigns else 0


@dataclass(frozen=True)
class RuleCatalog:
    """Every rules file of a folder; picks the one that claims a call (campaign > flow > any)."""

    rule_sets: tuple[RuleSet, ...]

    def for_call(self, flow_name: str, campaign: str = "") -> RuleSet | None:
        best: tuple[int, RuleSet | None] = (0, None)
        for rules in self.rule_sets:
            score = rules.applies_to(flow_name, campaign)
            if score > best[0]:
                best = (score, rules)
        return best[1]
