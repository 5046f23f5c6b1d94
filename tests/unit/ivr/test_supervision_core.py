"""A supervisor on a call, replayed through the call core: barge pauses the bot, take over
removes it for good, listen changes nothing the caller hears."""

from __future__ import annotations

import pytest

from flows.model import Flow
from ivr.call_vocabulary import (
    Command,
    DigitReceived,
    FarEndGone,
    PlayPrompt,
    PromptQueued,
    SendHangup,
    StopPlayback,
)
from supervision.supervisor_modes import Mode, SupervisionChanged
from tests.unit.ivr.call_replay import PROMPT_FRAME, SPEECH, SimulatedCall, load_test_flow

FLOW = """
flow: {name: supervised, barge_in: true}
settings: {no_input_timeout: 3s, max_no_input: 2, max_no_match: 2}
steps:
  menu:
    say: Welcome to the bank.
    ask: Balance or card?
    intents:
      balance: {phrases: [balance], dtmf: "1", goto: done}
      card: {phrases: [card], dtmf: "2", goto: done}
  done:
    say: Thanks.
    outcome: served
    hangup: true
  agent:
    say: Nobody is free.
    hangup: agent
  goodbye:
    say: Bye.
    hangup: goodbye
"""


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    return load_test_flow(tmp_path_factory.mktemp("supervised"), FLOW)


def supervise(call: SimulatedCall, mode: Mode | None) -> list[Command]:
    """Feed a mode change the way the replay feeds any event (prompts render at once)."""
    out = call.core.handle(SupervisionChanged(mode), call.now)
    call.log += [(call.now, c) for c in out]
    for command in list(out):
        if isinstance(command, PlayPrompt):
            call.bridge.play(command.prompt_id, [PROMPT_FRAME] * call.prompt_frames)
            out += call.feed(PromptQueued(command.prompt_id, call.prompt_frames))
        elif isinstance(command, StopPlayback):
            call.bridge.stop_playback()
    return out


def asr_runs(call: SimulatedCall) -> int:
    return len(call.asr_work)


def test_listen_changes_nothing_for_the_caller_or_the_bot(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    out = supervise(call, "listen")
    assert not any(isinstance(c, StopPlayback) for c in out), "the greeting plays on"
    call.until_quiet()
    assert call.prompts() == ["Welcome to the bank.", "Balance or card?"]
    call.hear("balance")
    assert call.prompts()[-1] == "Thanks."


def test_barge_stops_the_prompt_and_the_bot_stops_listening(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.tick(10)
    out = supervise(call, "barge")
    assert StopPlayback() in out, "the greeting is cut when the supervisor barges in"
    assert call.core.pipeline.listening is False
    prompts, runs = len(call.prompts()), asr_runs(call)
    call.tick(int(8 / 0.02), caller=SPEECH)  # the caller talks with the supervisor for 8 s
    call.tick(int(5 / 0.02))  # then silence well past the no-input timeout
    assert len(call.prompts()) == prompts, "no prompt, no re-ask, no no-input while barged in"
    assert asr_runs(call) == runs, "nothing the caller says reaches the recognizer"
    call.feed(DigitReceived("1", "rfc2833"))
    assert call.prompts()[-1] != "Thanks.", "the caller's keys are not the flow's while barged in"
    assert not call.hangups()


def test_back_to_listen_the_flow_carries_on_and_listens_again(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()  # the question was asked, the bot listens
    supervise(call, "barge")
    call.tick(50, caller=SPEECH)
    supervise(call, "listen")
    assert call.core.pipeline.listening, "the question is still open: the bot listens again"
    call.hear("card")
    assert call.prompts()[-1] == "Thanks."
    call.until_quiet()
    assert call.hangups() and call.core.summary().outcome == "served"


def test_barge_during_the_greeting_then_listen_lets_the_flow_go_on(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.tick(5)
    supervise(call, "barge")
    supervise(call, None)  # the supervisor hung up
    call.until_quiet()
    assert call.prompts()[-1] == "Balance or card?", "the flow went on after the cut greeting"


def test_take_over_removes_the_bot_for_good(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    supervise(call, "takeover")
    prompts, runs = len(call.prompts()), asr_runs(call)
    supervise(call, "listen")  # a stray change after a take-over never brings the bot back
    call.tick(int(10 / 0.02), caller=SPEECH)
    call.tick(int(10 / 0.02))
    call.feed(DigitReceived("2", "rfc2833"))
    assert len(call.prompts()) == prompts and asr_runs(call) == runs
    assert not call.hangups(), "caller and supervisor talk as long as they like"
    assert call.core.summary().outcome == "taken_over"


def test_supervisor_leaving_a_taken_over_call_ends_it(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    supervise(call, "takeover")
    call.tick(20)
    out = supervise(call, None)
    assert SendHangup() in out


def test_caller_leaving_a_taken_over_call_ends_it_without_bye(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    supervise(call, "takeover")
    call.feed(FarEndGone(by_remote=True))
    assert call.core.finished and not call.hangups()
