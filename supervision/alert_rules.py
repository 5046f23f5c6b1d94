"""Alert rules: the YAML file a team lead edits, read into validated, immutable rules.

A rules file is written by people and hot-reloaded while calls run, so it is read like a flow
file (:mod:`flows.yaml_source`): bounded size and texts, duplicate keys refused, and every
problem reported as ``FILE:LINE:COL: message`` (:class:`flows.errors.Problem`). Nothing here
touches a call; :mod:`supervision.alerts` evaluates the rules.

Format (``config/alerts.yaml`` is the commented default)::

    rules:
      - id: lawyer            # unique, [a-z0-9_]
        kind: phrase          # phrase | no_match | no_input | silence | human_request
                              # | outcome_at_risk | emotion
        phrases: [lawyer, attorney]
        severity: high        # info | low | medium | high | critical (default medium)
        repeat: false         # fire again on the same call (default: once per call)
        flows: [hotline]      # only calls of these flows (default: every flow)
        action: {goto: agent} # or {offer_agent: true}: what the call does when it fires
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import IvrError
from flows.errors import Problem
from flows.yaml_source import MarkedDict, MarkedList, Pos, load_marked, read_marked

KINDS = ("phrase", "no_match", "no_input", "silence", "human_request", "outcome_at_risk", "emotion")
SEVERITIES = ("info", "low", "medium", "high", "critical")
MAX_RULES = 200
MAX_PHRASES = 500
DEFAULT_HUMAN_PHRASES = (
    "agent",
    "human",
    "a person",
    "real person",
    "representative",
    "operator",
    "talk to someone",
    "speak to someone",
    "talk to somebody",
    "speak to somebody",
)
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_COMMON = ("id", "kind", "severity", "repeat", "flows", "action", "description")
_OWN_KEYS: dict[str, tuple[str, ...]] = {
    "phrase": ("phrases",),
    "no_match": ("count",),
    "no_input": ("count",),
    "silence": ("seconds",),
    "human_request": ("count", "phrases"),
    "outcome_at_risk": ("after_s",),
    "emotion": ("threshold", "phrases"),
}
WHAT = "alert rules file"
EXPECTED = "a mapping with rules:"


class AlertRulesError(IvrError):
    """A rules file has problems; ``problems`` lists each as ``FILE:LINE:COL: message``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class RuleAction:
    """What the call does when the rule fires: jump to ``goto`` or offer the caller an agent."""

    goto: str = ""
    offer_agent: bool = False

    def to_json(self) -> dict[str, object]:
        return {"goto": self.goto} if self.goto else {"offer_agent": True}


@dataclass(frozen=True)
class AlertRule:
    id: str
    kind: str
    severity: str = "medium"
    repeat: bool = False
    flows: tuple[str, ...] = ()
    action: RuleAction | None = None
    description: str = ""
    phrases: tuple[str, ...] = ()
    count: int = 0
    seconds: float = 0.0
    threshold: float = 0.0
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    """Word-boundary alternation of ``phrases`` over normalized text (None: no phrases)."""

    def applies_to(self, flow_name: str) -> bool:
        return not self.flows or flow_name in self.flows

    def find(self, normalized: str) -> str | None:
        """The first phrase of this rule said in ``normalized`` text, or None."""
        if self.pattern is None:
            return None
        found = self.pattern.search(normalized)
        return found.group(0) if found else None


@dataclass(frozen=True)
class AlertRules:
    rules: tuple[AlertRule, ...] = ()
    source: str = ""

    def for_flow(self, flow_name: str) -> tuple[AlertRule, ...]:
        return tuple(rule for rule in self.rules if rule.applies_to(flow_name))


def normalize(text: str) -> str:
    """Lower case, accents and punctuation dropped, single spaces: what phrases match against."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w']+", " ", plain).split())


def phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    words = sorted({normalize(p) for p in phrases if normalize(p)}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"(?<![\w'])(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w'])")


def load_rules(path: Path) -> AlertRules:
    """Read and validate ``path``; raises :class:`AlertRulesError` listing every problem."""
    data, problems = read_marked(path, str(path), WHAT, EXPECTED)
    return _checked(data, problems, str(path))


def parse_rules(text: str, file: str) -> AlertRules:
    data, problems = load_marked(text, file, WHAT, EXPECTED)
    return _checked(data, problems, file)


def check_actions(rules: AlertRules, flow_name: str, steps: set[str]) -> list[str]:
    """Problems of rules whose ``goto`` names a step that flow ``flow_name`` lacks."""
    return [
        f"{rules.source}: rule '{rule.id}': action goto '{rule.action.goto}' is not a step of flow "
        f"'{flow_name}'"
        for rule in rules.for_flow(flow_name)
        if rule.action is not None and rule.action.goto and rule.action.goto not in steps
    ]


def _checked(data: MarkedDict | None, problems: list[Problem], file: str) -> AlertRules:
    rules: list[AlertRule] = []
    if data is not None:
        rules = _Reader(file, problems).document(data)
    errors = [p for p in problems if not p.is_warning]
    if errors:
        raise AlertRulesError(errors)
    return AlertRules(tuple(rules), file)


class _Reader:
    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems

    def fail(self, pos: Pos, message: str) -> None:
        self.problems.append(Problem(self.file, pos[0], pos[1], message))

    def document(self, data: MarkedDict) -> list[AlertRule]:
        self._unknown(data, ("rules",), "top level")
        raw = data.get("rules")
        if not isinstance(raw, MarkedList):
            self.fail(data.where_value("rules"), "rules: expected a list of rules")
            return []
        if len(raw) > MAX_RULES:
            self.fail(raw.pos, f"rules: {len(raw)} rules is too many (at most {MAX_RULES})")
            return []
        rules: list[AlertRule] = []
        seen: dict[str, Pos] = {}
        for index, item in enumerate(raw):
            if not isinstance(item, MarkedDict):
                self.fail(raw.where(index), f"rules[{index}]: expected a mapping with id: and kind:")
                continue
            rule = self.rule(item, f"rules[{index}]")
            if rule is None:
                continue
            if rule.id in seen:
                line = seen[rule.id][0]
                self.fail(item.where_value("id"), f"rule id '{rule.id}' is already used on line {line}")
                continue
            seen[rule.id] = item.where_value("id")
            rules.append(rule)
        return rules

    def rule(self, item: MarkedDict, where: str) -> AlertRule | None:
        before = len(self.problems)
        rule_id = self.text(item, "id", where)
        if rule_id is not None and not _ID.match(rule_id):
            self.fail(item.where_value("id"), f"{where}.id: '{rule_id}' must be lower case a-z, 0-9, _")
        kind = self.choice(item, "kind", where, KINDS)
        where = f"rule '{rule_id}'" if rule_id else where
        if kind is None:
            return None
        self._unknown(item, _COMMON + _OWN_KEYS[kind], where)
        severity = self.choice(item, "severity", where, SEVERITIES, "medium")
        repeat = item.get("repeat", False)
        if not isinstance(repeat, bool):
            self.fail(item.where_value("repeat"), f"{where}.repeat: expected true or false, got {repeat!r}")
        flows = self.texts(item, "flows", where, required=False)
        action = self.action(item, where)
        phrases = self.texts(item, "phrases", where, required=kind == "phrase")
        if kind == "human_request" and not phrases:
            phrases = list(DEFAULT_HUMAN_PHRASES)
        description = item.get("description", "")
        if not isinstance(description, str):
            self.fail(item.where_value("description"), f"{where}.description: expected text")
        count = seconds = threshold = 0.0
        if kind in ("no_match", "no_input", "human_request"):
            count = self.number(
                item, "count", where, low=1, high=100, default=2 if kind == "human_request" else None
            )
        elif kind == "silence":
            seconds = self.number(item, "seconds", where, low=1, high=3600)
        elif kind == "outcome_at_risk":
            seconds = self.number(item, "after_s", where, low=1, high=86400)
        elif kind == "emotion":
            threshold = self.number(item, "threshold", where, low=0, high=1)
        if len(self.problems) > before or rule_id is None:
            return None
        return AlertRule(
            id=rule_id,
            kind=kind,
            severity=severity or "medium",
            repeat=bool(repeat),
            flows=tuple(flows),
            action=action,
            description=str(description),
            phrases=tuple(phrases),
            count=int(count),
            seconds=float(seconds),
            threshold=float(threshold),
            pattern=phrase_pattern(tuple(phrases)),
        )

    # -- typed fields -------------------------------------------------------------------------
    def text(self, item: MarkedDict, key: str, where: str) -> str | None:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            pos = item.where_value(key) if key in item else item.pos
            self.fail(pos, f"{where}.{key}: expected text, got {_show(value)}")
            return None
        return value.strip()

    def choice(
        self, item: MarkedDict, key: str, where: str, allowed: tuple[str, ...], default: str | None = None
    ) -> str | None:
        if key not in item and default is not None:
            return default
        value = self.text(item, key, where)
        if value is None:
            return None
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(
                item.where_value(key), f"{where}.{key}: '{value}' is not one of {', '.join(allowed)}{hint}"
            )
            return None
        return value

    def texts(self, item: MarkedDict, key: str, where: str, required: bool) -> list[str]:
        raw = item.get(key)
        if raw is None:
            if required:
                self.fail(item.pos, f"{where}: {key}: is required (a list of phrases)")
            return []
        if not isinstance(raw, MarkedList) or not raw:
            self.fail(item.where_value(key), f"{where}.{key}: expected a non-empty list of texts")
            return []
        if len(raw) > MAX_PHRASES:
            self.fail(raw.pos, f"{where}.{key}: {len(raw)} entries is too many (at most {MAX_PHRASES})")
            return []
        out: list[str] = []
        for index, value in enumerate(raw):
            if not isinstance(value, str) or not normalize(value):
                self.fail(raw.where(index), f"{where}.{key}[{index}]: expected words, got {_show(value)}")
            else:
                out.append(value)
        return out

    def number(
        self, item: MarkedDict, key: str, where: str, *, low: float, high: float, default: float | None = None
    ) -> float:
        value = item.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            pos = item.where_value(key) if key in item else item.pos
            self.fail(pos, f"{where}.{key}: expected a number from {low:g} to {high:g}, got {_show(value)}")
            return 0.0
        return float(value)

    def action(self, item: MarkedDict, where: str) -> RuleAction | None:
        raw = item.get("action")
        if raw is None:
            return None
        pos = item.where_value("action")
        if not isinstance(raw, MarkedDict) or len(raw) != 1:
            self.fail(pos, f"{where}.action: expected one of {{goto: STEP}} or {{offer_agent: true}}")
            return None
        if "goto" in raw:
            step = raw["goto"]
            if not isinstance(step, str) or not step.strip():
                self.fail(raw.where_value("goto"), f"{where}.action.goto: expected a step name")
                return None
            if not item.get("flows"):
                self.fail(raw.where_key("goto"), f"{where}.action.goto needs flows: (the flows that have it)")
                return None
            return RuleAction(goto=step.strip())
        if raw.get("offer_agent") is True:
            return RuleAction(offer_agent=True)
        key = next(iter(raw))
        self.fail(raw.where_key(key), f"{where}.action: '{key}' is not goto or offer_agent: true")
        return None

    def _unknown(self, item: MarkedDict, allowed: tuple[str, ...], where: str) -> None:
        for key in item:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(item.where_key(key), f"{where}: unknown key '{key}'{hint}")


def _show(value: Any) -> str:
    if isinstance(value, MarkedDict):
        return "a mapping"
    if isinstance(value, MarkedList):
        return "a list"
    return "nothing" if value is None else repr(value)[:60]
