"""The dialer loop: lease due contacts when pacing allows, place calls, record results.

The worker knows no SIP: a :class:`CallPlacer` (the SIP adapter, or a scripted fake in tests)
turns a :class:`CallRequest` into a :class:`CallReport`. Time comes from a :class:`Clock`
so tests step it by hand. Database calls run in a thread (``asyncio.to_thread``) because the
store is synchronous SQLAlchemy and must not block the event loop.

A live call keeps its lease renewed (every third of the lease); if renewal fails (the
lease was reclaimed, e.g. the database was unreachable longer than the lease), the call is
cancelled at once so the contact is never in two live calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from config.logs import log_event, mask_number
from dialer.call_result import CallResult
from dialer.pacing import Pacer
from dialer.retry_policy import Decision, RetryAt
from dialer.store import AttemptReport, DialerStore, Lease, LeaseLostError, final_outcome
from ivr.event_publisher import EventPublisher, NullPublisher, dialer_topic

_LOG = logging.getLogger("ivr.dialer")


@dataclass(frozen=True)
class CallRequest:
    """Everything the SIP side needs to place one outbound call and run its flow."""

    contact_id: int
    number: str
    """E.164, e.g. ``+8613812345678``."""
    sip_uri: str
    """``settings.dialer.trunk_uri`` with ``{number}`` filled in."""
    flow: str
    variables: Mapping[str, str]
    """The contact's fields plus ``first_name``, ``last_name``, ``campaign``."""
    ring_timeout_s: float
    machine_policy: str
    """``leave_message`` or ``hangup_retry`` (see :class:`dialer.models.MachinePolicy`)."""
    campaign: str = ""


CallReport = AttemptReport
"""How a placed call went, as the placer reports it and the store records it (one type)."""


class CallPlacer(Protocol):
    """Places one call and returns when it is over (implemented by ``ivr.outbound``)."""

    async def place(self, request: CallRequest) -> CallReport: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall time (stored in the database)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps back (pacing)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock, for the ``dial`` command."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class WorkerConfig:
    owner: str
    """Unique per worker (host:pid:n); stored as the lease owner and on attempts."""
    trunk_uri: str = "sip:{number}@127.0.0.1:5080"
    ring_timeout_s: float = 30.0
    campaign: str | None = None
    """Only dial this campaign (None: every running campaign)."""
    poll_interval_s: float = 1.0
    housekeeping_interval_s: float = 10.0


@dataclass
class WorkerStats:
    leased: int = 0
    placed: int = 0
    finished: int = 0
    lost: int = 0
    released: int = 0
    results: dict[str, int] = field(default_factory=dict)


class DialerWorker:
    """One dialling loop; several may share a :class:`Pacer` (one per trunk) and a store."""

    def __init__(
        self,
        store: DialerStore,
        pacer: Pacer,
        placer: CallPlacer,
        clock: Clock,
        config: WorkerConfig,
        *,
        events: EventPublisher | None = None,
    ) -> None:
        self.events: EventPublisher = events or NullPublisher()
        self.store = store
        self.pacer = pacer
        self.placer = placer
        self.clock = clock
        self.config = config
        self.stats = WorkerStats()
        self._calls: set[asyncio.Task[None]] = set()
        self._last_housekeeping: float | None = None
        self._wake = asyncio.Event()
        self._settled = False  # a call ended since the last housekeeping

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def housekeeping(self) -> None:
        """Reclaim dead workers' leases, expire passed deadlines, finish empty campaigns."""
        now = self.clock.now()
        await asyncio.to_thread(self.store.reclaim_expired_leases, now)
        for gone in await asyncio.to_thread(self.store.expire_due, now):
            self.events.publish(
                dialer_topic(gone.campaign, "expired"),
                {
                    "contact_id": gone.contact_id,
                    "phone": gone.phone,
                    "outcome": "expired",
                    "reason": "deadline passed unreached",
                },
            )
        await asyncio.to_thread(self.store.finish_campaigns, now)
        self._last_housekeeping = self.clock.monotonic()
        self._settled = False

    async def tick(self) -> int:
        """Start as many calls as pacing allows right now; returns how many were started."""
        mono = self.clock.monotonic()
        if (
            self._last_housekeeping is None
            or mono - self._last_housekeeping >= self.config.housekeeping_interval_s
        ):
            await self.housekeeping()
        started = 0
        while (mono := self.clock.monotonic()) == self.pacer.next_slot_time(mono):
            leases = await asyncio.to_thread(
                self.store.lease, self.config.owner, self.clock.now(), 1, self.config.campaign
            )
            if not leases:
                break
            lease = leases[0]
            self.stats.leased += 1
            if not self.pacer.try_acquire(mono):
                await asyncio.to_thread(self.store.release, lease, self.clock.now())
                self.stats.released += 1
                break
            task = asyncio.create_task(self._call(lease), name=f"dialer-call-{lease.contact_id}")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            started += 1
        if started == 0 and self._settled and not self._calls:
            # Idle after calls ended: finish campaigns now rather than at the next interval.
            await self.housekeeping()
        return started

    async def wait_idle(self) -> None:
        """Wait for every call this worker started to be recorded."""
        while self._calls:
            await asyncio.gather(*list(self._calls), return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Dial until ``stop`` is set, then let the calls in progress finish."""
        log_event("dialer.worker_started", logger=_LOG, worker=self.config.owner)
        try:
            while not stop.is_set():
                await self.tick()
                mono = self.clock.monotonic()
                wake = self.pacer.next_slot_time(mono)
                delay = (
                    self.config.poll_interval_s
                    if wake is None
                    else min(self.config.poll_interval_s, max(wake - mono, 0.01))
                )
                self._wake.clear()
                sleeper = asyncio.create_task(self.clock.sleep(delay))
                waiters = [sleeper, asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
                _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
        finally:
            await self.wait_idle()
            log_event(
                "dialer.worker_stopped", logger=_LOG, worker=self.config.owner, placed=self.stats.placed
            )

    def _request(self, lease: Lease) -> CallRequest:
        variables = {str(k): str(v) for k, v in lease.fields.items()}
        variables.update(
            first_name=lease.first_name,
            last_name=lease.last_name,
            campaign=lease.campaign,
            timezone=lease.timezone,  # the flow's "today" and "tomorrow" are the callee's
        )
        return CallRequest(
            contact_id=lease.contact_id,
            number=lease.phone,
            sip_uri=self.config.trunk_uri.replace("{number}", lease.phone),
            flow=lease.flow,
            variables=variables,
            ring_timeout_s=self.config.ring_timeout_s,
            machine_policy=lease.machine_policy,
            campaign=lease.campaign,
        )

    async def _call(self, lease: Lease) -> None:
        try:
            attempt_id = await asyncio.to_thread(self.store.start_attempt, lease, self.clock.now())
            if attempt_id is None:  # paused or put on the do-not-call list since the lease
                self.stats.released += 1
                return
            self.stats.placed += 1
            log_event(
                "dialer.call_placed",
                logger=_LOG,
                worker=self.config.owner,
                contact=lease.contact_id,
                number=mask_number(lease.phone),
            )
            report = await self._place_with_renewal(lease)
            decision = await asyncio.to_thread(
                self.store.finish_attempt, lease, attempt_id, report, self.clock.now()
            )
            self._publish_attempt(lease, report, decision)
            self.stats.finished += 1
            self.stats.results[report.result.value] = self.stats.results.get(report.result.value, 0) + 1
        except LeaseLostError:
            self.stats.lost += 1
            log_event(
                "dialer.lease_lost", logging.WARNING, _LOG, worker=self.config.owner, contact=lease.contact_id
            )
        finally:
            self.pacer.release(self.clock.monotonic())
            self._settled = True
            self._wake.set()

    def _publish_attempt(self, lease: Lease, report: CallReport, decision: Decision) -> None:
        payload: dict[str, object] = {
            "contact_id": lease.contact_id,
            "phone": lease.phone,
            "attempt": lease.attempts + 1,
            "result": report.result.value,
            "sip_status": report.sip_status,
            "recording_id": report.recording_id,
        }
        next_step: dict[str, Any] = (
            {"retry_at": decision.when.isoformat()}
            if isinstance(decision, RetryAt)
            else {"outcome": final_outcome(decision, report)}
        )
        retry = "retry_at" in next_step
        payload.update(next_step)
        self.events.publish(dialer_topic(lease.campaign, "attempt"), payload)
        if not retry:
            self.events.publish(dialer_topic(lease.campaign, "outcome"), payload)
        log_event(
            "dialer.retry" if retry else "dialer.outcome",
            logger=_LOG,
            contact=lease.contact_id,
            result=report.result.value,
            **next_step,
        )

    async def _place_with_renewal(self, lease: Lease) -> CallReport:
        started = self.clock.now()
        call = asyncio.create_task(self._place(lease, started))
        interval = max((lease.expires_at - started).total_seconds() / 3, 0.05)
        current = lease
        try:
            while True:
                renewal = asyncio.create_task(self.clock.sleep(interval))
                finished, _ = await asyncio.wait({call, renewal}, return_when=asyncio.FIRST_COMPLETED)
                if call in finished:
                    renewal.cancel()
                    return call.result()
                try:
                    current = await asyncio.to_thread(self.store.renew, current, self.clock.now())
                except LeaseLostError:
                    call.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await call
                    raise
        finally:
            if not call.done():
                call.cancel()

    async def _place(self, lease: Lease, started: datetime) -> CallReport:
        try:
            return await self.placer.place(self._request(lease))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the placer failed: record it as a network failure and retry
            log_event(
                "dialer.placer_failed",
                logging.ERROR,
                _LOG,
                worker=self.config.owner,
                contact=lease.contact_id,
                error=type(exc).__name__,
            )
            return CallReport(CallResult.NETWORK_FAILURE, started, self.clock.now())
