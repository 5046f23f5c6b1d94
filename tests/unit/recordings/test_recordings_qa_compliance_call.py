"""The shipped compliance callback rules judged on constructed calls: the risk disclosure read in
full and not talked over, the caller's acknowledgement, and outcomes consistent with both."""

from __future__ import annotations

import pytest

from recordings.qa_check import evaluate
from recordings.qa_rules import RuleSet
from recordings.qa_rules_loader import load_rules
from tests.unit.recordings.test_recordings_qa_check import (
    ACK_QUESTION,
    COMPLIANCE_RULES,
    DISCLOSURE,
    Script,
    compliance_call,
    read_disclosure,
    result_of,
)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(COMPLIANCE_RULES)


# -- the shipped compliance rules -------------------------------------------------------------


def test_a_clean_confirmed_compliance_call_passes_every_rule(rules: RuleSet) -> None:
    result = evaluate(rules, compliance_call().data())
    assert result.status == "pass" and result.passed and result.score == 100.0
    statuses = {r.rule_id: r.status for r in result.results}
    assert statuses["disclosure_in_full"] == "pass"
    assert statuses["disclosure_acknowledged"] == "pass"
    assert statuses["confirmed_needs_yes_after_disclosure"] == "pass"
    assert statuses["wrong_person_said_no"] == "not_applicable"
    assert result.rules_name == "compliance_callback" and len(result.rules_sha256) == 64


def test_a_disclosure_the_caller_barged_over_fails_with_both_timestamps(rules: RuleSet) -> None:
    s = Script(outcome="confirmed")
    s.bot("Am I speaking with Jane Doe?")
    s.caller("yes")
    s.bot(DISCLOSURE[0])
    cut = s.bot(DISCLOSURE[1], seconds=4.0)  # stopped by the barge-in 4 s into a 12 s segment
    s.caller("yes yes I know all that", seconds=1.5, at=cut["start_s"] + 3.5)
    s.now = cut["end_s"] + 1.6
    s.bot(DISCLOSURE[2])
    s.bot(DISCLOSURE[3])
    s.bot(ACK_QUESTION)
    s.caller("yes")
    result = evaluate(rules, s.data())
    disclosure = result_of(result, "disclosure_in_full")
    assert disclosure.status == "fail" and disclosure.critical
    assert "the caller spoke over segment 2 at" in disclosure.detail
    assert "segment 2 lasted 4.0s for 32 words: cut short" in disclosure.detail
    start, end = cut["start_s"], cut["end_s"]
    assert disclosure.at == f"{start:.2f}-{end:.2f}s, {start + 3.5:.2f}-{start + 5.0:.2f}s"
    consistency = result_of(result, "confirmed_needs_yes_after_disclosure")
    assert consistency.status == "fail"
    assert "requires disclosure_in_full, which failed" in consistency.detail
    assert result.status == "fail" and result.score is not None and result.score < 100


def test_an_explicit_interrupted_mark_fails_the_disclosure(rules: RuleSet) -> None:
    s = compliance_call()
    segment = next(t for t in s.turns if t["text"] == DISCLOSURE[3])
    segment["interrupted"] = True
    result = evaluate(rules, s.data())
    detail = result_of(result, "disclosure_in_full").detail
    assert f"segment 4 was cut off at {segment['end_s']:.2f}s (barge-in)" in detail
    segment.pop("interrupted")
    segment["barged_in"] = True  # the other spelling is understood too
    assert result_of(evaluate(rules, s.data()), "disclosure_in_full").status == "fail"


def test_a_caller_hanging_up_during_the_disclosure_leaves_segments_never_played(rules: RuleSet) -> None:
    s = Script(outcome="no_decision")
    s.bot(DISCLOSURE[0])
    s.bot(DISCLOSURE[1], seconds=5.0)
    for text in DISCLOSURE[2:]:  # the prompt queue ends the rest at the hang-up, 0 s long
        s.bot(text, seconds=0.0)
    abandoned = evaluate(rules, s.data())
    assert result_of(abandoned, "disclosure_in_full").status == "not_applicable"  # the caller left
    assert abandoned.status == "pass"
    s.outcome = "callback_requested"  # had the call gone on, the cut disclosure counts
    disclosure = result_of(evaluate(rules, s.data()), "disclosure_in_full")
    assert disclosure.status == "fail"
    assert "segment 3 was never played (0 s of audio" in disclosure.detail
    assert "segment 4 was never played" in disclosure.detail
    assert "segment 2 lasted 5.0s for 32 words: cut short" in disclosure.detail


def test_a_missing_segment_is_named(rules: RuleSet) -> None:
    s = compliance_call()
    s.turns = [t for t in s.turns if t["text"] != DISCLOSURE[2]]
    detail = result_of(evaluate(rules, s.data()), "disclosure_in_full").detail
    assert detail.startswith("segment 3 of 4 never said: 'Private funds are not easy to sell.")


def test_a_disclosure_read_again_in_full_after_a_barge_in_passes(rules: RuleSet) -> None:
    s = Script(outcome="confirmed")
    s.bot(DISCLOSURE[0])
    cut = s.bot(DISCLOSURE[1], seconds=2.0, interrupted=True)
    s.caller("read that again", at=cut["end_s"] - 0.5)
    s.now = cut["end_s"] + 1.0
    read_disclosure(s)
    s.bot(ACK_QUESTION)
    s.caller("yes I confirm")
    result = evaluate(rules, s.data())
    assert result_of(result, "disclosure_in_full").status == "pass"
    assert result_of(result, "disclosure_acknowledged").detail.startswith("the caller said 'yes I confirm'")
    assert result.status == "pass"


def test_a_call_that_never_reached_the_disclosure_does_not_need_it(rules: RuleSet) -> None:
    s = Script(outcome="wrong_person")
    s.bot("Hello, this is an automated call from Acme Wealth about your recent investment.")
    s.bot("Am I speaking with Jane Doe?")
    s.caller("no, wrong number")
    s.bot("Sorry to have bothered you. Goodbye.")
    result = evaluate(rules, s.data())
    disclosure = result_of(result, "disclosure_in_full")
    assert disclosure.status == "not_applicable"
    assert disclosure.detail == "the bot never said 'I must read you the risk disclosure'"
    assert result_of(result, "wrong_person_said_no").status == "pass"
    assert result.status == "pass"


def test_wrong_person_outcome_after_a_yes_is_inconsistent(rules: RuleSet) -> None:
    s = Script(outcome="wrong_person")
    s.bot("Am I speaking with Jane Doe?")
    s.caller("yes speaking")
    s.bot("Sorry to have bothered you. Goodbye.")
    rule = result_of(evaluate(rules, s.data()), "wrong_person_said_no")
    assert rule.status == "fail"
    assert rule.detail.startswith(
        "outcome 'wrong_person', but no 'no' (or the like) in the caller's next 2 turns"
    )


# -- acknowledgement --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("yes", "pass"),
        ("yeah I understand", "pass"),
        ("#1", "pass"),
        ("no", "fail"),
        ("i don't understand", "fail"),
        ("", "fail"),
        ("[redacted speech]", "not_evaluable"),
    ],
)
def test_acknowledgement_after_the_disclosure(rules: RuleSet, answer: str, status: str) -> None:
    result = evaluate(rules, compliance_call(answer=answer).data())
    assert result_of(result, "disclosure_acknowledged").status == status


def test_an_acknowledgement_too_late_fails_with_the_turns_heard(rules: RuleSet) -> None:
    s = Script(outcome="confirmed")
    read_disclosure(s)
    s.bot(ACK_QUESTION)
    s.caller("what")
    s.bot("Sorry, I didn't get that.")
    s.caller("hmm")
    s.bot(ACK_QUESTION)
    s.caller("yes")  # the third caller turn: past within_turns 2
    rule = result_of(evaluate(rules, s.data()), "disclosure_acknowledged")
    assert rule.status == "fail"
    assert "heard 'what' at" in rule.detail and "'hmm' at" in rule.detail and "'yes' at" not in rule.detail
    assert len(rule.spans) == 3  # where the disclosure ended, and the two turns heard


def test_a_caller_track_without_text_is_not_evaluable_not_a_guess(rules: RuleSet) -> None:
    s = compliance_call()
    s.turns = [t for t in s.turns if t["speaker"] != "caller"]  # recorded without caller transcript
    result = evaluate(rules, s.data())
    ack = result_of(result, "disclosure_acknowledged")
    assert ack.status == "not_evaluable" and ack.detail == "the caller track has no transcript"
    assert result_of(result, "caller_red_flags").status == "not_evaluable"
    assert result_of(result, "disclosure_in_full").status == "pass"
    assert result.status == "incomplete"  # critical rules could not be judged


def test_a_bot_track_without_text_is_not_evaluable(rules: RuleSet) -> None:
    s = compliance_call()
    for turn in s.turns:
        if turn["speaker"] == "bot":
            turn["text"] = ""
    result = evaluate(rules, s.data())
    assert result_of(result, "disclosure_in_full").status == "not_evaluable"
    assert result_of(result, "few_no_matches").status == "not_evaluable"
    assert result.status == "incomplete"


# -- outcome_consistent -----------------------------------------------------------------------


def test_confirmed_without_any_disclosure_is_inconsistent(rules: RuleSet) -> None:
    result = evaluate(rules, compliance_call(disclosure=False).data())
    rule = result_of(result, "confirmed_needs_yes_after_disclosure")
    assert rule.status == "fail"
    assert "requires disclosure_in_full, which did not apply (the bot never said" in rule.detail
    assert "the bot never said 'Do you confirm that you have heard" in rule.detail
    assert result.status == "fail"


def test_a_declined_call_is_not_held_to_the_confirmed_rules(rules: RuleSet) -> None:
    result = evaluate(rules, compliance_call(answer="no", outcome="declined").data())
    assert result_of(result, "confirmed_needs_yes_after_disclosure").status == "not_applicable"
    assert result_of(result, "disclosure_acknowledged").status == "not_applicable"
    assert result.status == "pass"
