"""Bridged transfer: the caller stays on our line while we ring an agent and relay both ways.

A flow's ``transfer`` step names a queue (``queue:cards``, looked up in ``transfer.queues``)
or a SIP URI. We place a second call (the agent leg) on the same endpoint; while it rings the
caller hears ringback; once it answers, every 20 ms frame from the caller is relayed to the
agent and every frame from the agent to the caller. The caller's recording keeps running, so
the agent's words land on its right channel next to the bot's, and an auditor hears the whole
call. A SIP REFER (blind transfer) would hand the call away and lose that recording.

Nothing here blocks: the call session's :class:`CallTransfers` routes the flow's target, starts
a :class:`BridgedTransfer` and calls its :meth:`~BridgedTransfer.tick` once per media tick,
turning what happens into :class:`~ivr.call_vocabulary.TransferUpdate` events for the call core.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from config.logs import log_event, mask_number, mask_target
from config.settings import TransferSettings
from flows import TransferResult
from ivr.call_media import TICK_S
from ivr.call_vocabulary import TransferUpdate
from ivr.media_bridge import MediaBridge
from ivr.sip_events import CallConnected, CallEnded, CallOffered, DtmfReceived
from ivr.sip_status import classify_sip_status
from media.tones import ringback_frames
from recordings import RecordingInfo

_log = logging.getLogger("ivr.transfer")
_call_log = logging.getLogger("ivr.call")  # what a call's transfer did is logged with the call
# Frames of the agent's audio allowed to queue for the caller (60 ms) before the newest is
# dropped: both legs run on one media clock, so this only absorbs scheduling jitter.
_MAX_BACKLOG = 3
_RINGBACK = ringback_frames()


@dataclass(frozen=True)
class Route:
    """Where a transfer target rings, or why it cannot."""

    uri: str | None
    problem: str = ""


def route(target: str, settings: TransferSettings) -> Route:
    """Resolve a flow's transfer target to a SIP URI (pure: only settings are consulted)."""
    target = target.strip()
    if target.startswith(("sip:", "sips:")):
        if settings.allow_sip_uris:
            return Route(target)
        return Route(None, "SIP URI targets are turned off (transfer.allow_sip_uris)")
    name = target.removeprefix("queue:")
    uri = settings.queues.get(name)
    if uri is None:
        return Route(None, f"no SIP URI for queue '{name}' (set transfer.queues.{name})")
    return Route(uri)


class AgentLeg:
    """The call to the agent, as the call hub sees it: it only carries audio for the caller's session."""

    def __init__(self, offered: CallOffered) -> None:
        self.offered = offered
        self.call_id = f"agent-leg-{offered.call_key}"
        self.recording: RecordingInfo | None = None  # the caller's session records both sides
        self.bridge: MediaBridge | None = None
        self.ended: CallEnded | None = None
        self._over = asyncio.Event()
        # Logged like every call: the redirecting front counts a worker's lines from these lines.
        log_event(
            "call.offered",
            logger=_log,
            call_id=self.call_id,
            direction="outbound",
            leg="agent",
            remote=mask_number(offered.remote_uri),
        )

    async def run(self, connected: CallConnected) -> None:
        self.bridge = connected.bridge
        await self._over.wait()

    def on_dtmf(self, event: DtmfReceived) -> None:
        """Digits from the agent's phone are not for the flow (it has finished)."""

    def on_ended(self, event: CallEnded) -> None:
        self.ended = event
        self._over.set()

    def request_hangup(self, reason: str) -> None:
        """The hub hangs the leg up itself (it sends the BYE); nothing to stop here."""

    def on_unconnected_end(self, event: CallEnded) -> None:
        """An agent who never answered is reported by the transfer (busy, no answer)."""


class LegDialer(Protocol):
    def place_call(
        self, uri: str, ring_timeout_s: float, factory: Callable[[CallOffered], AgentLeg]
    ) -> tuple[int, asyncio.Future[AgentLeg]]: ...

    def hangup(self, call_key: int) -> None: ...


class BridgedTransfer:
    """One transfer attempt; see the module docstring. States: ringing -> connected -> over."""

    def __init__(
        self, target: str, uri: str, caller: MediaBridge, dialer: LegDialer, ring_timeout_s: float
    ) -> None:
        self.target = target
        self.uri = uri
        self.state = "ringing"
        self._caller = caller
        self._dialer = dialer
        self._ring_timeout_s = ring_timeout_s
        self._leg: AgentLeg | None = None
        self._key: int | None = None
        self._done: asyncio.Future[AgentLeg] | None = None
        self._ringback = itertools.cycle(_RINGBACK)
        self.frames_to_agent = 0
        self.frames_to_caller = 0

    def start(self) -> None:
        self._key, self._done = self._dialer.place_call(self.uri, self._ring_timeout_s, self._new_leg)

    def _new_leg(self, offered: CallOffered) -> AgentLeg:
        self._leg = AgentLeg(offered)
        return self._leg

    def tick(self, ringback: bool) -> TransferResult | None:
        """Advance one media tick; returns the result once the agent answered or the leg failed.

        ``ringback``: the caller hears ringing while the agent's phone rings (False while a
        prompt, such as "please hold", is still playing).
        """
        if self.state == "ringing":
            leg = self._leg
            if leg is not None and leg.bridge is not None:
                self.state = "connected"
                return TransferResult(success=True)
            if self._done is not None and self._done.done():
                self.state = "over"
                return TransferResult(success=False, reason=self._failure())
            if ringback and self._caller.backlog < _MAX_BACKLOG:
                self._caller.relay(next(self._ringback))
            return None
        if self.state == "connected":
            assert self._leg is not None and self._leg.bridge is not None
            for record in self._leg.bridge.drain():
                if record.side == "caller" and record.pcm is not None and self._caller.backlog < _MAX_BACKLOG:
                    self._caller.relay(record.pcm)
                    self.frames_to_caller += 1
            if self._leg.ended is not None:
                self.state = "over"
        return None

    @property
    def agent_left(self) -> bool:
        """True once a connected agent leg has ended (the caller should be hung up)."""
        return self.state == "over" and self._leg is not None and self._leg.bridge is not None

    def caller_frame(self, pcm: bytes | None) -> None:
        """A frame from the caller: the agent hears it once connected."""
        bridge = self._leg.bridge if self._leg is not None and self.state == "connected" else None
        if pcm is not None and bridge is not None and bridge.backlog < _MAX_BACKLOG:
            bridge.relay(pcm)
            self.frames_to_agent += 1

    def close(self) -> None:
        """The caller's call is over: hang up the agent leg (ringing or connected)."""
        if self.state != "over" and self._key is not None:
            self._dialer.hangup(self._key)
        self.state = "over"

    def _failure(self) -> str:
        assert self._done is not None
        error = self._done.exception() if not self._done.cancelled() else None
        ended = self._leg.ended if self._leg is not None else None
        if ended is not None:
            # The same reading of SIP statuses as the dialer's (busy, no_answer, rejected, ...).
            return classify_sip_status(ended.status_code or None, ended.ring_timed_out).value
        return f"failed: {error}" if error is not None else "failed"


class CallTransfers:
    """One call's side of its transfers: route the flow's target, ring and bridge it, and report
    what happened to the call core as :class:`TransferUpdate` events."""

    def __init__(
        self,
        call_id: str,
        settings: TransferSettings,
        caller: MediaBridge,
        dialer: LegDialer | None,
        publish: Callable[[str, dict[str, object]], None],
    ) -> None:
        self.call_id = call_id
        self._settings = settings
        self._caller = caller
        self._dialer = dialer
        self._publish = publish
        self._active: BridgedTransfer | None = None

    def start(self, target: str) -> TransferUpdate | None:
        """Ring ``target``; returns the failure to post to the core when it cannot even ring."""
        where = route(target, self._settings)
        if where.uri is None or self._dialer is None:
            reason = where.problem or "transfers need the call hub"
            log_event(
                "call.transfer_unavailable",
                logging.WARNING,
                _call_log,
                call_id=self.call_id,
                target=mask_target(target),
                reason=reason,
            )
            return TransferUpdate(success=False, reason="no_route")
        xfer = BridgedTransfer(target, where.uri, self._caller, self._dialer, self._settings.ring_timeout_s)
        try:
            xfer.start()
        except OSError as exc:
            return TransferUpdate(success=False, reason=f"failed: {exc}")
        self._active = xfer
        log_event("call.transferring", logger=_call_log, call_id=self.call_id, target=mask_target(target))
        self._publish("transferring", {"target": mask_target(target)})
        return None

    def caller_frame(self, pcm: bytes | None) -> None:
        """A frame from the caller, for the agent once connected."""
        if self._active is not None:
            self._active.caller_frame(pcm)

    def tick(self, ringback: bool) -> TransferUpdate | None:
        """Advance the transfer one media tick; what the core must hear of it, if anything."""
        xfer = self._active
        if xfer is None:
            return None
        result = xfer.tick(ringback)
        if result is not None:
            if not result.success:
                self._active = None
            return TransferUpdate(success=result.success, reason=result.reason)
        if xfer.agent_left:
            return TransferUpdate(agent_left=True)
        return None

    def close(self) -> None:
        """The caller's call is over: hang up the agent leg, and log how much audio crossed."""
        xfer = self._active
        if xfer is None:
            return
        xfer.close()
        log_event(
            "call.bridge_closed",
            logger=_call_log,
            call_id=self.call_id,
            to_agent_s=round(xfer.frames_to_agent * TICK_S, 2),
            to_caller_s=round(xfer.frames_to_caller * TICK_S, 2),
        )
