"""Rules over the whole call judged on constructed calls: forbidden phrases per speaker,
silences (pauses and holds excused) and no-match reprompts, each with its timestamps."""

from __future__ import annotations

import pytest

from recordings.qa_check import evaluate
from recordings.qa_rules import RuleSet
from recordings.qa_rules_loader import parse_rules
from recordings.sidecar import Pause
from tests.unit.recordings.test_recordings_qa_check import Script, result_of

# -- forbidden_phrases, max_silence, no_match -------------------------------------------------

SMALL = """
qa: {name: small}
rules:
  - id: bot_words
    kind: forbidden_phrases
    speaker: bot
    phrases: [guaranteed return, "risk free"]
  - id: caller_words
    kind: forbidden_phrases
    speaker: caller
    phrases: [complaint]
  - id: anyone
    kind: forbidden_phrases
    phrases: [scam]
  - id: quiet
    kind: max_silence
    max_gap: 5s
    except_after: [please hold]
  - id: reprompts
    kind: no_match
    max: 1
"""


@pytest.fixture(scope="module")
def small() -> RuleSet:
    return parse_rules(SMALL, "small.yaml")


def small_call() -> Script:
    s = Script(flow="any")
    s.bot("Hello, how can I help?")
    s.caller("I want to make a complaint")
    s.bot("This fund is RISK-FREE, with a guaranteed return.")
    s.caller("sounds like a scam")
    return s


def test_forbidden_phrases_per_speaker_with_timestamps(small: RuleSet) -> None:
    s = small_call()
    result = evaluate(small, s.data())
    bot = result_of(result, "bot_words")
    assert bot.status == "fail"
    third = s.turns[2]
    span = f"{third['start_s']:.2f}-{third['end_s']:.2f}s"
    assert bot.detail == f"bot said 'guaranteed return' at {span}; bot said 'risk free' at {span}"
    assert bot.at == span
    assert result_of(result, "caller_words").detail.startswith("caller said 'complaint' at 2.")
    assert result_of(result, "anyone").detail.startswith("caller said 'scam' at")


def test_forbidden_phrases_match_whole_words_only(small: RuleSet) -> None:
    s = Script(flow="any")
    s.bot("Our riskfree-looking scampi guaranteed returnable offer")  # none of the phrases as words
    s.caller("no complaints")
    result = evaluate(small, s.data())
    assert [result_of(result, r).status for r in ("bot_words", "caller_words", "anyone")] == ["pass"] * 3


def test_forbidden_caller_phrases_need_the_caller_transcript(small: RuleSet) -> None:
    s = Script(flow="any")
    s.bot("Hello, how can I help?")
    result = evaluate(small, s.data())
    assert result_of(result, "caller_words").status == "not_evaluable"
    assert result_of(result, "bot_words").status == "pass"


def test_max_silence_flags_a_long_gap_but_not_a_pause_or_a_hold(small: RuleSet) -> None:
    s = Script(flow="any")
    s.bot("Hello, how can I help?")  # ends 1.95
    s.silence(6.0)
    s.caller("balance")  # starts 8.25: 6.3 s of silence
    s.bot("Please key in your PIN.")
    start = s.now
    s.silence(8.0)
    s.pauses.append(Pause(start, start + 7.0, "pin"))  # 8 s gap, 7 s of it paused on purpose
    s.caller("[redacted: 4 digits]")
    s.bot("Please hold while I connect you.")
    s.silence(30.0)  # hold music: excused
    s.caller("hello?")
    result = evaluate(small, s.data())
    quiet = result_of(result, "quiet")
    assert quiet.status == "fail"
    assert quiet.detail == "a gap longer than 5s: 6.3s at 1.95-8.25s"
    assert quiet.at == "1.95-8.25s"
    as_sidecar = evaluate(small, s.sidecar())  # the dataclass gives the same answer
    assert result_of(as_sidecar, "quiet") == quiet


def test_no_match_counts_the_reprompts(small: RuleSet) -> None:
    s = Script(flow="any")
    s.bot("How can I help?")
    s.caller("blah")
    s.bot("Sorry, I didn't understand.")
    s.caller("blah blah")
    once = evaluate(small, s.data())
    assert result_of(once, "reprompts").status == "pass"
    s.bot("Sorry, I still didn't get that. You can also use your telephone keypad.")
    twice = result_of(evaluate(small, s.data()), "reprompts")
    assert twice.status == "fail"
    assert twice.detail == "2 no-match reprompts (at most 1): at 3.36s, 6.72s"
    assert len(twice.spans) == 2
