"""The alert engine: one call's signals in, :class:`Alert` values out. Pure and replayable.

The call core feeds it what the caller said (already redacted: a sensitive answer arrives as
``[redacted speech]`` and matches no phrase), recognitions that matched nothing, no-inputs,
the caller's silence while the bot waits, elapsed time with the outcome decided so far, and
emotion readings, each with ``at_s`` (seconds since the call connected). Each rule fires once
per call unless it says ``repeat`` (a repeating streak rule fires at every multiple of its
count); a streak ends when the caller says something that matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from supervision.alert_rules import AlertRule, AlertRules, RuleAction, normalize


@dataclass(frozen=True)
class Alert:
    """A rule fired: what, how bad, why (``evidence``: the phrase, the count, the seconds) and when."""

    rule_id: str
    kind: str
    severity: str
    at_s: float
    evidence: str
    action: RuleAction | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule_id,
            "kind": self.kind,
            "severity": self.severity,
            "at_s": round(self.at_s, 3),
            "evidence": self.evidence,
            **({"action": self.action.to_json()} if self.action else {}),
        }


class AlertEngine:
    """See the module docstring. ``flow_name`` picks the rules that apply to this call."""

    def __init__(self, rules: AlertRules, flow_name: str) -> None:
        self.rules = rules.for_flow(flow_name)
        self.fired: list[Alert] = []
        self._fired_ids: set[str] = set()
        self._streaks: dict[str, int] = {"no_match": 0, "no_input": 0}
        self._human_requests = 0
        self._silent_alerted: set[str] = set()

    def caller_said(self, text: str, at_s: float) -> list[Alert]:
        """A final result of the caller's (redacted as in the recording)."""
        normalized = normalize(text)
        out: list[Alert] = []
        if normalized:
            self._streaks["no_input"] = 0
        asked_human = False
        for rule in self.rules:
            phrase = rule.find(normalized) if rule.kind in ("phrase", "human_request") else None
            if phrase is None:
                continue
            if rule.kind == "phrase":
                out += self._fire(rule, at_s, f"said '{phrase}'")
            elif not asked_human:
                asked_human = True
                self._human_requests += 1
        if asked_human:
            for rule in self._of("human_request"):
                if self._human_requests >= rule.count:
                    out += self._fire(rule, at_s, f"asked for a person {self._human_requests} times")
        return out

    def caller_partial(self, text: str, at_s: float) -> list[Alert]:
        """An interim result (never a redacted one): phrase rules that fire once per call fire on
        it, a few hundred ms before the final; repeating rules and counts wait for finals."""
        normalized = normalize(text)
        out: list[Alert] = []
        for rule in self._of("phrase"):
            if not rule.repeat and (phrase := rule.find(normalized)) is not None:
                out += self._fire(rule, at_s, f"said '{phrase}' (partial result)")
        return out

    def recognized(self, matched: bool, at_s: float) -> list[Alert]:
        """The recognizer's result matched something the step expects, or nothing (a no-match)."""
        self._streaks["no_input"] = 0
        if matched:
            self._streaks["no_match"] = 0
            return []
        return self._streak("no_match", at_s)

    def no_input(self, at_s: float) -> list[Alert]:
        return self._streak("no_input", at_s)

    def silence(self, silent_for_s: float, at_s: float) -> list[Alert]:
        """The caller has said and keyed nothing for ``silent_for_s`` of the bot's waiting
        (re-prompts do not end a silence; the caller does). One alert per silent stretch."""
        out: list[Alert] = []
        for rule in self._of("silence"):
            if silent_for_s <= rule.seconds:
                self._silent_alerted.discard(rule.id)
            elif rule.id not in self._silent_alerted:
                self._silent_alerted.add(rule.id)
                out += self._fire(rule, at_s, f"caller silent for {silent_for_s:.1f} s")
        return out

    def progress(self, elapsed_s: float, outcome: str, at_s: float) -> list[Alert]:
        """Time passes: an outcome still undecided after a rule's ``after_s`` is at risk."""
        out: list[Alert] = []
        if outcome:
            return out
        for rule in self._of("outcome_at_risk"):
            if elapsed_s >= rule.seconds:
                out += self._fire(rule, at_s, f"no outcome after {elapsed_s:.0f} s")
        return out

    def emotion(self, arousal: float, at_s: float, evidence: str) -> list[Alert]:
        """One utterance's arousal (0..1, :mod:`supervision.emotion`) against each rule's threshold."""
        out: list[Alert] = []
        for rule in self._of("emotion"):
            if arousal >= rule.threshold:
                out += self._fire(rule, at_s, f"arousal {arousal:.2f} ({evidence})")
        return out

    def emotion_words(self, text: str) -> tuple[str, ...]:
        """Negative words of the emotion rules' lexicons in ``text`` (a final, redacted)."""
        normalized = normalize(text)
        return tuple(phrase for rule in self._of("emotion") if (phrase := rule.find(normalized)) is not None)

    # -- internals ----------------------------------------------------------------------------
    def _of(self, kind: str) -> list[AlertRule]:
        return [rule for rule in self.rules if rule.kind == kind]

    def _streak(self, kind: str, at_s: float) -> list[Alert]:
        self._streaks[kind] += 1
        count = self._streaks[kind]
        out: list[Alert] = []
        for rule in self._of(kind):
            if count == rule.count or (rule.repeat and count % rule.count == 0):
                out += self._fire(rule, at_s, f"{count} in a row")
        return out

    def _fire(self, rule: AlertRule, at_s: float, evidence: str) -> list[Alert]:
        if rule.id in self._fired_ids and not rule.repeat:
            return []
        self._fired_ids.add(rule.id)
        alert = Alert(rule.id, rule.kind, rule.severity, at_s, evidence, rule.action)
        self.fired.append(alert)
        return [alert]
