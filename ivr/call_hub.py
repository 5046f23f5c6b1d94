"""Owns the SIP agent and routes its events to one :class:`CallSession` task per call.

Both directions use it: ``serve`` lets it create a session for every inbound INVITE, and the
dialer's :class:`~ivr.outbound.SipCallPlacer` registers a session before placing each call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from config.logs import log_event, mask_number
from config.settings import SipSettings
from ivr.call_services import CallServices
from ivr.sip_agent import SipAgent
from ivr.sip_events import CallConnected, CallEnded, CallOffered, CallRefused, DtmfReceived, SipEvent
from recordings import RecordingInfo

_log = logging.getLogger("ivr.hub")


class CallLeg(Protocol):
    """What the hub drives for each call: a :class:`~ivr.call_session.CallSession`, or the
    agent leg of a bridged transfer (:class:`~ivr.transfer.AgentLeg`)."""

    call_id: str
    recording: RecordingInfo | None

    async def run(self, connected: CallConnected) -> None: ...

    def on_dtmf(self, event: DtmfReceived) -> None: ...

    def on_ended(self, event: CallEnded) -> None: ...

    def request_hangup(self, reason: str) -> None: ...

    def on_unconnected_end(self, event: CallEnded) -> None: ...


LegT = TypeVar("LegT", bound=CallLeg)
SessionFactory = Callable[[CallOffered], CallLeg]


@dataclass
class HubStats:
    offered: int = 0
    refused: int = 0
    completed: int = 0
    failed: int = 0
    recordings: list[str] = field(default_factory=list)


class CallHub:
    """See the module docstring. ``inbound`` makes the session for an incoming call."""

    def __init__(
        self, sip: SipSettings, services: CallServices, inbound: SessionFactory | None = None
    ) -> None:
        self.services = services
        self.agent = SipAgent(sip, self._on_sip_event, native_bridge=services.settings.media.native_bridge)
        self.wall_offset = time.time() - time.monotonic()
        self._inbound = inbound
        self.sessions: dict[int, CallLeg] = {}
        self._outbound: dict[int, SessionFactory] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._finished: dict[int, asyncio.Future[Any]] = {}
        self.stats = HubStats()
        self._closing = False
        self._slot_freed = asyncio.Event()

    def start(self) -> None:
        self.agent.start(asyncio.get_running_loop())

    async def stop(self, grace_s: float) -> None:
        """Hang up every live call (BYE), let sessions close their recordings, stop the agent."""
        self._closing = True
        self._slot_freed.set()
        for key, session in list(self.sessions.items()):
            session.request_hangup("shutdown")
            self.agent.hangup(key)
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            _done, still = await asyncio.wait(pending, timeout=grace_s)
            for task in still:
                task.cancel()
        await asyncio.to_thread(self.agent.stop)
        for key in list(self._finished):  # placed calls the stopped agent will never report on
            self._outbound.pop(key, None)
            self._resolve_unplaced(key, "SIP agent stopped")

    @property
    def free_slots(self) -> int:
        """Calls this hub can still take, counting both directions and calls still being placed."""
        return self.agent.capacity - len(self.sessions) - len(self._outbound)

    async def wait_for_slot(self) -> None:
        """Wait until a call can be placed without being refused for capacity.

        When ``serve`` also dials, inbound callers and the dialer share one endpoint; the
        dialer waits for room rather than burning an attempt on a call pjsua would refuse.
        """
        while self.free_slots <= 0 and not self._closing:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    def place(
        self, uri: str, ring_timeout_s: float, factory: Callable[[CallOffered], LegT]
    ) -> asyncio.Future[LegT]:
        """Place a call; the future resolves with its leg once the call is over.

        Raises OSError once the hub is stopping: nothing would ever report on the call.
        """
        return self.place_call(uri, ring_timeout_s, factory)[1]

    def place_call(
        self, uri: str, ring_timeout_s: float, factory: Callable[[CallOffered], LegT]
    ) -> tuple[int, asyncio.Future[LegT]]:
        """:meth:`place`, also returning the call's key (to hang it up while it rings)."""
        if self._closing:
            raise OSError("the SIP agent is shutting down")
        key = self.agent.place_call(uri, ring_timeout_s)
        self._outbound[key] = factory
        future: asyncio.Future[LegT] = asyncio.get_running_loop().create_future()
        self._finished[key] = future
        return key, future

    def hangup(self, call_key: int) -> None:
        self.agent.hangup(call_key)

    # -- events from the SIP agent (on the loop) ------------------------------------------
    def _on_sip_event(self, event: SipEvent) -> None:
        if isinstance(event, CallRefused):
            self.stats.refused += 1
            log_event(
                "call.refused",
                logger=_log,
                sip_call_id=event.sip_call_id,
                caller=mask_number(event.remote_uri),
                status=event.status_code,
                reason=event.reason,
            )
            return
        if isinstance(event, CallOffered):
            self.stats.offered += 1
            factory = self._outbound.pop(event.call_key, None) or self._inbound
            if factory is None:
                self.agent.hangup(event.call_key, 403)
                return
            self.sessions[event.call_key] = factory(event)
            return
        session = self.sessions.get(event.call_key)
        if session is None:
            if isinstance(event, CallEnded):  # failed before it was even offered
                self._outbound.pop(event.call_key, None)
                self._resolve_unplaced(event.call_key, event.reason)
            return
        if isinstance(event, CallConnected):
            task = asyncio.create_task(self._run_session(session, event), name=f"call-{event.call_key}")
            self._tasks[event.call_key] = task
        elif isinstance(event, DtmfReceived):
            session.on_dtmf(event)
        elif isinstance(event, CallEnded):
            log_event("call.released", logger=_log, call_id=session.call_id, status=event.status_code)
            session.on_ended(event)
            if event.call_key not in self._tasks:  # never connected: nothing runs for it
                self.sessions.pop(event.call_key, None)
                session.on_unconnected_end(event)
                self._resolve(event.call_key, session)

    def _resolve(self, key: int, session: CallLeg) -> None:
        self._slot_freed.set()
        future = self._finished.pop(key, None)
        if future is not None and not future.done():
            future.set_result(session)

    def _resolve_unplaced(self, key: int, reason: str) -> None:
        self._slot_freed.set()
        future = self._finished.pop(key, None)
        if future is not None and not future.done():
            future.set_exception(OSError(reason))

    async def _run_session(self, session: CallLeg, connected: CallConnected) -> None:
        key = connected.call_key
        try:
            await session.run(connected)
            self.stats.completed += 1
            if session.recording is not None:
                self.stats.recordings.append(str(session.recording.wav_path))
        except Exception:
            self.stats.failed += 1
            _log.exception("call.failed", extra={"fields": {"call_id": session.call_id}})
            self.agent.hangup(key)
        finally:
            self.sessions.pop(key, None)
            self._tasks.pop(key, None)
            self._resolve(key, session)
