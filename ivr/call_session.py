"""One connected call: media bridge -> recorder + media pipeline -> flow session -> actions.

The session is a single asyncio task. Every ~20 ms it drains the media bridge (caller frames
and the bot frames that actually left), feeds the dual-track recorder and the media pipeline,
runs queued ASR work in a worker thread, turns media and SIP events into flow events, and
executes the flow's actions: prompts are rendered by TTS off the loop and queued on the bridge.
Call-control (hang-up, DTMF) arrives from the server through :meth:`on_dtmf`/:meth:`on_ended`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from dialer.amd import Verdict
from flows import (
    Action,
    CallerHangUp,
    DtmfDigit,
    EmitEvent,
    Flow,
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
from ivr.call_services import CallServices
from ivr.event_publisher import call_topic
from ivr.logs import log_event, mask_number
from ivr.machine_screening import MachineScreening, Screener
from ivr.prompt_queue import PromptEnded, PromptEvent, PromptQueue, PromptStarted
from ivr.sip_events import CallConnected, CallEnded, CallOffered, DtmfReceived
from ivr.transfer import BridgedTransfer, LegDialer, route
from media import pipeline as mp
from media.asr.base import Expectation
from media.barge_in import BargeIn
from media.dtmf_detector import DtmfDigit as InBandDigit
from media.endpointer import NoInput as MediaNoInput
from media.frames import FRAME_MS, SILENCE, Frame
from recordings import CallMetadata, DualTrackRecorder, RecordingInfo

_log = logging.getLogger("ivr.call")
_TICK_S = FRAME_MS / 1000
_HANGUP_GRACE_S = 10.0


class CallControl(Protocol):
    def hangup(self, call_key: int, status_code: int = 0) -> None: ...


class CallSession:
    """See the module docstring. Create on ``CallOffered``; :meth:`run` on ``CallConnected``.

    ``flow`` defaults to the one in service; ``variables`` are merged into the flow's
    (e.g. ``{"contact": {...}}`` from a campaign).
    """

    def __init__(
        self,
        offered: CallOffered,
        services: CallServices,
        control: CallControl,
        wall_offset: float,
        *,
        flow: Flow | None = None,
        variables: Mapping[str, object] | None = None,
        screening: MachineScreening | None = None,
        transfers: LegDialer | None = None,
    ) -> None:
        self.offered = offered
        self._transfers = transfers
        self._xfer: BridgedTransfer | None = None
        self._flow_override = flow
        self._extra_variables = dict(variables or {})
        self.screening = screening
        self.answered_by: Verdict | None = None
        self.message_left = False
        self.key = offered.call_key
        self.services = services
        self.control = control
        self._wall_offset = wall_offset  # time.time() - time.monotonic() when the server started
        self.call_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
        self.ended: CallEnded | None = None
        self.recording: RecordingInfo | None = None
        self.outcome = ""
        self.flow_variables: dict[str, object] = {}
        """The flow's variables when the call ended (e.g. ``callback_at`` for the dialer)."""
        self._control_events: deque[DtmfReceived | CallEnded | str] = deque()
        self._wake = asyncio.Event()
        self._prompts = PromptQueue()
        self._hangup_requested = False
        self._hangup_sent_at: float | None = None
        self._digit_deadline: float | None = None
        self._pending_flow: deque[FlowEvent] = deque()
        self._screener: Screener | None = None
        log_event(
            "call.offered",
            logger=_log,
            call_id=self.call_id,
            direction=offered.direction,
            remote=mask_number(offered.remote_uri),
            sip_call_id=offered.sip_call_id,
        )

    # -- from the server --------------------------------------------------------------
    def on_dtmf(self, event: DtmfReceived) -> None:
        self._control_events.append(event)
        self._wake.set()

    def on_ended(self, event: CallEnded) -> None:
        self.ended = event
        self._control_events.append(event)
        self._wake.set()

    def request_hangup(self, reason: str) -> None:
        self._control_events.append(reason)
        self._wake.set()

    def on_unconnected_end(self, event: CallEnded) -> None:
        """An inbound call released before it was confirmed (no ACK, 408, CANCEL) still ends
        with a ``call.ended`` line and event: monitoring counts every call the engine took."""
        if self.offered.direction != "inbound":
            return  # the dialer records how a placed call failed
        self.outcome = "not_connected"
        log_event(
            "call.ended",
            logger=_log,
            call_id=self.call_id,
            outcome=self.outcome,
            status=event.status_code,
            reason=event.reason,
            connected_s=0,
        )
        self._publish("ended", {"outcome": self.outcome, "recording": None, "duration_s": 0.0})

    # -- the call ---------------------------------------------------------------------
    def _utc(self, monotonic: float) -> datetime:
        return datetime.fromtimestamp(monotonic + self._wall_offset, UTC)

    async def run(self, connected: CallConnected) -> None:
        self._t0 = connected.at
        self._bridge = connected.bridge
        self._caller_frames = 0
        self._bot_frames = 0
        flow = self._flow_override or self.services.flows.current()
        self._voice, self._rate = self.services.voice_for(flow)
        started = self._utc(connected.at)
        remote = mask_number(self.offered.remote_uri)
        self.recorder = DualTrackRecorder(
            self.services.settings.recordings_path,
            self.call_id,
            CallMetadata(
                direction=self.offered.direction,
                from_number=self.offered.remote_uri
                if self.offered.direction == "inbound"
                else self.offered.local_uri,
                to_number=self.offered.local_uri
                if self.offered.direction == "inbound"
                else self.offered.remote_uri,
                started_at=started,
                flow_name=flow.metadata.name,
                flow_version=flow.metadata.version,
                tags={"codec": connected.codec, "sip_call_id": self.offered.sip_call_id},
            ),
        )
        self.pipeline = mp.CallMediaPipeline(self.services.settings.media)
        stream = self.services.asr.open_stream(Expectation())
        self._feeder = mp.AsrFeeder(stream)
        self.flow = FlowSession(flow, self.variables(), started)
        log_event(
            "call.connected",
            logger=_log,
            call_id=self.call_id,
            codec=connected.codec,
            flow=flow.metadata.name,
        )
        self._publish(
            "connected", {"direction": self.offered.direction, "remote": remote, "flow": flow.metadata.name}
        )
        flow_started = False
        try:
            if self.screening is None or await self._screen() is not Verdict.MACHINE:
                flow_started = True
                await self._apply(self.flow.start(self._utc(time.monotonic())))
            await self._loop()
        finally:
            stream.close()
            if self._xfer is not None:
                self._xfer.close()
                log_event(
                    "call.bridge_closed",
                    logger=_log,
                    call_id=self.call_id,
                    to_agent_s=round(self._xfer.frames_to_agent * _TICK_S, 2),
                    to_caller_s=round(self._xfer.frames_to_caller * _TICK_S, 2),
                )
            end = self._utc(self.ended.at) if self.ended else datetime.now(UTC)
            if flow_started:
                self.outcome = self.flow.outcome or self.outcome
                self.flow_variables = dict(self.flow.variables)
            loop = asyncio.get_running_loop()
            self.recording = await loop.run_in_executor(
                self.services.executor, self.recorder.close, end, self.outcome
            )
            ended = self.ended
            log_event(
                "call.ended",
                logger=_log,
                call_id=self.call_id,
                outcome=self.outcome or "none",
                status=ended.status_code if ended else 0,
                hung_up_by=ended.hung_up_by if ended else "local",
                connected_s=round(ended.connected_s, 3) if ended else 0,
                recording=str(self.recording.wav_path),
            )
            self._publish(
                "ended",
                {
                    "outcome": self.outcome,
                    "recording": self.recording.call_id,
                    "duration_s": round(self.recording.duration_s, 3),
                },
            )

    def variables(self) -> dict[str, object]:
        caller = _user_part(self.offered.remote_uri)
        base: dict[str, object] = {
            "caller": {"number": caller},
            "call": {"id": self.call_id, "direction": self.offered.direction},
        }
        if self.offered.direction == "inbound":
            base["account"] = self.services.directory.lookup(caller)
        return {**base, **self._extra_variables}

    async def _screen(self) -> Verdict:
        """Answering-machine detection on the first seconds of audio (outbound calls)."""
        assert self.screening is not None
        screener = self._screener = Screener(self.screening)
        while self.ended is None and not screener.done:
            await self._next_tick()
            self._pump_audio()
            for event in screener.poll(self._caller_frames * _TICK_S):
                log_event(
                    "call.amd",
                    logger=_log,
                    call_id=self.call_id,
                    verdict=event.verdict.value,
                    reason=event.reason.value,
                    after_s=round(event.after_s, 2),
                )
        self._screener = None
        self.answered_by = screener.verdict or Verdict.NOTSURE
        if self.answered_by is Verdict.MACHINE and self.ended is None:
            if screener.message:
                self.message_left = True
                await self._apply(
                    [Play(screener.message, barge_in=False, step="machine_message"), HangUp("message_left")]
                )
            else:
                await self._apply([HangUp("machine")])
        return self.answered_by

    async def _next_tick(self) -> None:
        """Sleep one media tick, or less if call control (DTMF, hang-up) arrives."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), _TICK_S)
        self._wake.clear()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        max_s = self.services.settings.sip.max_call_duration_s
        while self.ended is None:
            await self._next_tick()
            events: list[FlowEvent] = []
            media_events = self._pump_audio()
            if self._xfer is not None:
                events += self._transfer_tick(self._xfer)
            media_events += self.pipeline.check_timers(self._caller_frames * _TICK_S)
            work = self.pipeline.take_asr_work()
            if work:
                media_events += await loop.run_in_executor(self.services.executor, self._feeder.run, work)
            events += self._media_to_flow(media_events)
            events += self._control_to_flow()
            if self._digit_deadline is not None and time.monotonic() >= self._digit_deadline:
                self._digit_deadline = None
                events.append(NoInput())
            for event in events:
                await self._apply(self.flow.handle(event, self._utc(time.monotonic())))
            if self._hangup_requested and not self._prompts.busy and self._hangup_sent_at is None:
                self._hangup_sent_at = time.monotonic()
                self.control.hangup(self.key)
            if self._hangup_sent_at is None and time.monotonic() - self._t0 > max_s:
                log_event("call.max_duration", logging.WARNING, _log, call_id=self.call_id, limit_s=max_s)
                self._hangup_requested = True
                self._interrupt_prompts()
            if self._hangup_sent_at is not None and time.monotonic() - self._hangup_sent_at > _HANGUP_GRACE_S:
                break  # the far end never answered our BYE; the agent will clean up

    # -- audio ------------------------------------------------------------------------
    def _pump_audio(self) -> list[mp.MediaEvent]:
        events: list[mp.MediaEvent] = []
        prompt_events: list[PromptEvent] = []
        for record in self._bridge.drain():
            frame = _frame(record.pcm)
            if record.side == "caller":
                self.recorder.push_caller(frame)
                if self._xfer is not None:
                    self._xfer.caller_frame(record.pcm)
                if self._screener is not None:
                    self._screener.push_frame(frame, self._caller_frames * _TICK_S)
                events += self.pipeline.push_caller_frame(frame, self._caller_frames * _TICK_S)
                self._caller_frames += 1
            else:
                self.recorder.push_bot(frame)
                if record.pcm is not None:
                    self.pipeline.prompt_frame(frame)
                prompt_events += self._prompts.frame_sent(
                    record.prompt_id, record.last_of_prompt, self._bot_frames * _TICK_S
                )
                self._bot_frames += 1
        prompt_events += self._prompts.flush_empty(self._bot_frames * _TICK_S)
        self._on_prompt_events(prompt_events)
        return events

    def _on_prompt_events(self, prompt_events: Sequence[PromptEvent]) -> None:
        for pe in prompt_events:
            prompt = pe.prompt
            if isinstance(pe, PromptStarted):
                self.pipeline.prompt_started(prompt.barge_in, self._caller_frames * _TICK_S)
                continue
            assert isinstance(pe, PromptEnded)
            start = prompt.start_s or 0.0
            self.recorder.add_turn("bot", prompt.text, start, max(start, prompt.end_s or start))
            self._pending_flow.append(PromptFinished(interrupted=prompt.interrupted))
            if not self._prompts.busy:
                self.pipeline.prompt_finished(self._caller_frames * _TICK_S)

    def _interrupt_prompts(self) -> None:
        self._bridge.stop_playback()
        self._on_prompt_events(self._prompts.interrupt(self._bot_frames * _TICK_S))

    # -- events to the flow -----------------------------------------------------------
    def _media_to_flow(self, events: Sequence[mp.MediaEvent]) -> list[FlowEvent]:
        out: list[FlowEvent] = list(self._pending_flow)
        self._pending_flow.clear()
        for event in events:
            if isinstance(event, BargeIn):
                current = self._prompts.current
                if current is not None and current.barge_in:
                    log_event("call.barge_in", logger=_log, call_id=self.call_id, at_s=round(event.at, 3))
                    self._interrupt_prompts()
                    out += list(self._pending_flow)
                    self._pending_flow.clear()
            elif isinstance(event, mp.AsrFinal):
                result = event.result
                self.pipeline.stop_listening()
                self.recorder.add_turn(
                    "caller",
                    result.text,
                    event.speech_started_at,
                    event.speech_ended_at,
                    min(1.0, max(0.0, result.confidence)),
                )
                log_event(
                    "call.heard",
                    logger=_log,
                    call_id=self.call_id,
                    words=len(result.text.split()),
                    confidence=round(result.confidence, 3),
                    in_grammar=result.in_grammar,
                )
                out.append(Recognition(result.text, result.confidence, result.in_grammar))
            elif isinstance(event, mp.AsrFailed):
                self.pipeline.stop_listening()
                log_event("call.asr_failed", logging.WARNING, _log, call_id=self.call_id, reason=event.reason)
                out.append(Recognition("", 0.0, in_grammar=False))  # the flow treats it as a no-match
            elif isinstance(event, MediaNoInput):
                self.pipeline.stop_listening()
                log_event("call.no_input", logger=_log, call_id=self.call_id)
                out.append(NoInput())
            elif isinstance(event, InBandDigit):
                out += self._digit(event.digit, "inband")
        return out

    def _control_to_flow(self) -> list[FlowEvent]:
        out: list[FlowEvent] = []
        while self._control_events:
            item = self._control_events.popleft()
            if isinstance(item, DtmfReceived):
                out += self._digit(item.digit, item.method)
            elif isinstance(item, CallEnded):
                self._interrupt_prompts()
                out += list(self._pending_flow)
                self._pending_flow.clear()
                if item.hung_up_by == "remote":
                    out.append(CallerHangUp())
            else:
                self._hangup_requested = True
                self._interrupt_prompts()
        return out

    def _digit(self, digit: str, method: str) -> list[FlowEvent]:
        out: list[FlowEvent] = []
        current = self._prompts.current
        if current is not None and current.barge_in:
            self._interrupt_prompts()
            out += list(self._pending_flow)
            self._pending_flow.clear()
        at = self._caller_frames * _TICK_S
        self.recorder.add_turn("caller", f"#{digit}", at, at)
        log_event("call.dtmf", logger=_log, call_id=self.call_id, method=method)
        out.append(DtmfDigit(digit))
        return out

    # -- actions ----------------------------------------------------------------------
    async def _apply(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Play):
                await self._play(action)
            elif isinstance(action, Listen):
                self._listen(action)
            elif isinstance(action, HangUp):
                self.outcome = action.outcome
                self.pipeline.stop_listening()
                self._hangup_requested = True
            elif isinstance(action, SetOutcome):
                self.outcome = action.outcome
            elif isinstance(action, PauseRecording):
                self.recorder.pause("flow step")
            elif isinstance(action, ResumeRecording):
                self.recorder.resume()
            elif isinstance(action, EmitEvent):
                self._publish("flow_event", {"name": action.name, **dict(action.data)})
            elif isinstance(action, Transfer):
                await self._transfer(action)
        if self.flow.keys_pending and (listen := self.flow.listen) is not None:
            self._digit_deadline = time.monotonic() + listen.dtmf.inter_digit_timeout_s
        else:
            self._digit_deadline = None

    async def _play(self, action: Play) -> None:
        loop = asyncio.get_running_loop()
        frames = await loop.run_in_executor(
            self.services.executor, self.services.render_frames, action.text, self._voice, self._rate
        )
        prompt = self._prompts.add(action.text, action.barge_in, len(frames), action.step)
        if self._prompts.current is prompt:
            self.pipeline.prompt_started(action.barge_in, self._caller_frames * _TICK_S)
        self._bridge.play(prompt.id, frames)
        log_event(
            "call.prompt",
            logger=_log,
            call_id=self.call_id,
            step=action.step,
            seconds=round(len(frames) * _TICK_S, 2),
            barge_in=action.barge_in,
        )

    def _listen(self, action: Listen) -> None:
        expectation = Expectation(phrases=action.phrases, open_vocabulary=action.open_vocabulary)
        self.pipeline.start_listening(expectation, action.no_input_timeout_s, self._caller_frames * _TICK_S)

    async def _transfer(self, action: Transfer) -> None:
        where = route(action.target, self.services.settings.transfer)
        if where.uri is None or self._transfers is None:
            reason = where.problem or "transfers need the call hub"
            log_event(
                "call.transfer_unavailable",
                logging.WARNING,
                _log,
                call_id=self.call_id,
                target=action.target,
                reason=reason,
            )
            self._pending_flow.append(TransferResult(success=False, reason="no_route"))
            return
        self.pipeline.stop_listening()
        ring_s = self.services.settings.transfer.ring_timeout_s
        xfer = BridgedTransfer(action.target, where.uri, self._bridge, self._transfers, ring_s)
        try:
            xfer.start()
        except OSError as exc:
            self._pending_flow.append(TransferResult(success=False, reason=f"failed: {exc}"))
            return
        self._xfer = xfer
        log_event("call.transferring", logger=_log, call_id=self.call_id, target=action.target)
        self._publish("transferring", {"target": action.target})

    def _transfer_tick(self, xfer: BridgedTransfer) -> list[FlowEvent]:
        result = xfer.tick(ringback=not self._prompts.busy)
        if result is not None:
            log_event(
                "call.transferred" if result.success else "call.transfer_failed",
                logger=_log,
                call_id=self.call_id,
                target=xfer.target,
                reason=result.reason,
            )
            self._publish(
                "transferred" if result.success else "transfer_failed",
                {"target": xfer.target, "reason": result.reason},
            )
            if not result.success:
                self._xfer = None
            return [result]
        if xfer.agent_left and not self._hangup_requested:
            log_event("call.agent_hung_up", logger=_log, call_id=self.call_id)
            self._hangup_requested = True
        return []

    def _publish(self, event: str, payload: dict[str, object]) -> None:
        self.services.publisher.publish(call_topic(self.call_id, event), payload)


def _frame(pcm: bytes | None) -> Frame:
    if pcm is None:
        return SILENCE
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def _user_part(uri: str) -> str:
    text = uri.split("<", 1)[-1].split(">", 1)[0]
    text = text.split(":", 1)[-1] if ":" in text else text
    return text.split("@", 1)[0]
