"""The session protocol, stepped by hand: events and ``now`` in, actions out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows import (
    CallerHangUp,
    DtmfDigit,
    EmitEvent,
    FlowSession,
    HangUp,
    Listen,
    NoInput,
    PauseRecording,
    Play,
    PromptFinished,
    Recognition,
    ResumeRecording,
    SetOutcome,
    Transfer,
    TransferResult,
    load_flow,
)
from flows.model import Flow

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

FLOW = """
flow: {name: test, barge_in: true}
settings: {no_input_timeout: 5s, inter_digit_timeout: 2s, max_no_input: 2, max_no_match: 2}
variables: {pin: "", contact: {first_name: ""}}
steps:
  menu:
    say: "Hello {{ contact.first_name }}."
    ask: Balance or card?
    intents:
      balance: {phrases: [check my balance, balance], dtmf: "1", goto: pin, label: your balance}
      card: {phrases: [lost card], dtmf: "2", goto: card}
  pin:
    record: pause
    ask: Your PIN?
    slot: {type: digits, length: 4}
    save_as: pin
    confirm: never
    next: after_pin
  after_pin:
    record: resume
    emit: {event: pin_given, data: {length: "{{ pin | length }}"}}
    outcome: verified
    say: Thanks.
    hangup: true
  card:
    say: Important notice.
    barge_in: false
    next: agent
  agent:
    transfer: "queue:{{ 'cards' }}"
    on_failure: busy
  busy:
    say: Busy.
    hangup: agent_busy
  goodbye:
    say: Bye.
    hangup: caller_goodbye
"""


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    path: Path = tmp_path_factory.mktemp("flows") / "test.yaml"
    path.write_text(FLOW)
    return load_flow(path)


def plays(actions: Sequence[object]) -> list[str]:
    return [a.text for a in actions if isinstance(a, Play)]


def started(flow: Flow) -> tuple[FlowSession, list[object]]:
    session = FlowSession(flow, {"contact": {"first_name": "Ana"}}, NOW)
    return session, list(session.start(NOW))


def test_start_plays_prompts_then_listens_with_expected_phrases(flow: Flow) -> None:
    session, actions = started(flow)
    assert plays(actions) == ["Hello Ana.", "Balance or card?"]
    listen = actions[-1]
    assert isinstance(listen, Listen)
    assert listen.step == "menu" and not listen.open_vocabulary
    assert {"check my balance", "lost card", "agent", "repeat"} <= set(listen.phrases)
    assert listen.no_input_timeout_s == 5.0 and listen.dtmf.max_digits == 1
    assert session.state == "listening" and not session.finished
    assert session.handle(PromptFinished(interrupted=True), NOW) == []
    assert session.barge_ins == 1


def test_speech_intent_then_pin_by_keys_with_recording_paused(flow: Flow) -> None:
    session, _ = started(flow)
    actions = session.handle(Recognition("I'd like to check my balance please", 0.9), NOW)
    assert isinstance(actions[0], PauseRecording)
    assert plays(actions) == ["Your PIN?"]
    listen = actions[-1]
    assert isinstance(listen, Listen) and listen.dtmf.max_digits == 4 and listen.slot == "digits"
    out: list[object] = []
    for key in "4321":
        out += session.handle(DtmfDigit(key), NOW)
    assert isinstance(out[0], ResumeRecording)
    assert EmitEvent("pin_given", {"length": 4}) in out
    assert SetOutcome("verified") in out and out[-1] == HangUp("verified")
    assert session.finished and session.outcome == "verified" and session.variables["pin"] == "4321"
    assert session.handle(Recognition("hello", 1.0), NOW) == []


def test_short_key_entry_completes_on_inter_digit_timeout(flow: Flow) -> None:
    session, _ = started(flow)
    session.handle(DtmfDigit("1"), NOW)
    session.handle(DtmfDigit("1"), NOW)
    assert session.keys_pending
    actions = session.handle(NoInput(), NOW + timedelta(seconds=2))
    assert plays(actions) == ["Sorry, I didn't understand.", "Your PIN?"]
    assert session.variables["pin"] == ""


def test_no_input_reprompts_then_gives_up_politely(flow: Flow) -> None:
    session, _ = started(flow)
    first = session.handle(NoInput(), NOW)
    assert plays(first) == ["Sorry, I didn't hear anything.", "Balance or card?"]
    last = session.handle(NoInput(), NOW)
    assert last[-1] == HangUp("failed") and session.finished
    assert "trouble" in plays(last)[0]


def test_out_of_grammar_and_rejected_confidence_are_no_matches(flow: Flow) -> None:
    session, _ = started(flow)
    assert plays(session.handle(Recognition("balance", 0.9, in_grammar=False), NOW))[0].startswith("Sorry")
    actions = session.handle(Recognition("balance", 0.05), NOW)
    assert actions[-1] == HangUp("failed")


def test_low_confidence_is_confirmed_before_acting(flow: Flow) -> None:
    session, _ = started(flow)
    actions = session.handle(Recognition("balance", 0.3), NOW)
    assert plays(actions) == ["I think you said your balance. Is that right?"]
    assert session.state == "confirming" and session.listen is not None and session.listen.slot == "yes_no"
    actions = session.handle(Recognition("yes", 0.9), NOW)
    assert plays(actions) == ["Your PIN?"] and session.step == "pin"


def test_rejected_confirmation_asks_again(flow: Flow) -> None:
    session, _ = started(flow)
    session.handle(Recognition("balance", 0.3), NOW)
    actions = session.handle(DtmfDigit("2"), NOW)
    assert plays(actions) == ["Sorry about that. Let's try again.", "Balance or card?"]
    assert session.step == "menu"


def test_global_intents_repeat_help_agent(flow: Flow) -> None:
    session, _ = started(flow)
    assert plays(session.handle(Recognition("repeat that", 0.9), NOW)) == ["Hello Ana.", "Balance or card?"]
    assert plays(session.handle(DtmfDigit("*"), NOW)) == ["Hello Ana.", "Balance or card?"]
    assert "keypad" in plays(session.handle(Recognition("help", 0.9), NOW))[0]
    actions = session.handle(DtmfDigit("0"), NOW)
    assert actions == [Transfer("queue:cards", "agent")]


def test_barge_in_flag_and_failed_transfer(flow: Flow) -> None:
    session, _ = started(flow)
    actions = session.handle(DtmfDigit("2"), NOW)
    assert actions[0] == Play("Important notice.", False, "card")
    assert actions[-1] == Transfer("queue:cards", "agent")
    assert session.handle(Recognition("hello", 0.9), NOW) == []
    after = session.handle(TransferResult(False, "busy"), NOW)
    assert plays(after) == ["Busy."] and after[-1] == HangUp("agent_busy")


def test_answered_transfer_ends_the_session(flow: Flow) -> None:
    session, _ = started(flow)
    session.handle(DtmfDigit("0"), NOW)
    assert session.handle(TransferResult(True), NOW) == []
    assert session.finished and session.outcome == "transferred"


def test_caller_hang_up_keeps_an_outcome_already_set(flow: Flow) -> None:
    session, _ = started(flow)
    session.handle(CallerHangUp(), NOW)
    assert session.finished and session.outcome == "abandoned"


def test_each_session_has_its_own_variables(flow: Flow) -> None:
    first, _ = started(flow)
    second = FlowSession(flow, None, NOW)
    second.start(NOW)
    first.variables["contact"]["first_name"] = "changed"
    assert second.variables["contact"] == {"first_name": ""}
    assert flow.variables["contact"] == {"first_name": ""}


def test_flow_metadata_and_static_prompts(flow: Flow) -> None:
    assert flow.metadata.name == "test" and flow.metadata.barge_in
    prompts = flow.static_prompts()
    assert "Balance or card?" in prompts and "Important notice." in prompts
    assert not any("{{" in p for p in prompts)


def test_dates_are_the_callees_own_when_their_time_zone_is_known(tmp_path: Path) -> None:
    path = tmp_path / "day.yaml"
    path.write_text(
        """
flow: {name: day}
globals: {agent: false, goodbye: false}
variables: {day: ""}
steps:
  ask_day:
    ask: Which day?
    slot: date
    save_as: day
    confirm: never
    next: done
  done:
    say: "{{ today }} / {{ day }}"
    hangup: picked
"""
    )
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # already 3 March in Shanghai, still 2 March in UTC
    said = {}
    for zone in ("Asia/Shanghai", "", "Not/AZone"):
        session = FlowSession(load_flow(path), {"contact": {"timezone": zone}}, late)
        session.start(late)
        said[zone] = plays(session.handle(Recognition("tomorrow", 0.9), late))
    assert said["Asia/Shanghai"] == ["2026-03-03 / 2026-03-04"]
    assert said[""] == said["Not/AZone"] == ["2026-03-02 / 2026-03-03"]
