"""One call's logic as a sans-I/O state machine: ``handle(event, now) -> commands``.

The core owns what a call decides: which prompt is on the line and when it finished, barge-in,
whether the recognizer is listening, the timers (inter-digit, maximum duration, BYE grace),
answering-machine screening, the transfer's phases, and the flow session it drives. It never
touches a socket, a thread, a file or a clock: :class:`~ivr.call_session.CallSession` feeds it
what happened (:mod:`ivr.call_vocabulary`) with ``now`` and carries out the commands it returns,
and replay tests drive it with nothing but events and times.

This module keeps the call's phases (screening, the flow, hanging up) and its timers; the media
side is :mod:`ivr.call_media`, the flow's actions :mod:`ivr.call_actions`, and what they share
:mod:`ivr.call_state`.

Two clocks: ``now`` (monotonic seconds) for timers, and the media clock (20 ms per frame that
crossed the bridge) for everything about audio, so prompts, speech and the recording agree.
"""

from __future__ import annotations

import logging

from config.logs import log_event
from flows import CallerHangUp, FlowSession, HangUp, Play
from ivr.call_actions import FlowActions
from ivr.call_media import CallMedia
from ivr.call_state import CallState
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
    PromptQueued,
    SendHangup,
    TransferUpdate,
)
from ivr.machine_screening import MachineScreening, Screener
from media import pipeline as mp
from media.amd import Verdict
from supervision.alerts import AlertEngine
from supervision.call_watch import CallWatch
from supervision.emotion import EmotionTracker
from supervision.supervisor_modes import SupervisionChanged

_log = logging.getLogger("ivr.call")
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
        alerts: AlertEngine | None = None,
        emotion: EmotionTracker | None = None,
    ) -> None:
        self.call_id = call_id
        self.flow = flow
        self.pipeline = pipeline
        self._state = CallState(call_id, flow, now=connected_at, wall_offset=wall_offset)
        self._media = CallMedia(self._state, pipeline, CallWatch(self._state, alerts, emotion))
        self._actions = FlowActions(self._state, self._media)
        self._t0 = connected_at
        self._max_s = max_duration_s
        self._screening = screening
        self._screener: Screener | None = None
        self._hangup_sent_at: float | None = None
        self._max_duration_hit = False
        self._answered_by: Verdict | None = None
        self._message_left = False

    # -- the interface ------------------------------------------------------------------
    def handle(self, event: CoreEvent | SupervisionChanged, now: float) -> list[Command]:
        """Feed one event at ``now``; returns what to do, in order."""
        state = self._state
        state.out = []
        state.now = now
        if isinstance(event, Connected):
            self._connected()
        elif isinstance(event, MediaDrained):
            self._media_drained(event)
        elif isinstance(event, PromptQueued):
            self._actions.rendered(event)
        elif isinstance(event, AsrResults):
            if not state.bot_paused:  # an answer in flight when a supervisor barged in is dropped
                self._media.heard(list(event.results))
        elif isinstance(event, DigitReceived):
            if not state.bot_paused:  # the caller's keys are for the supervisor then
                self._media.digit(event.digit, event.method)
        elif isinstance(event, HangupRequested):
            state.hangup_requested = True
            self._media.interrupt()
        elif isinstance(event, FarEndGone):
            self._far_end_gone(event.by_remote)
        elif isinstance(event, TransferUpdate):
            self._actions.transfer_update(event)
        elif isinstance(event, SupervisionChanged):
            self._supervision(event)
        self._timers()
        if self._media.watch.actions and not state.bot_paused:
            self._actions.alert_actions(self._media.watch.actions)
        if not state.bot_paused:  # barged in or taken over: the flow's events wait (or are moot)
            self._actions.drain()
        self._maybe_send_hangup()
        return state.out

    def next_deadline(self) -> float | None:
        """When :class:`Tick` must be fed at the latest (None: only events matter)."""
        if self.finished:
            return None
        if self._hangup_sent_at is not None:
            return self._hangup_sent_at + HANGUP_GRACE_S
        candidates = [self._t0 + self._max_s]
        if self._actions.digit_deadline is not None and not self._state.bot_paused:
            candidates.append(self._actions.digit_deadline)
        return min(candidates)

    @property
    def finished(self) -> bool:
        """Nothing more will happen: the far end is gone, or it never answered our BYE."""
        sent_at = self._hangup_sent_at
        grace_over = sent_at is not None and self._state.now - sent_at > HANGUP_GRACE_S
        return self._state.gone or grace_over

    @property
    def prompts_busy(self) -> bool:
        """A prompt is playing, queued or being rendered (no ringback for a transfer then)."""
        return self._media.busy

    @property
    def caller_position_s(self) -> float:
        return self._media.caller_position_s

    def summary(self) -> CallSummary:
        started = self._state.flow_started
        own = self._actions.outcome
        outcome = self.flow.outcome or own if started else own
        return CallSummary(
            outcome=outcome,
            flow_started=started,
            flow_variables=dict(self.flow.variables) if started else {},
            answered_by=self._answered_by,
            message_left=self._message_left,
            hangup_sent=self._hangup_sent_at is not None,
            flow_started_at=self._state.flow_started_at,
        )

    # -- phases -------------------------------------------------------------------------
    def _connected(self) -> None:
        if self._screening is not None:
            self._screener = Screener(self._screening)
        else:
            self._actions.start()

    def _media_drained(self, event: MediaDrained) -> None:
        events = self._media.frames(event.records, event.frames, self._screener)
        if self._screener is not None and not self._state.gone:
            self._screen()
        if self._state.bot_paused:
            self.pipeline.take_asr_work()  # the bot is not listening: nothing goes to the recognizer
            return
        self._media.heard(events)
        self._media.queue_asr_work()
        outcome = self.flow.outcome or self._actions.outcome
        self._media.watch_tick(self._state.now - self._t0, outcome)

    # -- a supervisor on the call ---------------------------------------------------------
    def _supervision(self, event: SupervisionChanged) -> None:
        """Barge: the bot stops talking and listening, the flow waits. Take over: the bot
        leaves for good. Back to listen (or the supervisor gone): the flow carries on where it
        was, listening again if it was waiting for an answer. A supervisor who leaves a call
        they took over ends it."""
        state = self._state
        was_paused = state.bot_paused
        previous, state.supervisor_mode = state.supervisor_mode, event.mode
        log_event(
            "call.supervision",
            logger=_log,
            call_id=self.call_id,
            mode=event.mode or "none",
            previous=previous,
        )
        if event.mode == "takeover" and not state.bot_left:
            state.bot_left = True
            self._actions.outcome = self._actions.outcome or "taken_over"
        if state.bot_paused and not was_paused:
            self._media.interrupt()
            self._media.stop_listening()
            self._actions.digit_deadline = None
        elif was_paused and not state.bot_paused:
            self._actions.drain()
            listen = state.flow.listen
            if listen is not None and not self.pipeline.listening and not self._media.busy and not state.gone:
                self._media.listen(listen)
        if state.bot_left and event.mode is None and not state.hangup_requested:
            log_event("call.supervisor_left", logger=_log, call_id=self.call_id)
            state.hangup_requested = True

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
            self._actions.start()
        elif screener.message:
            self._message_left = True
            self._actions.apply(
                [Play(screener.message, barge_in=False, step="machine_message"), HangUp("message_left")]
            )
        else:
            self._actions.apply([HangUp("machine")])

    def _far_end_gone(self, by_remote: bool) -> None:
        state = self._state
        state.gone = True
        self._media.flush_redacted()
        self._media.interrupt()
        if self._screener is not None:
            self._screener = None
            self._answered_by = Verdict.NOTSURE  # hung up while we listened: not a machine verdict
        elif by_remote and state.flow_started:
            state.flow_inbox.append(CallerHangUp())

    # -- timers and the end -------------------------------------------------------------
    def _timers(self) -> None:
        state = self._state
        if not state.bot_paused:
            self._actions.check_digit_timeout()
        if self._hangup_sent_at is None and not self._max_duration_hit and state.now - self._t0 > self._max_s:
            log_event("call.max_duration", logging.WARNING, _log, call_id=self.call_id, limit_s=self._max_s)
            self._max_duration_hit = True
            state.hangup_requested = True
            self._media.interrupt()

    def _maybe_send_hangup(self) -> None:
        state = self._state
        if (
            state.hangup_requested
            and not self.prompts_busy
            and self._hangup_sent_at is None
            and not state.gone
        ):
            self._media.flush_redacted()
            self._hangup_sent_at = state.now
            state.out.append(SendHangup())
