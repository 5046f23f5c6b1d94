"""The call core with supervision replayed: transcript lines (redacted exactly as the recording),
the flow step, alerts and their actions, with no sockets, threads or sleeps."""

from __future__ import annotations

import json

import pytest

from config.settings import MediaSettings
from flows import FlowSession
from flows.model import Flow
from ivr.call_core import CallCore
from ivr.call_vocabulary import AsrResults, Connected, DigitReceived, Publish, RaiseAlert, WriteTurn
from media.pipeline import AsrPartial, CallMediaPipeline
from supervision.alert_rules import parse_rules
from supervision.alerts import AlertEngine
from tests.unit.ivr.call_replay import SPEECH, T0, WALL_OFFSET, LoudnessVad, SimulatedCall, load_test_flow

FLOW = """
flow: {name: watch-test, barge_in: true}
settings: {no_input_timeout: 30s, inter_digit_timeout: 2s, max_no_input: 2, max_no_match: 3}
steps:
  menu:
    say: Welcome.
    ask: Balance or card?
    intents:
      balance: {phrases: [check my balance, balance], dtmf: "1", goto: pay}
      card: {phrases: [lost card], dtmf: "2", goto: goodbye}
  pay:
    record: pause
    ask: Your card number?
    slot: {type: digits, length: 4}
    save_as: card_number
    confirm: never
    next: done
  done:
    record: resume
    say: Thanks.
    hangup: paid
  agent:
    say: Let me find you a person.
    hangup: offered_agent
  goodbye:
    say: Bye.
    hangup: bye
"""
RULES = """rules:
  - {id: legal, kind: phrase, severity: high, phrases: [lawyer]}
  - {id: silence, kind: silence, seconds: 4}
  - {id: human, kind: human_request, count: 2}
  - {id: cancel, kind: phrase, phrases: [cancel], action: {offer_agent: true}}
"""


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    return load_test_flow(tmp_path_factory.mktemp("watch"), FLOW)


def start(flow: Flow, rules: str = RULES) -> SimulatedCall:
    pipeline = CallMediaPipeline(MediaSettings(), vad=LoudnessVad(), in_band_dtmf=False)
    engine = AlertEngine(parse_rules(rules, "rules.yaml"), flow.metadata.name)
    core = CallCore(
        "watch-call",
        FlowSession(flow, {}, None),
        pipeline,
        connected_at=T0,
        wall_offset=WALL_OFFSET,
        max_duration_s=600,
        alerts=engine,
    )
    call = SimulatedCall(core)
    call.feed(Connected())
    return call


def published(call: SimulatedCall, event: str) -> list[dict[str, object]]:
    return [dict(c.payload) for c in call.commands(Publish) if isinstance(c, Publish) and c.event == event]


def alerts(call: SimulatedCall) -> list[dict[str, object]]:
    return [dict(c.payload) for c in call.commands(RaiseAlert) if isinstance(c, RaiseAlert)]


def test_every_turn_is_published_with_the_recordings_text_and_secrets_never_leave(flow: Flow) -> None:
    call = start(flow)
    call.until_quiet()
    call.feed(AsrResults([AsrPartial("check my", call.core.caller_position_s)]))
    call.hear("check my balance")
    call.until_quiet()
    call.feed(AsrResults([AsrPartial("four three", call.core.caller_position_s)]))
    for key in "4321":
        call.feed(DigitReceived(key, "rfc2833"))
    call.until_quiet()
    lines = published(call, "transcript")
    turns = [c for c in call.commands(WriteTurn) if isinstance(c, WriteTurn)]
    finals = [line for line in lines if line["kind"] == "final"]
    assert [(f["speaker"], f["text"]) for f in finals] == [(t.speaker, t.text) for t in turns]
    assert ("caller", "[redacted: 4 digits]") in [(f["speaker"], f["text"]) for f in finals]
    partials = [line["text"] for line in lines if line["kind"] == "partial"]
    assert partials == ["check my"], "a partial in the card step is never published"
    assert all(isinstance(line["at"], str) and str(line["at"]).endswith("Z") for line in lines)
    everything = json.dumps([dict(c.payload) for c in call.commands(Publish) if isinstance(c, Publish)])
    assert "4321" not in everything and "four three" not in everything
    assert [s["step"] for s in published(call, "step")] == ["menu", "pay", "done"]


def test_an_alert_phrase_raises_an_alert_at_the_end_of_the_utterance(flow: Flow) -> None:
    call = start(flow)
    call.until_quiet()
    at = call.core.caller_position_s
    call.hear("I will call my lawyer")
    (alert,) = alerts(call)
    assert alert == {
        "rule": "legal",
        "kind": "phrase",
        "severity": "high",
        "at_s": round(at, 3),
        "evidence": "said 'lawyer'",
    }
    call.hear("lawyer lawyer")
    assert len(alerts(call)) == 1, "once per call"


def test_a_phrase_in_a_partial_raises_the_alert_before_the_final_but_never_in_a_secret_step(
    flow: Flow,
) -> None:
    call = start(flow)
    call.until_quiet()
    call.hear("balance")
    call.until_quiet()
    call.feed(AsrResults([AsrPartial("my lawyer", call.core.caller_position_s)]))
    assert alerts(call) == [], "a partial in the card step is matched against nothing"
    call = start(flow)
    call.until_quiet()
    call.feed(AsrResults([AsrPartial("i will call my lawyer", 2.5)]))
    (alert,) = alerts(call)
    assert alert["evidence"] == "said 'lawyer' (partial result)" and alert["at_s"] == 2.5


def test_a_redacted_answer_matches_no_phrase(flow: Flow) -> None:
    call = start(flow)
    call.until_quiet()
    call.hear("balance")
    call.until_quiet()
    call.hear("my lawyer says 4 3 2 1")  # said in the card step: recorded as [redacted speech]
    assert alerts(call) == []


def test_the_caller_silent_while_the_bot_waits_raises_one_alert(flow: Flow) -> None:
    call = start(flow)
    call.until_quiet()
    call.tick(150)  # 3 s: not yet
    assert alerts(call) == []
    call.tick(75)
    (alert,) = alerts(call)
    assert alert["rule"] == "silence"
    assert float(str(alert["evidence"]).split()[3]) == pytest.approx(4.0, abs=0.6)
    call.tick(10, caller=SPEECH)  # the caller speaks: the stretch is over
    call.tick(300)
    assert len(alerts(call)) == 1, "fires once per call"


def test_an_alert_action_offers_the_flows_agent(flow: Flow) -> None:
    call = start(flow)
    call.until_quiet()
    call.hear("I want to cancel everything")
    assert [a["rule"] for a in alerts(call)] == ["cancel"]
    assert alerts(call)[0]["action"] == {"offer_agent": True}
    call.until_quiet()
    assert call.prompts()[-1] == "Let me find you a person."
    assert call.core.summary().outcome == "offered_agent"


def test_an_action_to_a_step_the_flow_lacks_is_skipped_and_the_flow_goes_on(flow: Flow) -> None:
    rules = (
        "rules:\n  - {id: j, kind: phrase, phrases: [lost], flows: [watch-test], action: {goto: nowhere}}\n"
    )
    call = start(flow, rules)
    call.until_quiet()
    call.hear("lost card")
    call.until_quiet()
    assert [a["rule"] for a in alerts(call)] == ["j"]
    assert call.prompts()[-1] == "Bye.", "the flow followed the caller's answer"


def test_re_prompts_do_not_end_the_callers_silence(tmp_path_factory: pytest.TempPathFactory) -> None:
    quick = load_test_flow(
        tmp_path_factory.mktemp("quick"), FLOW.replace("no_input_timeout: 30s", "no_input_timeout: 2s")
    )
    rules = "rules:\n  - {id: quiet, kind: silence, seconds: 3}\n  - {id: twice, kind: no_input, count: 2}\n"
    call = start(quick, rules)
    call.until_quiet()
    call.tick(110)  # 2 s of waiting, then the no-input re-prompt
    call.until_quiet()
    assert alerts(call) == []
    call.tick(60)
    assert [a["rule"] for a in alerts(call)] == ["quiet"], "2 s + 1.2 s of waiting, around a re-prompt"
    call.tick(60)
    assert [a["rule"] for a in alerts(call)] == ["quiet", "twice"]
