"""One connected call: the asyncio adapter around :class:`~ivr.call_core.CallCore`.

The session is one asyncio task. It wakes every media tick (or sooner, when call control, a
rendered prompt or a recognizer result arrives), drains the media bridge into the call's
recording (:mod:`ivr.call_recording`), and feeds the core what happened; it then carries out the
core's commands: prompts are rendered and recognizer work is run off the loop
(:mod:`ivr.call_workers`), transcript turns and pauses go to the recording, transfers to
:class:`~ivr.transfer.CallTransfers`, events to the publisher (:mod:`ivr.call_reports`, which
also logs the call's start and end), BYE to the SIP agent. All the call's decisions are the
core's; this module only moves data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from flows import Flow, FlowSession
from ivr.call_core import CallCore
from ivr.call_media import TICK_S
from ivr.call_recording import CallRecording, campaign_tags
from ivr.call_reports import CallReports
from ivr.call_services import CallServices
from ivr.call_vocabulary import (
    CallSummary,
    Command,
    Connected,
    CoreEvent,
    DigitReceived,
    FarEndGone,
    HangupRequested,
    MediaDrained,
    PlayPrompt,
    Publish,
    RaiseAlert,
    RunAsr,
    SendHangup,
    SetRecording,
    StartTransfer,
    StopPlayback,
    Tick,
    WriteTurn,
)
from ivr.call_workers import CallWorkers
from ivr.machine_screening import MachineScreening
from ivr.native_bridge import read_wake_fd
from ivr.sip_events import CallConnected, CallEnded, CallOffered, DtmfReceived
from ivr.supervisor_leg import SupervisorDialer
from ivr.supervisor_session import CallSupervision, ChangeListener
from ivr.transfer import CallTransfers, LegDialer
from media import pipeline as mp
from media.amd import Verdict
from media.asr.base import Expectation
from recordings import RecordingInfo
from supervision.supervisor_modes import Mode, SupervisionChanged

_IDLE_S = 0.1
"""Longest sleep when the bridge wakes the loop itself (a safety net: it does every 20 ms)."""


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
        self._flow_override = flow
        self._extra_variables = dict(variables or {})
        self._wall_offset = wall_offset  # time.time() - time.monotonic() when the server started
        self.call_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
        self.ended: CallEnded | None = None
        self.recording: RecordingInfo | None = None
        self.summary: CallSummary | None = None
        self.outcome = ""
        self._inbox: deque[CoreEvent | SupervisionChanged] = deque()
        self._wake = asyncio.Event()
        self._workers = CallWorkers(self.key, self.call_id, services, self._post, self.request_hangup)
        self._reports = CallReports(self.call_id, offered, services.publisher)
        self._supervision: CallSupervision | None = None

    # -- from the hub (on the loop) ------------------------------------------------------
    def on_dtmf(self, event: DtmfReceived) -> None:
        self._post(DigitReceived(event.digit, event.method))

    def on_ended(self, event: CallEnded) -> None:
        self.ended = event
        self._post(FarEndGone(by_remote=event.hung_up_by == "remote"))

    def request_hangup(self, reason: str) -> None:
        self._post(HangupRequested(reason))

    def supervise(
        self, user: str, uri: str, mode: Mode, dialer: SupervisorDialer, on_change: ChangeListener
    ) -> str | None:
        """Ring a supervisor's phone into this call (:mod:`ivr.supervisor_session`); returns why
        not, or None once it rings. The caller has checked who may (:mod:`ivr.supervisor_control`)."""
        if self._supervision is None:
            return "the call is not connected yet"
        return self._supervision.start(user, uri, mode, dialer, on_change)

    def on_unconnected_end(self, event: CallEnded) -> None:
        """An inbound call released before it was confirmed (no ACK, 408, CANCEL) still ends
        with a ``call.ended`` line and event: monitoring counts every call the engine took."""
        if self.offered.direction != "inbound":
            return  # the dialer records how a placed call failed
        self.outcome = "not_connected"
        self._reports.not_connected(event, self.outcome)

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
        self._recording = CallRecording(
            self.services,
            self.call_id,
            self.offered,
            flow=flow,
            codec=connected.codec,
            started=started,
            tags=campaign_tags(self._extra_variables),
        )
        settings = self.services.settings
        self._transfer = CallTransfers(
            self.call_id, settings.transfer, self._bridge, self._transfers, self._reports.publish
        )
        stream = self.services.asr.open_stream(Expectation())
        alerts, emotion = self.services.alert_engine(flow)
        self.core = CallCore(
            self.call_id,
            FlowSession(flow, self.variables(), started),
            mp.CallMediaPipeline(settings.media),
            connected_at=connected.at,
            wall_offset=self._wall_offset,
            max_duration_s=settings.sip.max_call_duration_s,
            screening=self.screening,
            alerts=alerts,
            emotion=emotion,
        )
        self._supervision = CallSupervision(
            self.call_id,
            self._bridge,
            self._recording,
            publish=self._reports.publish,
            post=self._post,
            wall_offset=self._wall_offset,
        )
        self._reports.connected(connected.codec, flow.metadata.name)
        self._workers.start_asr(mp.AsrFeeder(stream))
        try:
            self._feed(Connected())
            await self._loop()
        finally:
            self._workers.cancel()
            stream.close()
            await self._close()

    async def _loop(self) -> None:
        """Wake on arriving frames (the bridge's eventfd: once per media tick, aligned with
        it), posted events and the core's deadlines; a bridge without an eventfd is polled."""
        core = self.core
        fd = self._bridge.wake_fd
        loop = asyncio.get_running_loop()
        if fd is not None:
            loop.add_reader(fd, self._frames_arrived, fd)
        idle = TICK_S if fd is None else _IDLE_S
        try:
            while not core.finished:
                deadline = core.next_deadline()
                timeout = idle if deadline is None else min(idle, max(0.0, deadline - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
                self._pump_audio()
                while self._inbox and not core.finished:
                    self._feed(self._inbox.popleft())
                update = self._transfer.tick(ringback=not core.prompts_busy)
                if update is not None:
                    self._feed(update)
                if self._supervision is not None:
                    self._supervision.tick(time.monotonic(), core.caller_position_s)
                deadline = core.next_deadline()
                if deadline is not None and time.monotonic() >= deadline:
                    self._feed(Tick())
        finally:
            if fd is not None:
                loop.remove_reader(fd)

    def _frames_arrived(self, fd: int) -> None:
        read_wake_fd(fd)
        self._wake.set()

    def _pump_audio(self) -> None:
        records, frames = self._bridge.drain_frames()
        if not records:
            return
        for record, frame in zip(records, frames, strict=True):
            self._recording.push(record, frame)
            if record.side == "caller":
                self._transfer.caller_frame(record.pcm)
        if self._supervision is not None:
            self._supervision.call_frames(records)
        self._feed(MediaDrained(records, frames))

    def _feed(self, event: CoreEvent | SupervisionChanged) -> None:
        self._execute(self.core.handle(event, time.monotonic()))

    def _post(self, event: CoreEvent | SupervisionChanged) -> None:
        self._inbox.append(event)
        self._wake.set()

    def _execute(self, commands: Sequence[Command]) -> None:
        for command in commands:
            if isinstance(command, PlayPrompt):
                self._workers.render(command, self._bridge, self._voice, self._rate)
            elif isinstance(command, StopPlayback):
                self._bridge.stop_playback()
            elif isinstance(command, RunAsr):
                self._workers.run_asr(command)
            elif isinstance(command, WriteTurn | SetRecording):
                self._recording.execute(command)
            elif isinstance(command, Publish):
                self._reports.publish(command.event, dict(command.payload))
            elif isinstance(command, RaiseAlert):
                self._reports.publish("alert", dict(command.payload))
                self._recording.alert(command.payload)
            elif isinstance(command, StartTransfer):
                failed = self._transfer.start(command.target)
                if failed is not None:
                    self._post(failed)
            elif isinstance(command, SendHangup):
                self.control.hangup(self.key)

    async def _close(self) -> None:
        self._transfer.close()
        if self._supervision is not None:
            self._supervision.close(time.monotonic(), self.core.caller_position_s)
        self.summary = self.core.summary()
        self.outcome = self.summary.outcome
        ended = self.ended
        end_at = ended.at if ended else time.monotonic()
        end = datetime.fromtimestamp(end_at + self._wall_offset, UTC)
        self.recording = await self._recording.close(end, self.outcome)
        self._reports.qa(self._recording.qa)
        self._reports.ended(self.outcome, ended, self.recording)


def _user_part(uri: str) -> str:
    text = uri.split("<", 1)[-1].split(">", 1)[0]
    text = text.split(":", 1)[-1] if ":" in text else text
    return text.split("@", 1)[0]
