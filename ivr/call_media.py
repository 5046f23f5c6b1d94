"""The call core's media side: what the caller hears and says, on the media clock.

:class:`CallMedia` owns the prompts (the one being rendered, the queue on the line and when each
started and finished), barge-in, whether the recognizer is listening, digits, and the caller's
transcript with its redactions. It turns frames that crossed the bridge and the recognizer's
answers into commands and flow events on the shared :class:`~ivr.call_state.CallState`. Sans-I/O,
like the rest of the core: positions come from counting 20 ms frames, never from a clock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from config.logs import log_event
from flows import DtmfDigit, Listen, NoInput, Play, PromptFinished, Recognition
from ivr.call_state import CallState
from ivr.call_vocabulary import PlayPrompt, PromptQueued, RunAsr, SetRecording, StopPlayback, WriteTurn
from ivr.caller_transcript import CallerTranscript, is_sensitive_name
from ivr.machine_screening import Screener
from ivr.media_bridge import BridgeRecord
from ivr.prompt_queue import Prompt, PromptEnded, PromptEvent, PromptQueue, PromptStarted
from media import pipeline as mp
from media.asr.base import Expectation
from media.barge_in import BargeIn
from media.dtmf_detector import DtmfDigit as InBandDigit
from media.endpointer import NoInput as MediaNoInput
from media.frames import FRAME_MS, Frame
from supervision.call_watch import CallWatch

_log = logging.getLogger("ivr.call")
TICK_S = FRAME_MS / 1000
MediaResult = mp.MediaEvent | mp.AsrPartial | mp.AsrFinal | mp.AsrFailed


class CallMedia:
    """See the module docstring."""

    def __init__(
        self, state: CallState, pipeline: mp.CallMediaPipeline, watch: CallWatch | None = None
    ) -> None:
        self._state = state
        self.pipeline = pipeline
        self.watch = watch or CallWatch(state)
        """Publishes the transcript and step, feeds the alert rules (:mod:`supervision.call_watch`)."""
        self._prompts = PromptQueue()
        self._next_prompt = 1
        self._rendering: PlayPrompt | None = None  # at most one prompt being rendered
        self._decided_s: float | None = None
        self._reply_marks: dict[str, float] | None = None
        self._drop_render = False
        self._caller_frames = 0
        self._bot_frames = 0
        self._transcript = CallerTranscript()

    @property
    def caller_position_s(self) -> float:
        return self._caller_frames * TICK_S

    @property
    def busy(self) -> bool:
        """A prompt is playing, queued or being rendered."""
        return self._prompts.busy or self._rendering is not None

    @property
    def rendering(self) -> bool:
        """A prompt is being rendered: flow actions behind it wait."""
        return self._rendering is not None

    # -- frames and recognizer answers -----------------------------------------------------
    def frames(
        self, records: Sequence[BridgeRecord], frames: Sequence[Frame], screener: Screener | None
    ) -> list[mp.MediaEvent]:
        """Frames that crossed the bridge: advance both clocks and the prompts; returns what the
        caller's audio raised (barge-in, no-input, digits) for :meth:`heard`."""
        events: list[mp.MediaEvent] = []
        prompt_events: list[PromptEvent] = []
        caller: list[Frame] = []  # the caller frames of this drain, in order
        starts: list[float] = []
        sent: list[list[Frame]] = []  # per caller frame: what the bot sent in its tick, before it
        sending: list[Frame] = []
        for record, frame in zip(records, frames, strict=True):
            if record.side == "caller":
                at = (self._caller_frames + len(caller)) * TICK_S
                if screener is not None:
                    screener.push_frame(frame, at)
                caller.append(frame)
                starts.append(at)
                sent.append(sending)
                sending = []
            else:
                if record.pcm is not None:
                    sending.append(frame)
                prompt_events += self._prompts.frame_sent(
                    record.prompt_id, record.last_of_prompt, self._bot_frames * TICK_S
                )
                self._bot_frames += 1
        # One pass over the whole drain: the numbers for all frames at once, the state machines
        # frame by frame, exactly as prompt_frame / push_caller_frame per record would.
        raised_per_frame = self.pipeline.push_caller_frames(caller, starts, sent)
        for frame, at, raised in zip(caller, starts, raised_per_frame, strict=True):
            self.watch.caller_frame(frame, raised, at)
            events += raised
        self._caller_frames += len(caller)
        for frame in sending:  # sent after the last caller frame: the next drain's echo reference
            self.pipeline.prompt_frame(frame)
        prompt_events += self._prompts.flush_empty(self._bot_frames * TICK_S)
        self._on_prompt_events(prompt_events)
        events += self.pipeline.check_timers(self.caller_position_s)
        return events

    def queue_asr_work(self) -> None:
        work = self.pipeline.take_asr_work()
        if work:
            # The end of the caller's turn as far as we know: a pause checked for a complete
            # phrase (a final may come of it) or the end of the utterance (a later one wins).
            if any(isinstance(item, mp.AsrFinish | mp.AsrCheck) for item in work):
                self._decided_s = self.caller_position_s
            self._state.out.append(RunAsr(tuple(work)))

    def heard(self, events: Sequence[MediaResult]) -> None:
        """Media events and recognizer answers: barge-in, results, no-input, in-band digits."""
        state = self._state
        for event in events:
            if isinstance(event, BargeIn):
                current = self._prompts.current
                if current is not None and current.barge_in:
                    log_event("call.barge_in", logger=_log, call_id=state.call_id, at_s=round(event.at, 3))
                    self.interrupt()
            elif isinstance(event, mp.AsrFinal):
                result = event.result
                self.pipeline.stop_listening()
                confidence = min(1.0, max(0.0, result.confidence))
                turns = self._transcript.speech(
                    result.text, event.speech_started_at, event.speech_ended_at, confidence, self._sensitive()
                )
                self.watch.turns(turns)
                matched = bool(result.text.strip()) and result.in_grammar
                self.watch.caller_final(turns[-1].text, matched, event.speech_ended_at)
                log_event(
                    "call.heard",
                    logger=_log,
                    call_id=state.call_id,
                    words=len(result.text.split()),
                    confidence=round(result.confidence, 3),
                    in_grammar=result.in_grammar,
                )
                state.flow_inbox.append(Recognition(result.text, result.confidence, result.in_grammar))
                self._reply_marks = {
                    "speech_end_s": event.speech_ended_at,
                    "decided_s": self._decided_s if self._decided_s is not None else event.speech_ended_at,
                    "asr_final_s": self.caller_position_s,
                }
            elif isinstance(event, mp.AsrPartial):
                self.watch.partial(
                    event.text, event.at, self._sensitive() or self._transcript.recording_paused
                )
            elif isinstance(event, mp.AsrFailed):
                self.pipeline.stop_listening()
                self.watch.caller_final("", False, self.caller_position_s)
                log_event(
                    "call.asr_failed", logging.WARNING, _log, call_id=state.call_id, reason=event.reason
                )
                state.flow_inbox.append(Recognition("", 0.0, in_grammar=False))  # a no-match to the flow
            elif isinstance(event, mp.NonSpeech):
                self.pipeline.stop_listening()
                log_event("call.non_speech", logger=_log, call_id=state.call_id, at_s=round(event.at, 2))
                self.watch.caller_final("", False, event.at)
                state.flow_inbox.append(Recognition("", 0.0, in_grammar=False))  # a no-match, never an intent
            elif isinstance(event, MediaNoInput):
                self.pipeline.stop_listening()
                log_event("call.no_input", logger=_log, call_id=state.call_id)
                self.watch.no_input(self.caller_position_s)
                state.flow_inbox.append(NoInput())
            elif isinstance(event, InBandDigit):
                self.digit(event.digit, "inband")

    def digit(self, digit: str, method: str) -> None:
        """A key the caller pressed (RFC 2833, SIP INFO or in-band): it barges in, then goes to the flow."""
        current = self._prompts.current
        if current is not None and current.barge_in:
            self.interrupt()
        at = self.caller_position_s
        self.watch.caller_active()
        self.watch.turns(self._transcript.digit(digit, at, self._sensitive()))
        log_event("call.dtmf", logger=_log, call_id=self._state.call_id, method=method)
        self._state.flow_inbox.append(DtmfDigit(digit))

    # -- prompts --------------------------------------------------------------------------
    def render(self, action: Play) -> None:
        """Ask the adapter to render ``action``; actions behind it wait for :meth:`rendered`."""
        self._rendering = PlayPrompt(self._next_prompt, action.text, action.barge_in, action.step)
        self._next_prompt += 1
        self._state.out.append(self._rendering)

    def rendered(self, event: PromptQueued) -> bool:
        """The adapter queued a rendered prompt; False for a stale one (nothing changes then)."""
        request = self._rendering
        if request is None or request.prompt_id != event.prompt_id:
            return False
        self._rendering = None
        prompt = self._prompts.add(
            request.text, request.barge_in, event.frames, request.step, request.prompt_id
        )
        log_event(
            "call.prompt",
            logger=_log,
            call_id=self._state.call_id,
            step=request.step,
            seconds=round(event.frames * TICK_S, 2),
            barge_in=request.barge_in,
        )
        if self._drop_render:
            self._drop_render = False
            self.interrupt()
        elif self._prompts.current is prompt:
            self.pipeline.prompt_started(request.barge_in, self.caller_position_s)
        return True

    def interrupt(self) -> None:
        """Cut every prompt: the one playing, those queued, and the one being rendered."""
        self._state.out.append(StopPlayback())
        if self._rendering is not None:
            self._drop_render = True
        self._on_prompt_events(self._prompts.interrupt(self._bot_frames * TICK_S))

    def _on_prompt_events(self, prompt_events: Sequence[PromptEvent]) -> None:
        state = self._state
        for pe in prompt_events:
            prompt = pe.prompt
            self.flush_redacted()
            if isinstance(pe, PromptStarted):
                self.pipeline.prompt_started(prompt.barge_in, self.caller_position_s)
                self._mark_reply(prompt)
                continue
            assert isinstance(pe, PromptEnded)
            start = prompt.start_s or 0.0
            end = max(start, prompt.end_s or start)
            self.watch.turns(
                [
                    WriteTurn(
                        "bot", prompt.text, start, end, interrupted=prompt.interrupted, latency=prompt.latency
                    )
                ]
            )
            state.flow_inbox.append(PromptFinished(interrupted=prompt.interrupted))
            if not self._prompts.busy:
                self.pipeline.prompt_finished(self.caller_position_s)

    def _mark_reply(self, prompt: Prompt) -> None:
        """The first prompt after a recognized utterance is the reply: keep its delay marks."""
        marks, self._reply_marks = self._reply_marks, None
        if marks is None or prompt.start_s is None:
            return
        prompt.latency = {**marks, "reply_start_s": prompt.start_s}
        log_event(
            "call.turn_latency",
            logger=_log,
            call_id=self._state.call_id,
            reply_ms=round(1000 * (prompt.start_s - marks["speech_end_s"])),
            after_final_ms=round(1000 * (prompt.start_s - marks["asr_final_s"])),
        )

    # -- listening and the transcript -------------------------------------------------------
    def listen(self, action: Listen) -> None:
        expectation = Expectation(phrases=action.phrases, open_vocabulary=action.open_vocabulary)
        self.pipeline.start_listening(expectation, action.no_input_timeout_s, self.caller_position_s)

    def stop_listening(self) -> None:
        self.pipeline.stop_listening()

    def set_recording(self, paused: bool) -> None:
        """The flow pauses or resumes the recording (the transcript's redactions follow)."""
        if paused:
            self._transcript.recording_paused = True
            self._state.out.append(SetRecording(paused=True, reason="flow step"))
        else:
            self.flush_redacted()
            self._transcript.recording_paused = False
            self._state.out.append(SetRecording(paused=False))

    def flush_redacted(self) -> None:
        self.watch.turns(self._transcript.flush(self.caller_position_s))

    def watch_tick(self, elapsed_s: float, outcome: str) -> None:
        """Let the supervision watch look at the step, the caller's silence and the time."""
        waiting = self.pipeline.listening and not self.busy
        self.watch.tick(self.caller_position_s, waiting, elapsed_s, outcome)

    def _sensitive(self) -> bool:
        """The current question saves into a variable named like a PIN, card number or CVV."""
        flow = self._state.flow
        step = flow.flow.steps.get(flow.step)
        return step is not None and step.ask is not None and is_sensitive_name(step.ask.save_as)
