"""The alert rules file: the shipped default loads, every broken or hostile file is a located problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT
from flows.yaml_source import MAX_FILE_BYTES
from supervision.alert_rules import (
    KINDS,
    AlertRulesError,
    check_actions,
    load_rules,
    normalize,
    parse_rules,
)

DEFAULT = PROJECT_ROOT / "config" / "alerts.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(AlertRulesError) as caught:
        parse_rules(text, "alerts.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_shipped_rules_load_and_cover_every_kind() -> None:
    rules = load_rules(DEFAULT)
    assert {rule.kind for rule in rules.rules} == set(KINDS)
    assert len({rule.id for rule in rules.rules}) == len(rules.rules)
    callback = next(rule for rule in rules.rules if rule.kind == "outcome_at_risk")
    assert callback.applies_to("compliance_callback") and not callback.applies_to("hotline")


def test_a_broken_rule_is_reported_at_its_line_and_column() -> None:
    text = """rules:
  - id: lawyer
    kind: phrse
  - id: streak
    kind: no_match
    count: 0
  - id: lawyer2
    kind: phrase
    phrases: [lawyer]
    severty: high
  - id: jump
    kind: phrase
    phrases: [cancel]
    action: {goto: retention}
  - id: jump
    kind: silence
    seconds: 5
"""
    found = problems(text)
    assert "alerts.yaml:3:11: rules[0].kind: 'phrse' is not one of" in found[0]
    assert "(did you mean 'phrase'?)" in found[0]
    assert found[1] == "alerts.yaml:6:12: rule 'streak'.count: expected a number from 1 to 100, got 0"
    assert found[2] == "alerts.yaml:10:5: rule 'lawyer2': unknown key 'severty' (did you mean 'severity'?)"
    assert found[3] == "alerts.yaml:14:14: rule 'jump'.action.goto needs flows: (the flows that have it)"
    assert len(found) == 4, "the second 'jump' is valid once the first is dropped"


def test_duplicate_ids_and_keys_and_missing_phrases() -> None:
    text = """rules:
  - id: a
    kind: phrase
    phrases: [x]
  - id: a
    kind: phrase
    phrases: [y]
  - id: b
    kind: phrase
    kind: silence
"""
    found = problems(text)
    assert "alerts.yaml:10:5: duplicate key 'kind'" in found
    assert "alerts.yaml:5:9: rule id 'a' is already used on line 2" in found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "alert rules file is empty: expected a mapping with rules:"),
        ("- a\n- b\n", "alert rules file holds a list: expected a mapping with rules:"),
        ("rules: &a [*a]\n", "1:8: YAML syntax error: found unconstructable recursive node"),
        ("rules: {a: 1}\n", "rules: expected a list of rules"),
        (
            "rules:\n  - id: x\n    kind: phrase\n    phrases: &p [*p]\n",
            "4:14: YAML syntax error: found unconstructable",
        ),
        (
            "rules:\n  - id: x\n    kind: phrase\n    phrases: [[a]]\n",
            "rule 'x'.phrases[0]: expected words, got a list",
        ),
        ("rules: [\n", "YAML syntax error"),
        ("rules:\n" + "  - {id: r, kind: no_input}\n" * 201, "201 rules is too many (at most 200)"),
        ("rules:\n  - id: x\n    kind: phrase\n    phrases: ['" + "a" * 20_000 + "']\n", "text of 20,000"),
    ],
)
def test_hostile_documents_are_refused_clearly(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_a_billion_laughs_file_is_refused_without_expanding_it() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    found = problems("\n".join(lines) + "\nrules: *a8\n")
    assert any("unknown key 'a0'" in p for p in found)
    assert any("rules[0]: expected a mapping" in p for p in found)


def test_an_oversized_or_binary_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 10))
    with pytest.raises(AlertRulesError, match=r"big.yaml:1:1: alert rules file is too large"):
        load_rules(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"rules:\n  - \xff\xfe\n")
    with pytest.raises(AlertRulesError, match=r"bin.yaml:2:5: alert rules file is not UTF-8"):
        load_rules(binary)


def test_phrases_match_whole_words_of_the_normalized_transcript() -> None:
    rules = parse_rules(
        "rules:\n  - {id: legal, kind: phrase, phrases: [lawyer, Sue You, court]}\n", "r.yaml"
    )
    rule = rules.rules[0]
    assert normalize("I'll SUE   you!") == "i'll sue you"
    assert rule.find(normalize("Get me a Lawyer.")) == "lawyer"
    assert rule.find(normalize("I'll sue you")) == "sue you"
    assert rule.find(normalize("lawyers are expensive")) is None
    assert rule.find(normalize("thanks for the courtesy")) is None
    assert rule.find(normalize("pursue your dreams")) is None


def test_a_goto_is_checked_against_the_flow_it_applies_to() -> None:
    rules = parse_rules(
        "rules:\n  - {id: j, kind: phrase, phrases: [x], flows: [hotline], action: {goto: agnet}}\n", "r.yaml"
    )
    assert check_actions(rules, "hotline", {"menu", "agent"}) == [
        "r.yaml: rule 'j': action goto 'agnet' is not a step of flow 'hotline'"
    ]
    assert check_actions(rules, "retention", {"menu"}) == [], "the rule does not apply there"
