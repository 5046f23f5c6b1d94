"""The call core replayed: every path a call can take, with no sockets, threads or sleeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from config.settings import MediaSettings
from flows import FlowSession
from flows.model import Flow
from ivr.call_core import HANGUP_GRACE_S, CallCore
from ivr.call_vocabulary import (
    AsrResults,
    Connected,
    DigitReceived,
    FarEndGone,
    HangupRequested,
    PlayPrompt,
    PromptQueued,
    Publish,
    SendHangup,
    SetRecording,
    StartTransfer,
    StopPlayback,
    Tick,
    TransferUpdate,
)
from ivr.machine_screening import MachineScreening
from media.amd import AmdConfig, Verdict
from media.asr.base import FinalResult
from media.pipeline import AsrFinal, AsrFinish, CallMediaPipeline
from recordings.sidecar import LATENCY_KEYS
from tests.unit.ivr.call_replay import SPEECH, T0, WALL_OFFSET, LoudnessVad, SimulatedCall, load_test_flow
from tests.unit.ivr.call_replay import tone as tone_frame

FLOW = """
flow: {name: core-test, barge_in: true}
settings: {no_input_timeout: 3s, inter_digit_timeout: 2s, max_no_input: 2, max_no_match: 2}
variables: {pin: ""}
steps:
  menu:
    say: Welcome.
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
    emit: {event: pin_given}
    outcome: verified
    say: Thanks.
    hangup: true
  card:
    say: Important notice about your card.
    barge_in: false
    next: agent
  agent:
    transfer: "queue:cards"
    on_failure: busy
  busy:
    say: All agents are busy.
    hangup: agent_busy
  goodbye:
    say: Bye.
    hangup: caller_goodbye
"""


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    return load_test_flow(tmp_path_factory.mktemp("core"), FLOW)


def test_the_question_waits_until_the_greeting_is_rendered(flow: Flow) -> None:
    session = FlowSession(flow, {}, None)
    pipeline = CallMediaPipeline(MediaSettings(), vad=LoudnessVad(), in_band_dtmf=False)
    core = CallCore("c", session, pipeline, connected_at=T0, wall_offset=WALL_OFFSET, max_duration_s=60)
    out = core.handle(Connected(), T0)
    assert [c.text for c in out if isinstance(c, PlayPrompt)] == ["Welcome."]
    assert core.prompts_busy
    out = core.handle(PromptQueued(1, 50), T0 + 0.3)
    assert [c.text for c in out if isinstance(c, PlayPrompt)] == ["Balance or card?"]
    assert core.handle(PromptQueued(99, 50), T0 + 0.4) == [], "a stale render is ignored"


def test_greeting_then_question_then_an_answer_leads_on(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    assert call.prompts() == ["Welcome.", "Balance or card?"]
    assert [t.text for t in call.turns("bot")] == ["Welcome.", "Balance or card?"]
    first, second = call.turns("bot")
    assert first.end_s == pytest.approx(1.0) and second.start_s == pytest.approx(1.0)
    assert call.asr_work, "listening set the recognizer's expectation"
    call.hear("lost card")
    assert call.prompts()[-1] == "Important notice about your card."
    assert call.turns("caller")[-1].text == "lost card"


def test_keys_answer_the_question_and_a_pause_step_pauses_the_recording(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    call.feed(DigitReceived("1", "rfc2833"))
    assert call.commands(SetRecording) == [SetRecording(paused=True, reason="flow step")]
    call.until_quiet()
    for key in "4321":
        call.feed(DigitReceived(key, "rfc2833"))
    assert SetRecording(paused=False) in call.commands(SetRecording)
    assert Publish("flow_event", {"name": "pin_given"}) in call.commands(Publish)
    call.until_quiet()
    assert call.hangups(), "hang-up after the last prompt played out"
    assert call.core.summary().outcome == "verified"
    # PCI: the PIN never reaches the transcript, only how many keys were pressed.
    assert [t.text for t in call.turns("caller")] == ["#1", "[redacted: 4 digits]"]


def test_spoken_answers_to_a_sensitive_question_are_redacted(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    call.hear("check my balance")
    call.until_quiet()
    call.hear("four three two one")
    texts = [t.text for t in call.turns("caller")]
    assert texts == ["check my balance", "[redacted speech]"]
    assert not any("four" in t.text for t in call.turns("caller") + call.turns("bot"))


def test_a_question_saving_into_a_card_variable_is_sensitive_without_a_pause(tmp_path: Path) -> None:
    flow = load_test_flow(
        tmp_path,
        """
flow: {name: card, barge_in: true}
steps:
  card:
    ask: Card number?
    slot: {type: digits, length: 4}
    save_as: card_number
    confirm: never
    next: done
  done:
    say: Thanks.
    hangup: done
  agent:
    say: Agent.
    hangup: agent
  goodbye:
    say: Bye.
    hangup: goodbye
""",
    )
    call = SimulatedCall.start(flow)
    call.until_quiet()
    for key in "4111":
        call.feed(DigitReceived(key, "rfc2833"))
    call.until_quiet()
    assert [t.text for t in call.turns("caller")] == ["[redacted: 4 digits]"]


def test_a_digit_during_a_barge_in_prompt_cuts_it(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.tick(10)  # 0.2 s into the greeting
    call.feed(DigitReceived("2", "rfc2833"))
    assert StopPlayback() in call.commands(StopPlayback)
    greeting = call.turns("bot")[0]
    assert greeting.text == "Welcome." and greeting.end_s == pytest.approx(0.2)
    assert call.prompts()[-1] == "Important notice about your card."


def test_speech_during_a_prompt_without_barge_in_does_not_stop_it(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    call.hear("lost card")
    stops_before = len(call.commands(StopPlayback))
    call.tick(25, caller=SPEECH)
    assert len(call.commands(StopPlayback)) == stops_before
    call.until_quiet()
    assert call.turns("bot")[-1].text == "Important notice about your card."
    assert call.turns("bot")[-1].end_s - call.turns("bot")[-1].start_s == pytest.approx(1.0)


def test_speech_barges_in_on_a_barge_in_prompt(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    call.hear("mumble", confidence=0.2, in_grammar=False)  # a no-match: the flow re-asks
    call.tick(10)
    call.tick(15, caller=SPEECH)
    assert call.commands(StopPlayback), "caller speech stopped the prompt"


def test_silence_gives_no_input_reprompts_then_a_polite_end(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    asked = len(call.prompts())
    call.tick(int(3.2 / 0.02))
    assert len(call.prompts()) > asked, "no input after 3 s re-asks"
    for _ in range(3):
        call.until_quiet()
        call.tick(int(3.2 / 0.02))
    assert call.hangups()


def test_caller_hanging_up_during_the_greeting_ends_the_call(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.tick(5)
    call.feed(FarEndGone(by_remote=True))
    assert call.core.finished
    assert not call.hangups(), "no BYE to someone who already left"
    assert call.turns("bot")[0].end_s == pytest.approx(0.1)


def test_far_end_gone_while_a_prompt_renders_drops_it(flow: Flow) -> None:
    call = SimulatedCall.start(flow, prompt_frames=50)
    call.until_quiet()
    call.hear("lost card")  # "Important notice" rendered and queued at once by the replay
    # A prompt still rendering when the caller leaves: queue it late, after the hang-up.
    core = call.core
    out = core.handle(FarEndGone(by_remote=True), call.now)
    assert StopPlayback() in out
    assert core.finished and not core.prompts_busy


def test_render_outstanding_holds_later_actions_and_a_late_prompt_is_cut(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    core = call.core
    # Feed the core directly to keep a render outstanding.
    call.until_quiet()
    out = core.handle(DigitReceived("2", "rfc2833"), call.now)
    play = next(c for c in out if isinstance(c, PlayPrompt))
    assert not any(isinstance(c, StartTransfer) for c in out), "transfer waits behind the notice"
    out = core.handle(HangupRequested("shutdown"), call.now)
    out = core.handle(PromptQueued(play.prompt_id, 50), call.now)
    assert StopPlayback() in out
    assert any(isinstance(c, SendHangup) for c in out)


def test_transfer_failure_takes_the_failure_branch(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    call.feed(DigitReceived("2", "rfc2833"))
    call.until_quiet()
    assert call.commands(StartTransfer) == [StartTransfer("queue:cards")]
    call.feed(TransferUpdate(success=False, reason="busy"))
    assert Publish("transfer_failed", {"target": "queue:cards", "reason": "busy"}) in call.commands(Publish)
    call.until_quiet()
    assert call.prompts()[-1] == "All agents are busy."
    assert call.hangups() and call.core.summary().outcome == "agent_busy"


def test_agent_hanging_up_hangs_up_the_caller(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    call.feed(DigitReceived("2", "rfc2833"))
    call.until_quiet()
    call.feed(TransferUpdate(success=True))
    assert not call.hangups()
    call.feed(TransferUpdate(agent_left=True))
    assert call.hangups()


def test_maximum_duration_cuts_the_prompt_and_hangs_up(flow: Flow) -> None:
    call = SimulatedCall.start(flow, max_duration_s=0.5, prompt_frames=100)
    call.tick(30)
    assert call.commands(StopPlayback)
    assert call.hangups()


def test_a_bye_never_answered_is_given_up_after_the_grace(flow: Flow) -> None:
    call = SimulatedCall.start(flow, max_duration_s=0.2)
    call.tick(20)
    sent = call.hangups()[0]
    assert not call.core.finished
    assert call.core.next_deadline() == pytest.approx(sent + HANGUP_GRACE_S)
    call.now = sent + HANGUP_GRACE_S + 0.01
    call.feed(Tick())
    assert call.core.finished


def test_screening_silence_is_a_machine_and_ends_the_call_without_the_flow(flow: Flow) -> None:
    call = SimulatedCall.start(flow, screening=MachineScreening(AmdConfig()))
    assert call.prompts() == []
    call.tick(int(3.0 / 0.02))
    summary = call.core.summary()
    assert summary.answered_by is Verdict.MACHINE  # Asterisk's rule: 2.5 s of initial silence
    assert list(call.hangups()) == pytest.approx([T0 + 2.5], abs=0.05)
    assert summary.outcome == "machine" and call.prompts() == [] and not summary.flow_started


def test_screening_a_machine_with_a_message_to_leave_plays_it_then_hangs_up(flow: Flow) -> None:
    call = SimulatedCall.start(flow, screening=MachineScreening(AmdConfig(), message="Please call us back."))
    call.tick(int(3.0 / 0.02))  # silence: machine; with a message the core waits for its cue
    call.tick(int(2.0 / 0.02))
    summary = call.core.summary()
    assert summary.answered_by is Verdict.MACHINE and summary.message_left
    assert call.prompts() == ["Please call us back."]
    call.until_quiet()
    assert call.hangups() and call.core.summary().outcome == "message_left"


def test_screening_a_person_who_speaks_briefly_starts_the_flow(flow: Flow) -> None:
    call = SimulatedCall.start(flow, screening=MachineScreening(AmdConfig()))
    call.tick(25)  # a short silence, then "Hello?"
    call.tick(30, caller=SPEECH)
    call.tick(100)
    summary = call.core.summary()
    assert summary.answered_by is Verdict.HUMAN
    assert call.prompts()[:1] == ["Welcome."] and summary.flow_started


def test_hang_up_while_screening_is_not_a_machine_verdict(flow: Flow) -> None:
    call = SimulatedCall.start(flow, screening=MachineScreening(AmdConfig()))
    call.tick(10)
    call.feed(FarEndGone(by_remote=True))
    assert call.core.finished and call.core.summary().answered_by is Verdict.NOTSURE


def test_inter_digit_timeout_ends_a_short_pin(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    call.feed(DigitReceived("1", "rfc2833"))
    call.until_quiet()
    call.feed(DigitReceived("4", "rfc2833"))
    asked = len(call.prompts())
    call.tick(int(2.2 / 0.02))
    assert len(call.prompts()) > asked, "2 s after the last key the flow moved on"


def test_a_steady_tone_is_a_no_match_never_an_intent(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    asked = len(call.prompts())
    tone = tone_frame(9000, 440.0)
    call.tick(75, caller=tone)  # 1.5 s of a test tone, then quiet
    call.tick(60)  # quiet past the end of turn (held 1 s while no complete phrase is heard)
    assert call.asr_work and not any(
        isinstance(w, AsrFinish) for command in call.asr_work for w in command.work
    ), "the recognizer never got to finish the tone"
    assert call.prompts()[asked:] == ["Sorry, I didn't understand.", "Balance or card?"], "a no-match"
    assert call.turns("caller") == []


def test_a_reply_to_speech_carries_its_delay_marks_in_order(flow: Flow) -> None:
    call = SimulatedCall.start(flow)
    call.until_quiet()
    started = call.core.caller_position_s
    noise = np.random.default_rng(7).normal(0, 6000, (25, 160)).clip(-32768, 32767).astype("<i2")
    for frame in noise:  # half a second of loud noise: speech to the VAD, not a steady tone
        call.tick(caller=frame.tobytes())
    ended = call.core.caller_position_s
    for _ in range(60):  # silence until the end of the turn is decided
        call.tick()
        if any(isinstance(item, AsrFinish) for command in call.asr_work for item in command.work):
            break
    decided = call.core.caller_position_s
    call.tick(2)  # the recognizer takes two ticks
    call.feed(AsrResults([AsrFinal(FinalResult("lost card", 0.9, in_grammar=True), started, ended)]))
    call.until_quiet()
    reply = call.turns("bot")[-1]
    assert reply.text == "Important notice about your card." and reply.latency is not None
    marks = [reply.latency[key] for key in LATENCY_KEYS]
    assert marks == sorted(marks)
    assert marks[0] == pytest.approx(ended) and marks[1] == pytest.approx(decided)
    assert marks[3] == pytest.approx(reply.start_s)
    assert call.turns("bot")[0].latency is None  # the greeting answers nobody
