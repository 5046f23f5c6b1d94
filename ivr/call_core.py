"""One call's logic as a sans-I/O state machine: ``handle(event, now) -> commands``.

The core owns what a call decides: which prompt is on the line and when it finished, barge-in,
whether the recognizer is listening, the timers (inter-digit, maximum duration, BYE grace),
answering-machine screening, the transfer's phases, and the flow session it drives. It never
touches a socket, a thread, a file or a clock: :class:`~ivr.call_session.CallSession` feeds it
what happened (:mod:`ivr.call_vocabulary`) with ``now`` and carries out the commands it returns,
and replay tests drive it with nothing but events and times.

Two clocks: ``now`` (monotonic seconds) for timers, and the media clock (20 ms per frame that
crossed the bridge) for everything about audio, so prompts, speech and the recording agree.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime

from config.logs import log_event, mask_target
from flows import (
    Action,
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
)
from flows import Event as FlowEvent
from ivr.call_vocabulary import (
    AsrResults,
    CallSummary,
    Command,
    Connected,
    CoreEvent,
    DigitReceived,
    FarEndGone,
    HangupRequested,
    MediaDrained,
    PlayPrompt,
    PromptQueued,
    Publish,
    RunAsr,
    SendHangup,
    SetRecording,
    StartTransfer,
    StopPlayback,
    TransferUpdate,
    WriteTurn,
)
from ivr.caller_transcript import CallerTranscript, is_sensitive_name
from ivr.machine_screening import MachineScreening, Screener
from ivr.media_bridge import BridgeRecord
from ivr.prompt_queue import PromptEnded, PromptEvent, PromptQueue, PromptStarted
from media import pipeline as mp
from media.amd import Verdict
from media.asr.base import Expectation
from media.barge_in import BargeIn
from media.dtmf_detector import DtmfDigit as InBandDigit
from media.endpointer import NoInput as MediaNoInput
from media.frames import FRAME_MS, Frame

_log = logging.getLogger("ivr.call")
TICK_S = FRAME_MS / 1000
HANGUP_GRACE_S = 10.0
"""How long the far end may take to answer our BYE before the call is given up."""


class CallCore:
    """See the module docstring. Create when the call connects; feed :class:`Connected` first."""

    def __init__(
        self,
        call_id: str,
        flow: FlowSession,
        pipeline: mp.CallMediaPipeline,
        *,
        connected_at: float,
        wall_offset: float,
        max_duration_s: float,
        screening: MachineScreening | None = None,
    ) -> None:
        self.call_id = call_id
        self.flow = flow
        self.pipeline = pipeline
        self._t0 = connected_at
        self._wall_offset = wall_offset  # time.time() - time.monotonic()
        self._max_s = max_duration_s
        self._screening = screening
        self._screener: Screener | None = None
        self._flow_started = False
        self._prompts = PromptQueue()
        self._next_prompt = 1
        self._rendering: PlayPrompt | None = None  # at most one prompt being rendered
        self._drop_render = False
        self._held: deque[Action] = deque()  # flow actions waiting behind that render
        self._flow_inbox: deque[FlowEvent] = deque()
        self._caller_frames = 0
        self._bot_frames = 0
        self._digit_deadline: float | None = None
        self._hangup_requested = False
        self._hangup_sent_at: float | None = None
        self._transfer_target = ""
        self._max_duration_hit = False
        self._transcript = CallerTranscript()
        self._gone = False
        self._outcome = ""
        self._answered_by: Verdict | None = None
        self._message_left = False
        self._out: list[Command] = []
        self._now = connected_at

    # -- the interface ------------------------------------------------------------------
    def handle(self, event: CoreEvent, now: float) -> list[Command]:
        """Feed one event at ``now``; returns what to do, in order."""
        self._out = []
        self._now = now
        if isinstance(event, Connected):
            self._connected()
        elif isinstance(event, MediaDrained):
            self._media(event.records, event.frames)
        elif isinstance(event, PromptQueued):
            self._prompt_queued(event)
        elif isinstance(event, AsrResults):
            self._media_events(list(event.results))
        elif isinstance(event, DigitReceived):
            self._queue_flow(self._digit(event.digit, event.method))
        elif isinstance(event, HangupRequested):
            self._hangup_requested = True
            self._interrupt_prompts()
        elif isinstance(event, FarEndGone):
            self._far_end_gone(event.by_remote)
        elif isinstance(event, TransferUpdate):
            self._transfer_update(event)
        self._timers()
        self._drain_flow()
        self._maybe_send_hangup()
        return self._out

    def next_deadline(self) -> float | None:
        """When :class:`Tick` must be fed at the latest (None: only events matter)."""
        if self.finished:
            return None
        if self._hangup_sent_at is not None:
            return self._hangup_sent_at + HANGUP_GRACE_S
        candidates = [self._t0 + self._max_s]
        if self._digit_deadline is not None:
            candidates.append(self._digit_deadline)
        return min(candidates)

    @property
    def finished(self) -> bool:
        """Nothing more will happen: the far end is gone, or it never answered our BYE."""
        grace_over = self._hangup_sent_at is not None and self._now - self._hangup_sent_at > HANGUP_GRACE_S
        return self._gone or grace_over

    @property
    def prompts_busy(self) -> bool:
        """A prompt is playing, queued or being rendered (no ringback for a transfer then)."""
        return self._prompts.busy or self._rendering is not None

    @property
    def caller_position_s(self) -> float:
        return self._caller_frames * TICK_S

    def summary(self) -> CallSummary:
        outcome = self.flow.outcome or self._outcome if self._flow_started else self._outcome
        return CallSummary(
            outcome=outcome,
            flow_started=self._flow_started,
            flow_variables=dict(self.flow.variables) if self._flow_started else {},
            answered_by=self._answered_by,
            message_left=self._message_left,
            hangup_sent=self._hangup_sent_at is not None,
        )

    # -- phases -------------------------------------------------------------------------
    def _connected(self) -> None:
        if self._screening is not None:
            self._screener = Screener(self._screening)
        else:
            self._start_flow()

    def _start_flow(self) -> None:
        self._flow_started = True
        self._apply(self.flow.start(self._utc()))

    def _screen(self) -> None:
        screener = self._screener
        assert screener is not None
        for event in screener.poll(self.caller_position_s):
            log_event(
                "call.amd",
                logger=_log,
                call_id=self.call_id,
                verdict=event.verdict.value,
                reason=event.reason.value,
                after_s=round(event.after_s, 2),
            )
        if not screener.done:
            return
        self._screener = None
        self._answered_by = screener.verdict or Verdict.NOTSURE
        if self._answered_by is not Verdict.MACHINE:
            self._start_flow()
        elif screener.message:
            self._message_left = True
            self._apply(
                [Play(screener.message, barge_in=False, step="machine_message"), HangUp("message_left")]
            )
        else:
            self._apply([HangUp("machine")])

    def _far_end_gone(self, by_remote: bool) -> None:
        self._gone = True
        self._flush_redacted()
        self._interrupt_prompts()
        if self._screener is not None:
            self._screener = None
            self._answered_by = Verdict.NOTSURE  # hung up while we listened: not a machine verdict
        elif by_remote and self._flow_started:
            self._flow_inbox.append(CallerHangUp())

    # -- audio --------------------------------------------------------------------------
    def _media(self, records: Sequence[BridgeRecord], frames: Sequence[Frame]) -> None:
        events: list[mp.MediaEvent] = []
        prompt_events: list[PromptEvent] = []
        for record, frame in zip(records, frames, strict=True):
            if record.side == "caller":
                at = self.caller_position_s
                if self._screener is not None:
                    self._screener.push_frame(frame, at)
                events += self.pipeline.push_caller_frame(frame, at)
                self._caller_frames += 1
            else:
                if record.pcm is not None:
                    self.pipeline.prompt_frame(frame)
                prompt_events += self._prompts.frame_sent(
                    record.prompt_id, record.last_of_prompt, self._bot_frames * TICK_S
                )
                self._bot_frames += 1
        prompt_events += self._prompts.flush_empty(self._bot_frames * TICK_S)
        self._on_prompt_events(prompt_events)
        events += self.pipeline.check_timers(self.caller_position_s)
        if self._screener is not None and not self._gone:
            self._screen()
        self._media_events(events)
        work = self.pipeline.take_asr_work()
        if work:
            self._out.append(RunAsr(tuple(work)))

    def _on_prompt_events(self, prompt_events: Sequence[PromptEvent]) -> None:
        for pe in prompt_events:
            prompt = pe.prompt
            self._flush_redacted()
            if isinstance(pe, PromptStarted):
                self.pipeline.prompt_started(prompt.barge_in, self.caller_position_s)
                continue
            assert isinstance(pe, PromptEnded)
            start = prompt.start_s or 0.0
            self._out.append(WriteTurn("bot", prompt.text, start, max(start, prompt.end_s or start)))
            self._flow_inbox.append(PromptFinished(interrupted=prompt.interrupted))
            if not self._prompts.busy:
                self.pipeline.prompt_finished(self.caller_position_s)

    def _interrupt_prompts(self) -> None:
        self._out.append(StopPlayback())
        if self._rendering is not None:
            self._drop_render = True
        self._on_prompt_events(self._prompts.interrupt(self._bot_frames * TICK_S))

    def _media_events(
        self, events: Sequence[mp.MediaEvent | mp.AsrPartial | mp.AsrFinal | mp.AsrFailed]
    ) -> None:
        for event in events:
            if isinstance(event, BargeIn):
                current = self._prompts.current
                if current is not None and current.barge_in:
                    log_event("call.barge_in", logger=_log, call_id=self.call_id, at_s=round(event.at, 3))
                    self._interrupt_prompts()
            elif isinstance(event, mp.AsrFinal):
                result = event.result
                self.pipeline.stop_listening()
                confidence = min(1.0, max(0.0, result.confidence))
                self._out += self._transcript.speech(
                    result.text, event.speech_started_at, event.speech_ended_at, confidence, self._sensitive()
                )
                log_event(
                    "call.heard",
                    logger=_log,
                    call_id=self.call_id,
                    words=len(result.text.split()),
                    confidence=round(result.confidence, 3),
                    in_grammar=result.in_grammar,
                )
                self._flow_inbox.append(Recognition(result.text, result.confidence, result.in_grammar))
            elif isinstance(event, mp.AsrFailed):
                self.pipeline.stop_listening()
                log_event("call.asr_failed", logging.WARNING, _log, call_id=self.call_id, reason=event.reason)
                self._flow_inbox.append(Recognition("", 0.0, in_grammar=False))  # a no-match to the flow
            elif isinstance(event, mp.NonSpeech):
                self.pipeline.stop_listening()
                log_event("call.non_speech", logger=_log, call_id=self.call_id, at_s=round(event.at, 2))
                self._flow_inbox.append(Recognition("", 0.0, in_grammar=False))  # a no-match, never an intent
            elif isinstance(event, MediaNoInput):
                self.pipeline.stop_listening()
                log_event("call.no_input", logger=_log, call_id=self.call_id)
                self._flow_inbox.append(NoInput())
            elif isinstance(event, InBandDigit):
                self._queue_flow(self._digit(event.digit, "inband"))

    def _digit(self, digit: str, method: str) -> list[FlowEvent]:
        current = self._prompts.current
        if current is not None and current.barge_in:
            self._interrupt_prompts()
        at = self.caller_position_s
        self._out += self._transcript.digit(digit, at, self._sensitive())
        log_event("call.dtmf", logger=_log, call_id=self.call_id, method=method)
        return [DtmfDigit(digit)]

    def _sensitive(self) -> bool:
        """The current question saves into a variable named like a PIN, card number or CVV."""
        step = self.flow.flow.steps.get(self.flow.step)
        return step is not None and step.ask is not None and is_sensitive_name(step.ask.save_as)

    def _flush_redacted(self) -> None:
        self._out += self._transcript.flush(self.caller_position_s)

    def _queue_flow(self, events: Sequence[FlowEvent]) -> None:
        self._flow_inbox.extend(events)

    # -- the flow -----------------------------------------------------------------------
    def _drain_flow(self) -> None:
        while self._flow_inbox:
            event = self._flow_inbox.popleft()
            if self._flow_started and not self.flow.finished:
                self._apply(self.flow.handle(event, self._utc()))

    def _apply(self, actions: Sequence[Action]) -> None:
        self._held.extend(actions)
        while self._held and self._rendering is None:
            self._do(self._held.popleft())
        if self.flow.keys_pending and (listen := self.flow.listen) is not None and self._flow_started:
            self._digit_deadline = self._now + listen.dtmf.inter_digit_timeout_s
        else:
            self._digit_deadline = None

    def _do(self, action: Action) -> None:
        if isinstance(action, Play):
            if self._gone:
                return  # nobody left to hear it
            self._rendering = PlayPrompt(self._next_prompt, action.text, action.barge_in, action.step)
            self._next_prompt += 1
            self._out.append(self._rendering)
        elif isinstance(action, Listen):
            expectation = Expectation(phrases=action.phrases, open_vocabulary=action.open_vocabulary)
            self.pipeline.start_listening(expectation, action.no_input_timeout_s, self.caller_position_s)
        elif isinstance(action, HangUp):
            self._outcome = action.outcome
            self.pipeline.stop_listening()
            self._hangup_requested = True
        elif isinstance(action, SetOutcome):
            self._outcome = action.outcome
        elif isinstance(action, PauseRecording):
            self._transcript.recording_paused = True
            self._out.append(SetRecording(paused=True, reason="flow step"))
        elif isinstance(action, ResumeRecording):
            self._flush_redacted()
            self._transcript.recording_paused = False
            self._out.append(SetRecording(paused=False))
        elif isinstance(action, EmitEvent):
            self._out.append(Publish("flow_event", {"name": action.name, **dict(action.data)}))
        elif isinstance(action, Transfer):
            self._transfer_target = action.target
            self.pipeline.stop_listening()
            self._out.append(StartTransfer(action.target))

    def _prompt_queued(self, event: PromptQueued) -> None:
        request = self._rendering
        if request is None or request.prompt_id != event.prompt_id:
            return
        self._rendering = None
        prompt = self._prompts.add(
            request.text, request.barge_in, event.frames, request.step, request.prompt_id
        )
        log_event(
            "call.prompt",
            logger=_log,
            call_id=self.call_id,
            step=request.step,
            seconds=round(event.frames * TICK_S, 2),
            barge_in=request.barge_in,
        )
        if self._drop_render:
            self._drop_render = False
            self._interrupt_prompts()
        elif self._prompts.current is prompt:
            self.pipeline.prompt_started(request.barge_in, self.caller_position_s)
        self._apply([])  # carry on with what waited behind this prompt

    def _transfer_update(self, event: TransferUpdate) -> None:
        if event.agent_left:
            if not self._hangup_requested:
                log_event("call.agent_hung_up", logger=_log, call_id=self.call_id)
                self._hangup_requested = True
            return
        name = "transferred" if event.success else "transfer_failed"
        target = mask_target(self._transfer_target)
        log_event(f"call.{name}", logger=_log, call_id=self.call_id, target=target, reason=event.reason)
        self._out.append(Publish(name, {"target": target, "reason": event.reason}))
        self._flow_inbox.append(TransferResult(success=event.success, reason=event.reason))

    # -- timers -------------------------------------------------------------------------
    def _timers(self) -> None:
        now = self._now
        if self._digit_deadline is not None and now >= self._digit_deadline:
            self._digit_deadline = None
            self._flow_inbox.append(NoInput())
        if self._hangup_sent_at is None and not self._max_duration_hit and now - self._t0 > self._max_s:
            log_event("call.max_duration", logging.WARNING, _log, call_id=self.call_id, limit_s=self._max_s)
            self._max_duration_hit = True
            self._hangup_requested = True
            self._interrupt_prompts()

    def _maybe_send_hangup(self) -> None:
        if (
            self._hangup_requested
            and not self.prompts_busy
            and self._hangup_sent_at is None
            and not self._gone
        ):
            self._flush_redacted()
            self._hangup_sent_at = self._now
            self._out.append(SendHangup())

    def _utc(self) -> datetime:
        return datetime.fromtimestamp(self._now + self._wall_offset, UTC)
