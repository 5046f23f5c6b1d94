"""The alert engine replayed: signals in, alerts out, with nothing but values and times."""

from __future__ import annotations

from pathlib import Path

from supervision.alert_rules import AlertRules, RuleAction, parse_rules
from supervision.alerts import Alert, AlertEngine
from supervision.rule_repository import AlertRulesRepository

RULES = """rules:
  - {id: legal, kind: phrase, severity: high, phrases: [lawyer, attorney]}
  - {id: cancel, kind: phrase, phrases: [cancel my], repeat: true}
  - {id: lost, kind: no_match, count: 3}
  - {id: quiet, kind: no_input, count: 2, repeat: true}
  - {id: silence, kind: silence, seconds: 8}
  - {id: human, kind: human_request, count: 2, action: {offer_agent: true}}
  - {id: undecided, kind: outcome_at_risk, after_s: 120, flows: [callback]}
  - {id: agitated, kind: emotion, threshold: 0.6, phrases: [ridiculous, fed up]}
  - {id: hotline_only, kind: phrase, phrases: [balance], flows: [hotline], action: {goto: menu}}
"""


def engine(flow: str = "callback", text: str = RULES) -> AlertEngine:
    return AlertEngine(parse_rules(text, "rules.yaml"), flow)


def ids(alerts: list[Alert]) -> list[str]:
    return [a.rule_id for a in alerts]


def test_a_phrase_fires_once_per_call_with_its_evidence_and_time() -> None:
    e = engine()
    first = e.caller_said("I want to talk to my LAWYER now", 12.5)
    assert first == [Alert("legal", "phrase", "high", 12.5, "said 'lawyer'")]
    assert first[0].to_json() == {
        "rule": "legal",
        "kind": "phrase",
        "severity": "high",
        "at_s": 12.5,
        "evidence": "said 'lawyer'",
    }
    assert e.caller_said("my attorney will call", 20.0) == [], "once per call"
    assert ids(e.caller_said("cancel my order", 21.0)) == ["cancel"]
    assert ids(e.caller_said("please cancel my card", 25.0)) == ["cancel"], "repeat: true"
    assert e.caller_said("[redacted speech]", 26.0) == []


def test_a_partial_result_fires_a_once_per_call_phrase_rule_early() -> None:
    e = engine()
    (alert,) = e.caller_partial("i want my lawyer", 3.1)
    assert alert.rule_id == "legal" and alert.evidence == "said 'lawyer' (partial result)"
    assert e.caller_said("i want my lawyer now", 3.9) == [], "the final does not fire it again"
    assert e.caller_partial("cancel my", 5.0) == [], "a repeating rule waits for finals"
    assert e.caller_partial("a human please", 6.0) == [] and e.caller_partial("a human", 7.0) == []


def test_no_matches_in_a_row_fire_and_a_match_breaks_the_streak() -> None:
    e = engine()
    assert e.recognized(False, 1) == [] and e.recognized(False, 2) == []
    assert e.recognized(True, 3) == []
    assert e.recognized(False, 4) == [] and e.recognized(False, 5) == []
    assert ids(e.recognized(False, 6)) == ["lost"]
    assert e.recognized(False, 7) == [] and e.recognized(False, 8) == [] and e.recognized(False, 9) == []


def test_a_repeating_no_input_rule_fires_at_every_multiple_of_its_count() -> None:
    e = engine()
    fired = [ids(e.no_input(float(t))) for t in range(1, 7)]
    assert fired == [[], ["quiet"], [], ["quiet"], [], ["quiet"]]
    e.caller_said("hello", 8.0)
    assert e.no_input(9.0) == [], "speech ended the streak"


def test_long_silence_fires_once_per_silent_stretch() -> None:
    e = engine()
    assert e.silence(7.9, 20.0) == []
    (alert,) = e.silence(8.5, 20.6)
    assert alert.rule_id == "silence" and alert.evidence == "caller silent for 8.5 s"
    assert e.silence(9.0, 21.1) == []
    assert e.silence(0.5, 30.0) == [], "the caller spoke: a new stretch"
    assert e.silence(9.0, 39.0) == [], "once per call without repeat"


def test_asking_for_a_person_twice_fires_with_its_action() -> None:
    e = engine()
    assert e.caller_said("can I speak to a human", 5.0) == []
    assert e.caller_said("what's my balance", 9.0) == []
    (alert,) = e.caller_said("get me an agent or a real person", 14.0)
    assert alert.rule_id == "human" and alert.evidence == "asked for a person 2 times"
    assert alert.action == RuleAction(offer_agent=True)


def test_an_undecided_outcome_is_at_risk_after_its_minute_only_on_its_flows() -> None:
    e = engine("callback")
    assert e.progress(119.0, "", 119.0) == []
    assert ids(e.progress(121.0, "", 121.0)) == ["undecided"]
    decided = engine("callback")
    assert decided.progress(300.0, "confirmed", 300.0) == []
    assert engine("hotline").progress(300.0, "", 300.0) == []
    assert [r.id for r in engine("hotline").rules if r.flows] == ["hotline_only"]


def test_emotion_readings_and_the_negative_lexicon() -> None:
    e = engine()
    assert e.emotion(0.59, 3.0, "level 0.5") == []
    assert ids(e.emotion(0.6, 4.0, "level 0.9")) == ["agitated"]
    assert e.emotion_words("This is RIDICULOUS, I'm fed up") == ("ridiculous",)


def test_hot_reload_keeps_the_previous_rules_when_an_edit_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("rules:\n  - {id: one, kind: phrase, phrases: [lawyer]}\n")
    repo = AlertRulesRepository(path)
    first = repo.current()
    assert [r.id for r in first.rules] == ["one"]
    assert repo.current() is first, "unchanged file: not re-read"
    path.write_text("rules:\n  - {id: one, kind: phrase, phrases: [lawyer]}\n  - {id: two, kind: silense}\n")
    kept = repo.current()
    assert kept is first
    assert str(repo.problems[0]).startswith(f"{path}:3:21: rules[1].kind: 'silense'")
    path.write_text("rules:\n  - {id: two, kind: silence, seconds: 5}\n")
    fixed: AlertRules = repo.current()
    assert [r.id for r in fixed.rules] == ["two"] and repo.problems == [] and repo.reloads == 1
