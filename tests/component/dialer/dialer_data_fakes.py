"""A fake clock stepped by hand and a scripted call placer (fakes, not mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.call_result import CallResult
from dialer.worker import CallReport, CallRequest


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self._now = start
        self._mono = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + seconds, future))
        await future

    @property
    def pending_sleeps(self) -> int:
        """Sleeps not yet due (a test waits for the code under test to reach one)."""
        return len(self._sleepers)

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._now += timedelta(seconds=seconds)
        due = [(t, f) for t, f in self._sleepers if t <= self._mono]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._mono]
        for _, future in due:
            if not future.done():
                future.set_result(None)


@dataclass(frozen=True)
class Scripted:
    result: CallResult
    flow_outcome: str | None = None
    sip_status: int | None = None
    seconds: float = 0.0
    message_left: bool = False
    callback_at: str | None = None


class ScriptedPlacer:
    """Answers each number with the next scripted result; flags a second live call.

    Like the SIP placer it checks the rules itself right before the INVITE
    (``request.ready_to_dial``), ``pre_invite_s`` after ``place()`` was called (start-up,
    waiting for a line); ``invites`` records (contact, time) of every INVITE that left.
    """

    checks_before_invite = True

    def __init__(
        self, clock: FakeClock, scripts: Mapping[str, Iterable[Scripted]], pre_invite_s: float = 0.0
    ) -> None:
        self.clock = clock
        self.scripts = {number: list(items) for number, items in scripts.items()}
        self.pre_invite_s = pre_invite_s
        self.requests: list[CallRequest] = []
        self.invites: list[tuple[int, datetime]] = []
        self.refused: list[int] = []
        self.live: set[int] = set()
        self.max_live = 0
        self.double_calls: list[int] = []

    async def place(self, request: CallRequest) -> CallReport:
        started = self.clock.now()
        if self.pre_invite_s:
            await self.clock.sleep(self.pre_invite_s)
        if request.ready_to_dial is not None and not await request.ready_to_dial():
            self.refused.append(request.contact_id)
            return CallReport(CallResult.CANCELLED, started, self.clock.now(), detail="not dialled: refused")
        if request.contact_id in self.live:
            self.double_calls.append(request.contact_id)
        self.live.add(request.contact_id)
        self.max_live = max(self.max_live, len(self.live))
        self.requests.append(request)
        invite_at = self.clock.now()
        self.invites.append((request.contact_id, invite_at))
        try:
            step = self.scripts[request.number].pop(0)
            if step.seconds:
                await self.clock.sleep(step.seconds)
            return CallReport(
                result=step.result,
                started_at=started,
                ended_at=self.clock.now(),
                sip_status=step.sip_status,
                flow_outcome=step.flow_outcome,
                recording_id=f"rec-{request.contact_id}-{len(self.requests)}",
                message_left=step.message_left,
                callback_at=step.callback_at,
                invite_at=invite_at,
                answered_at=invite_at if step.result.connected else None,
            )
        finally:
            self.live.discard(request.contact_id)
