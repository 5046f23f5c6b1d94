"""One connected call: the asyncio adapter around :class:`~ivr.call_core.CallCore`.

The session is one asyncio task. It wakes every media tick (or sooner, when call control, a
rendered prompt or a recognizer result arrives), drains the media bridge into the dual-track
recorder, and feeds the core what happened; it then carries out the core's commands: prompts
are rendered by TTS off the loop and queued on the bridge, recognizer work runs in order in a
worker thread, transcript turns and pauses go to the recorder, events to the publisher, BYE to
the SIP agent. All the call's decisions are the core's; this module only moves data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from config.logs import log_event, mask_number, mask_target
from flows import Flow, FlowSession
from ivr.call_core import TICK_S, CallCore
from ivr.call_services import CallServices
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
    Tick,
    TransferUpdate,
    WriteTurn,
)
from ivr.event_publisher import call_topic
from ivr.machine_screening import MachineScreening
from ivr.sip_events import CallConnected, CallEnded, CallOffered, DtmfReceived
from ivr.transfer import BridgedTransfer, LegDialer, route
from media import pipeline as mp
from media.amd import Verdict
from media.asr.base import Expectation
from media.frames import SILENCE, Frame
from recordings import CallMetadata, DualTrackRecorder, RecordingInfo

_log = logging.getLogger("ivr.call")


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
        self.key = offered.call_key
        self.services = services
        self.control = control
        self.screening = screening
        self._transfers = transfers
        self._xfer: BridgedTransfer | None = None
        self._flow_override = flow
        self._extra_variables = dict(variables or {})
        self._wall_offset = wall_offset  # time.time() - time.monotonic() when the server started
        self.call_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
        self.ended: CallEnded | None = None
        self.recording: RecordingInfo | None = None
        self.summary: CallSummary | None = None
        self.outcome = ""
        self._inbox: deque[CoreEvent] = deque()
        self._wake = asyncio.Event()
        self._asr_queue: asyncio.Queue[RunAsr] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        log_event(
            "call.offered",
            logger=_log,
            call_id=self.call_id,
            direction=offered.direction,
            remote=mask_number(offered.remote_uri),
            sip_call_id=offered.sip_call_id,
        )

    # -- from the hub (on the loop) ------------------------------------------------------
    def on_dtmf(self, event: DtmfReceived) -> None:
        self._post(DigitReceived(event.digit, event.method))

    def on_ended(self, event: CallEnded) -> None:
        self.ended = event
        self._post(FarEndGone(by_remote=event.hung_up_by == "remote"))

    def request_hangup(self, reason: str) -> None:
        self._post(HangupRequested(reason))

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

    # -- what the dialer reads when the call is over ---------------------------------------
    @property
    def answered_by(self) -> Verdict | None:
        return self.summary.answered_by if self.summary else None

    @property
    def message_left(self) -> bool:
        return self.summary.message_left if self.summary else False

    @property
    def flow_variables(self) -> Mapping[str, object]:
        """The flow's variables when the call ended (e.g. ``callback_at`` for the dialer)."""
        return self.summary.flow_variables if self.summary else {}

    # -- the call ---------------------------------------------------------------------
    def variables(self) -> dict[str, object]:
        caller = _user_part(self.offered.remote_uri)
        base: dict[str, object] = {
            "caller": {"number": caller},
            "call": {"id": self.call_id, "direction": self.offered.direction},
        }
        if self.offered.direction == "inbound":
            base["account"] = self.services.directory.lookup(caller)
        return {**base, **self._extra_variables}

    async def run(self, connected: CallConnected) -> None:
        self._bridge = connected.bridge
        flow = self._flow_override or self.services.flows.current()
        self._voice, self._rate = self.services.voice_for(flow)
        started = datetime.fromtimestamp(connected.at + self._wall_offset, UTC)
        self.recorder = self._open_recorder(flow, connected, started)
        pipeline = mp.CallMediaPipeline(self.services.settings.media)
        stream = self.services.asr.open_stream(Expectation())
        feeder = mp.AsrFeeder(stream)
        self.core = CallCore(
            self.call_id,
            FlowSession(flow, self.variables(), started),
            pipeline,
            connected_at=connected.at,
            wall_offset=self._wall_offset,
            max_duration_s=self.services.settings.sip.max_call_duration_s,
            screening=self.screening,
        )
        log_event(
            "call.connected",
            logger=_log,
            call_id=self.call_id,
            codec=connected.codec,
            flow=flow.metadata.name,
        )
        remote = mask_number(self.offered.remote_uri)
        self._publish(
            "connected", {"direction": self.offered.direction, "remote": remote, "flow": flow.metadata.name}
        )
        self._spawn(self._run_asr(feeder), "asr")
        try:
            self._feed(Connected())
            await self._loop()
        finally:
            for task in self._tasks:
                task.cancel()
            stream.close()
            await self._close(connected)

    async def _loop(self) -> None:
        core = self.core
        while not core.finished:
            deadline = core.next_deadline()
            timeout = TICK_S if deadline is None else min(TICK_S, max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            self._pump_audio()
            while self._inbox and not core.finished:
                self._feed(self._inbox.popleft())
            if self._xfer is not None:
                self._transfer_tick(self._xfer)
            deadline = core.next_deadline()
            if deadline is not None and time.monotonic() >= deadline:
                self._feed(Tick())

    def _pump_audio(self) -> None:
        records = self._bridge.drain()
        if not records:
            return
        frames = [_frame(record.pcm) for record in records]
        for record, frame in zip(records, frames, strict=True):
            if record.side == "caller":
                self.recorder.push_caller(frame)
                if self._xfer is not None:
                    self._xfer.caller_frame(record.pcm)
            else:
                self.recorder.push_bot(frame)
        self._feed(MediaDrained(records, frames))

    def _feed(self, event: CoreEvent) -> None:
        self._execute(self.core.handle(event, time.monotonic()))

    def _post(self, event: CoreEvent) -> None:
        self._inbox.append(event)
        self._wake.set()

    # -- commands -----------------------------------------------------------------------
    def _execute(self, commands: Sequence[Command]) -> None:
        for command in commands:
            if isinstance(command, PlayPrompt):
                self._spawn(self._render(command), f"prompt-{command.prompt_id}")
            elif isinstance(command, StopPlayback):
                self._bridge.stop_playback()
            elif isinstance(command, RunAsr):
                self._asr_queue.put_nowait(command)
            elif isinstance(command, WriteTurn):
                self.recorder.add_turn(
                    command.speaker, command.text, command.start_s, command.end_s, command.confidence
                )
            elif isinstance(command, SetRecording):
                if command.paused:
                    self.recorder.pause(command.reason)
                else:
                    self.recorder.resume()
            elif isinstance(command, Publish):
                self._publish(command.event, dict(command.payload))
            elif isinstance(command, StartTransfer):
                self._start_transfer(command.target)
            elif isinstance(command, SendHangup):
                self.control.hangup(self.key)

    async def _render(self, command: PlayPrompt) -> None:
        loop = asyncio.get_running_loop()
        frames = await loop.run_in_executor(
            self.services.executor, self.services.render_frames, command.text, self._voice, self._rate
        )
        self._bridge.play(command.prompt_id, frames)
        self._post(PromptQueued(command.prompt_id, len(frames)))

    async def _run_asr(self, feeder: mp.AsrFeeder) -> None:
        """Recognizer work, strictly in order, one batch at a time in a worker thread."""
        loop = asyncio.get_running_loop()
        while True:
            command = await self._asr_queue.get()
            work = list(command.work)
            while not self._asr_queue.empty():  # fell behind: one batch is cheaper
                work += self._asr_queue.get_nowait().work
            results = await loop.run_in_executor(self.services.executor, feeder.run, work)
            if results:
                self._post(AsrResults(results))

    def _start_transfer(self, target: str) -> None:
        where = route(target, self.services.settings.transfer)
        if where.uri is None or self._transfers is None:
            reason = where.problem or "transfers need the call hub"
            log_event(
                "call.transfer_unavailable",
                logging.WARNING,
                _log,
                call_id=self.call_id,
                target=mask_target(target),
                reason=reason,
            )
            self._post(TransferUpdate(success=False, reason="no_route"))
            return
        ring_s = self.services.settings.transfer.ring_timeout_s
        xfer = BridgedTransfer(target, where.uri, self._bridge, self._transfers, ring_s)
        try:
            xfer.start()
        except OSError as exc:
            self._post(TransferUpdate(success=False, reason=f"failed: {exc}"))
            return
        self._xfer = xfer
        log_event("call.transferring", logger=_log, call_id=self.call_id, target=mask_target(target))
        self._publish("transferring", {"target": mask_target(target)})

    def _transfer_tick(self, xfer: BridgedTransfer) -> None:
        result = xfer.tick(ringback=not self.core.prompts_busy)
        if result is not None:
            if not result.success:
                self._xfer = None
            self._feed(TransferUpdate(success=result.success, reason=result.reason))
        elif xfer.agent_left:
            self._feed(TransferUpdate(agent_left=True))

    # -- the end ------------------------------------------------------------------------
    def _open_recorder(self, flow: Flow, connected: CallConnected, started: datetime) -> DualTrackRecorder:
        inbound = self.offered.direction == "inbound"
        return DualTrackRecorder(
            self.services.settings.recordings_path,
            self.call_id,
            CallMetadata(
                direction=self.offered.direction,
                from_number=self.offered.remote_uri if inbound else self.offered.local_uri,
                to_number=self.offered.local_uri if inbound else self.offered.remote_uri,
                started_at=started,
                flow_name=flow.metadata.name,
                flow_version=flow.metadata.version,
                tags={"codec": connected.codec, "sip_call_id": self.offered.sip_call_id},
            ),
            signing_key_file=self.services.settings.recordings_signing_key_path,
        )

    async def _close(self, connected: CallConnected) -> None:
        if self._xfer is not None:
            self._xfer.close()
            log_event(
                "call.bridge_closed",
                logger=_log,
                call_id=self.call_id,
                to_agent_s=round(self._xfer.frames_to_agent * TICK_S, 2),
                to_caller_s=round(self._xfer.frames_to_caller * TICK_S, 2),
            )
        self.summary = self.core.summary()
        self.outcome = self.summary.outcome
        end_at = self.ended.at if self.ended else time.monotonic()
        end = datetime.fromtimestamp(end_at + self._wall_offset, UTC)
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

    def _publish(self, event: str, payload: dict[str, object]) -> None:
        self.services.publisher.publish(call_topic(self.call_id, event), payload)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"call-{self.key}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_event(
                "call.task_failed",
                logging.ERROR,
                _log,
                call_id=self.call_id,
                task=task.get_name(),
                error=repr(task.exception()),
            )
            self.request_hangup("internal error")


def _frame(pcm: bytes | None) -> Frame:
    return SILENCE if pcm is None else np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def _user_part(uri: str) -> str:
    text = uri.split("<", 1)[-1].split(">", 1)[0]
    text = text.split(":", 1)[-1] if ":" in text else text
    return text.split("@", 1)[0]
