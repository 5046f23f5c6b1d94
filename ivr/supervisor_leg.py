"""A supervisor on a live call: the engine rings the supervisor's phone and mixes it in.

The supervisor's call is a second leg on the same endpoint, like a transfer's agent leg
(:mod:`ivr.transfer`), with its own :class:`~ivr.media_bridge.MediaBridge` and BridgePort, so
the pjsua2 media clock only ever touches lock-free deques. The mix happens in the caller's
call task, once per drain: the supervisor always hears the caller and the bot's prompts
(summed); in barge and take-over the caller hears the supervisor, whose frames are relayed onto
the caller's line and so land on the recording's bot track, never on the caller track the bot
listens to. Who hears whom per mode, and the DTMF keys, are :mod:`supervision.supervisor_modes`.

Nothing here blocks or raises into pjsua2: the leg's callbacks only set fields, and the call
task reads them on its next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from config.logs import log_event, mask_number
from ivr.media_bridge import BridgeRecord, MediaBridge
from ivr.sip_events import CallConnected, CallEnded, CallOffered, DtmfReceived
from recordings import RecordingInfo
from supervision.supervisor_modes import Mode, ModeChange, SupervisorModes

_log = logging.getLogger("ivr.supervision")
# Frames allowed to queue towards either party (160 ms) before the newest is dropped: both legs
# run on one media clock, so this only absorbs the call task's scheduling stalls; on a loaded
# machine 60 ms (a transfer's) dropped one frame in ten of the supervisor's voice.
_MAX_BACKLOG = 8
RING_TIMEOUT_S = 30.0


class SupervisorLeg:
    """The call to the supervisor's phone, as the call hub sees it (see :class:`CallLeg`)."""

    def __init__(self, offered: CallOffered, call_id: str, *, announce: bool = True) -> None:
        self.offered = offered
        self.call_id = f"supervisor-leg-{offered.call_key}"
        self.recording: RecordingInfo | None = None  # the supervised call records both sides
        self.bridge: MediaBridge | None = None
        self.ended: CallEnded | None = None
        self.digits: deque[str] = deque()
        self._over = asyncio.Event()
        # Logged like every call: the redirecting front counts a worker's lines from these lines
        # (a dialled-in supervisor's call was logged when it arrived: ``announce`` False).
        if not announce:
            return
        log_event(
            "call.offered",
            logger=_log,
            call_id=self.call_id,
            direction="outbound",
            leg="supervisor",
            supervised=call_id,
            remote=mask_number(offered.remote_uri),
        )

    async def run(self, connected: CallConnected) -> None:
        self.bridge = connected.bridge
        await self._over.wait()

    def on_dtmf(self, event: DtmfReceived) -> None:
        """A key on the supervisor's phone: read by the supervision on its next tick."""
        self.digits.append(event.digit)

    def on_ended(self, event: CallEnded) -> None:
        self.ended = event
        self._over.set()

    def request_hangup(self, reason: str) -> None:
        """The hub hangs the leg up itself (it sends the BYE); nothing to stop here."""

    def on_unconnected_end(self, event: CallEnded) -> None:
        """A supervisor who never answered is reported by the supervision (``ended``)."""


class SupervisorDialer(Protocol):
    def place_call(
        self, uri: str, ring_timeout_s: float, factory: Callable[[CallOffered], SupervisorLeg]
    ) -> tuple[int, asyncio.Future[SupervisorLeg]]: ...

    def hangup(self, call_key: int) -> None: ...


class AnsweredLeg:
    """A supervisor "dialer" whose call is already up (the supervisor dialled in): it hands the
    supervision the leg at once instead of ringing anything."""

    def __init__(self, offered: CallOffered, bridge: MediaBridge, hangup: Callable[[int], None]) -> None:
        self._offered = offered
        self._bridge = bridge
        self._hangup = hangup
        self.leg: SupervisorLeg | None = None
        self.done: asyncio.Future[SupervisorLeg] | None = None

    def place_call(
        self, uri: str, ring_timeout_s: float, factory: Callable[[CallOffered], SupervisorLeg]
    ) -> tuple[int, asyncio.Future[SupervisorLeg]]:
        self.leg = factory(self._offered)
        self.leg.bridge = self._bridge
        self.done = asyncio.get_running_loop().create_future()
        return self._offered.call_key, self.done

    def hangup(self, call_key: int) -> None:
        self._hangup(call_key)


def mix(first: bytes | None, second: bytes | None) -> bytes | None:
    """Two 16-bit frames summed with clipping (None: no audio on that side)."""
    if first is None or second is None:
        return first if second is None else second
    total = np.frombuffer(first, "<i2").astype(np.int32) + np.frombuffer(second, "<i2").astype(np.int32)
    return np.clip(total, -32768, 32767).astype("<i2").tobytes()


class Supervision:
    """One supervisor on one call: ring, then carry audio each tick and apply the keys pressed.

    :meth:`tick` returns the mode changes (start, keys, end) for the call session to tell the
    call core, the events, the audit and the recording.
    """

    def __init__(
        self, call_id: str, user: str, uri: str, mode: Mode, *, caller: MediaBridge, dialer: SupervisorDialer
    ) -> None:
        self.call_id = call_id
        self.user = user
        self.uri = uri
        self.modes = SupervisorModes(mode)
        self._caller = caller
        self._dialer = dialer
        self._leg: SupervisorLeg | None = None
        self._key: int | None = None
        self._done: asyncio.Future[SupervisorLeg] | None = None
        self.frames_to_supervisor = 0
        self.frames_to_caller = 0

    def start(self) -> None:
        """Ring the supervisor's phone (raises OSError when the hub is stopping)."""
        self._key, self._done = self._dialer.place_call(self.uri, RING_TIMEOUT_S, self._new_leg)

    def _new_leg(self, offered: CallOffered) -> SupervisorLeg:
        self._leg = SupervisorLeg(offered, self.call_id, announce=not isinstance(self._dialer, AnsweredLeg))
        return self._leg

    @property
    def over(self) -> bool:
        return self.modes.ended

    def call_frames(self, records: Sequence[BridgeRecord]) -> None:
        """What crossed the caller's bridge: the caller and the bot's prompts, mixed, for the
        supervisor. Relayed frames (the supervisor's own voice, a transfer) are left out."""
        leg = self._leg
        if leg is None or leg.bridge is None or self.modes.mode is None:
            return
        caller = [r.pcm for r in records if r.side == "caller"]
        bot = [r.pcm if r.prompt_id is not None else None for r in records if r.side == "bot"]
        for index in range(max(len(caller), len(bot))):
            pcm = mix(
                caller[index] if index < len(caller) else None, bot[index] if index < len(bot) else None
            )
            if pcm is not None and leg.bridge.backlog < _MAX_BACKLOG:
                leg.bridge.relay(pcm)
                self.frames_to_supervisor += 1

    def tick(self, now: float) -> list[ModeChange]:
        """Advance one media tick: answer, keys, the supervisor's audio, the leg's end."""
        changes: list[ModeChange] = []
        leg = self._leg
        if self.modes.ended:
            return changes
        if leg is not None and leg.bridge is not None and self.modes.mode is None:
            changes += _some(self.modes.answered(now))
        if leg is not None and leg.bridge is not None:
            while leg.digits:
                changes += _some(self.modes.key(leg.digits.popleft(), now))
            heard = self.modes.routes.caller_hears_supervisor
            for record in leg.bridge.drain():
                if record.side != "caller" or record.pcm is None or not heard:
                    continue  # listening: what the supervisor says goes nowhere
                if self._caller.backlog < _MAX_BACKLOG:
                    self._caller.relay(record.pcm)
                    self.frames_to_caller += 1
        if leg is not None and leg.ended is not None:
            reason = "supervisor hung up" if leg.bridge is not None else _unanswered(leg.ended)
            changes += _some(self.modes.leave(now, reason))
        elif self._done is not None and self._done.done() and leg is None:
            changes += _some(self.modes.leave(now, "the supervisor's phone could not be called"))
        return changes

    def close(self, now: float, reason: str) -> list[ModeChange]:
        """The supervised call is over (or the supervision is stopped): hang up the leg."""
        if self._key is not None and (self._leg is None or self._leg.ended is None):
            self._dialer.hangup(self._key)
        return _some(self.modes.leave(now, reason))


def _some(change: ModeChange | None) -> list[ModeChange]:
    return [] if change is None else [change]


def _unanswered(ended: CallEnded) -> str:
    if ended.ring_timed_out:
        return "the supervisor did not answer"
    return f"the supervisor's phone refused the call ({ended.status_code} {ended.reason})".strip()
