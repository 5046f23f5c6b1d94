"""QA rules files: the shipped ones load; every mistake is reported as FILE:LINE:COL, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordings.errors import RecordingError
from recordings.qa_matching import compile_phrase, normalize
from recordings.qa_rules import ForbiddenPhrases, NoMatch, QaRulesError, RequiredPrompt
from recordings.qa_rules_loader import load_catalog, load_rules, parse_rules, rule_files, validate_rules

ROOT = Path(__file__).resolve().parents[3]
QA_DIR = ROOT / "flows" / "library" / "qa"


def problems_of(text: str, name: str = "bad.yaml") -> list[str]:
    with pytest.raises(QaRulesError) as caught:
        parse_rules(text, name)
    return [str(problem) for problem in caught.value.problems]


def test_every_shipped_flow_has_a_valid_rules_file_claiming_it() -> None:
    catalog = load_catalog([QA_DIR])
    flows = sorted(path.stem for path in (ROOT / "flows" / "library").glob("*.yaml"))
    assert sorted(rules.name for rules in catalog.rule_sets) == flows
    for flow in flows:
        chosen = catalog.for_call(flow)
        assert chosen is not None and chosen.flows == (flow,)
    assert catalog.for_call("unknown_flow") is None
    assert [path.name for path in rule_files(QA_DIR)] == [f"{flow}.yaml" for flow in flows]


def test_the_compliance_disclosure_is_the_flows_text() -> None:
    rules = load_rules(QA_DIR / "compliance_callback.yaml")
    disclosure = rules.rule("disclosure_in_full")
    assert disclosure is not None and disclosure.critical
    assert isinstance(disclosure.check, RequiredPrompt)
    flow = (ROOT / "flows" / "library" / "compliance_callback.yaml").read_text()
    for segment in disclosure.check.segments:
        assert segment.text in flow  # copied, template and all, so the rule follows the flow
    assert len(rules.sha256) == 64


def test_mistakes_are_all_reported_with_their_positions() -> None:
    text = """\
qa:
  name: broken
  pass_scor: 80
rules:
  - id: disclosure
    kind: required_promt
  - id: 9lives
    kind: no_match
    max: 2
  - kind: max_silence
    id: quiet
    max_gap: soon
  - id: quiet
    kind: no_match
    max: -1
  - id: ack
    kind: acknowledgement
    after_rule: disclosur
    phrases: [yes, "?!"]
    within_turns: 0
  - id: words
    kind: forbidden_phrases
    speaker: robot
    phrases: []
    weight: 0
  - id: consistent
    kind: outcome_consistent
    outcome: confirmed
    requires: [ack, nothing]
"""
    assert problems_of(text) == [
        "bad.yaml:3:3: qa: unknown key 'pass_scor' (did you mean 'pass_score'?)",
        "bad.yaml:6:11: rule 'disclosure'.kind: 'required_promt' is not one of required_prompt, "
        "acknowledgement, forbidden_phrases, max_silence, no_match, outcome_consistent "
        "(did you mean 'required_prompt'?)",
        "bad.yaml:7:9: rules[1].id: '9lives' is not an id: use letters, digits, _ and - (up to 64), "
        "starting with a letter",
        "bad.yaml:12:14: rule 'quiet'.max_gap: invalid duration 'soon' (use e.g. 5s, 500ms, 1m30s)",
        "bad.yaml:13:9: rules[3].id: 'quiet' is already the id of the rule at line 11",
        "bad.yaml:15:10: rule 'quiet'.max: expected a whole number from 0 to 1,000, got -1",
        "bad.yaml:18:17: rule 'ack': after_rule 'disclosur' is not a rule id",
        "bad.yaml:19:20: rule 'ack'.phrases[1]: '?!' has no word to match",
        "bad.yaml:20:19: rule 'ack'.within_turns: expected a whole number from 1 to 50, got 0",
        "bad.yaml:23:14: rule 'words'.speaker: 'robot' is not one of bot, caller, agent, any "
        "(did you mean 'bot'?)",
        "bad.yaml:24:14: rule 'words'.phrases: give at least one text",
        "bad.yaml:25:13: rule 'words'.weight: expected a number from 0.001 to 1000, got 0",
        "bad.yaml:29:15: rule 'consistent': requires 'nothing', which is not a rule id",
    ]


def test_references_must_name_the_right_kind_of_rule() -> None:
    text = """\
qa: {name: refs}
rules:
  - {id: words, kind: forbidden_phrases, phrases: [x]}
  - {id: ack, kind: acknowledgement, after_rule: words, phrases: [yes]}
  - {id: one, kind: outcome_consistent, outcome: a, requires: [two]}
  - {id: two, kind: outcome_consistent, outcome: b, caller_says: {after: hi, after_rule: words, phrases: [y]}}
  - {id: three, kind: acknowledgement, phrases: [yes]}
"""
    assert problems_of(text, "refs.yaml") == [
        "refs.yaml:4:50: rule 'ack': after_rule 'words' is a forbidden_phrases rule: it must name a "
        "required_prompt rule",
        "refs.yaml:5:63: rule 'one': requires 'two', an outcome_consistent rule: "
        "name the rules it checks instead",
        "refs.yaml:6:66: rule 'two'.caller_says: give exactly one of 'after:' (what the bot said) or "
        "'after_rule:' (the id of a required_prompt rule)",
        "refs.yaml:6:90: rule 'two': after_rule 'words' is a forbidden_phrases rule: it must name a "
        "required_prompt rule",
        "refs.yaml:7:5: rule 'three': give exactly one of 'after:' (what the bot said) or 'after_rule:' "
        "(the id of a required_prompt rule)",
    ]


def test_required_keys_and_top_level_shape() -> None:
    assert problems_of(
        "rules:\n  - {id: a, kind: max_silence}\n  - {id: b, kind: no_match}\n"
        "  - {id: c, kind: outcome_consistent}\n  - {id: d}\n  - {kind: no_match, max: 1}\n"
    ) == [
        "bad.yaml:1:1: rules file: missing 'qa:' (name, applies_to, pass_score)",
        "bad.yaml:2:5: rule 'a': missing 'max_gap:' (e.g. 10s)",
        "bad.yaml:3:5: rule 'b': missing 'max:' (how many no-match reprompts a call may have)",
        "bad.yaml:4:5: rule 'c': give 'requires:' (rule ids) and/or 'caller_says:'",
        "bad.yaml:4:5: rule 'c': missing 'outcome:' (the outcome whose consistency is checked)",
        "bad.yaml:5:5: rule 'd': missing 'kind:' (one of required_prompt, acknowledgement, "
        "forbidden_phrases, max_silence, no_match, outcome_consistent)",
        "bad.yaml:6:5: rules[4]: missing 'id:'",
    ]
    assert problems_of("qa: {name: x}\nrules: []\n") == [
        "bad.yaml:2:8: rules: the list is empty: give at least one rule"
    ]
    assert problems_of("qa: {name: x}\nsteps: {}\n") == [
        "bad.yaml:1:1: rules file: missing 'rules:' (a list of rules)",
        "bad.yaml:2:1: rules file: unknown key 'steps'",
    ]


def test_yaml_syntax_empty_files_and_duplicate_keys_are_located(tmp_path: Path) -> None:
    assert problems_of("qa:\n  name: [unclosed\nrules: []\n")[0].startswith("bad.yaml:3:")
    assert problems_of("") == ["bad.yaml:1:1: QA rules file is empty: expected a mapping with qa: and rules:"]
    assert problems_of("- a list\n") == [
        "bad.yaml:1:1: QA rules file holds a list: expected a mapping with qa: and rules:"
    ]
    dup = "qa: {name: x}\nrules:\n  - id: a\n    kind: no_match\n    max: 1\n    max: 2\n"
    assert problems_of(dup) == ["bad.yaml:6:5: duplicate key 'max'"]
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"qa: {name: \xff}\n")
    rules, problems = validate_rules(path, "rules.yaml")
    assert rules is None and [str(p) for p in problems] == [
        "rules.yaml:1:12: QA rules file is not UTF-8: invalid start byte"
    ]
    with pytest.raises(QaRulesError) as caught:
        load_rules(tmp_path / "missing.yaml", "missing.yaml")
    assert str(caught.value.problems[0]).startswith("missing.yaml:1:1: cannot read QA rules file:")
    assert isinstance(caught.value, RecordingError)


def test_two_files_claiming_one_flow_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "qa:\n  name: a\n  applies_to: {flows: [hotline]}\nrules:\n  - {id: r, kind: no_match, max: 1}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "\nqa:\n  name: b\n  applies_to: {flows: [retention, hotline]}\nrules:\n"
        "  - {id: r, kind: no_match, max: 1}\n"
    )
    with pytest.raises(QaRulesError) as caught:
        load_catalog([tmp_path])
    [problem] = caught.value.problems
    assert problem.line == 3 and problem.col == 3 and problem.file.endswith("b.yaml")
    assert problem.message.startswith("qa.applies_to: flow 'hotline' is already claimed by ")
    assert problem.message.endswith("a.yaml:2:3 (a)")
    (tmp_path / "empty").mkdir()
    with pytest.raises(QaRulesError, match="empty:1:1: no QA rules files"):
        load_catalog([tmp_path / "empty"])


def test_campaign_rules_beat_flow_rules_which_beat_catch_all(tmp_path: Path) -> None:
    body = "rules:\n  - {id: r, kind: no_match, max: 1}\n"
    (tmp_path / "any.yaml").write_text("qa: {name: any}\n" + body)
    (tmp_path / "flow.yaml").write_text("qa: {name: flow, applies_to: {flows: [hotline]}}\n" + body)
    (tmp_path / "camp.yaml").write_text("qa: {name: camp, applies_to: {campaigns: [spring]}}\n" + body)
    catalog = load_catalog([tmp_path])
    picked = [
        catalog.for_call(flow, campaign)
        for flow, campaign in [("hotline", "spring"), ("hotline", ""), ("demo", ""), ("demo", "spring")]
    ]
    assert [rules.name if rules else None for rules in picked] == ["camp", "flow", "any", "camp"]


def test_phrases_match_words_ignoring_case_punctuation_and_templates() -> None:
    assert normalize("Don't STOP — it's #1, ok?") == "dont stop its #1 ok"
    phrase = compile_phrase("the risk disclosure for {{ contact.product }}. Please listen carefully.")
    assert phrase is not None and phrase.words == 7
    assert phrase.found_in(normalize("The risk disclosure for Acme Fund III. Please listen carefully!"))
    assert phrase.found_in(normalize("the risk disclosure for please listen carefully"))  # empty template
    assert not phrase.found_in(normalize("the risk disclosure for Acme. Listen carefully."))
    no = compile_phrase("no")
    assert no is not None
    assert no.found_in("oh no") and not no.found_in("i know") and not no.found_in("not now")
    assert compile_phrase("{{ only.a.template }}") is None and compile_phrase("?!") is None


def test_defaults_of_each_kind() -> None:
    rules = parse_rules(
        "qa: {name: d}\nrules:\n  - {id: p, kind: required_prompt, text: Hello.}\n"
        "  - {id: f, kind: forbidden_phrases, phrases: [x]}\n  - {id: n, kind: no_match, max: 0}\n"
    )
    assert rules.pass_score == 100.0 and rules.flows == () and rules.applies_to("whatever") == 1
    prompt, words, reprompts = (rule.check for rule in rules.rules)
    assert isinstance(prompt, RequiredPrompt) and not prompt.barge_in_allowed
    assert prompt.max_words_per_minute is None
    assert isinstance(words, ForbiddenPhrases) and words.speaker == "any"
    assert isinstance(reprompts, NoMatch) and reprompts.max_count == 0
    assert [p.text for p in reprompts.phrases] == [
        "didn't understand",
        "didn't get that",
        "didn't catch that",
    ]
