"""The dialer loop: take a trunk line and lease a due contact when pacing allows, place the
call, record the result.

The worker knows no SIP: a :class:`CallPlacer` turns a :class:`CallRequest` into a
:class:`CallReport` (contracts in :mod:`dialer.worker_types`). Time comes from a
:class:`Clock` so tests step it by hand. Database calls run in a thread
(``asyncio.to_thread``) because the store is synchronous SQLAlchemy and must not block the
event loop.

Before leasing anything, :meth:`DialerWorker.run` starts the placer (``placer.start()``: the
SIP endpoint and speech models) and warns about campaigns whose deadline margin is shorter
than a call. Every call's rules are checked again right before its INVITE
(:class:`dialer.dial_gate.DialGate`); an attempt stopped before its INVITE (rules, shutdown,
a placer failure, no free line) is ``cancelled`` and never counts against the contact.

A live call keeps its lease (and its trunk line, with :class:`dialer.trunk_lines.TrunkLines`)
renewed every third of the lease; if renewal fails (reclaimed, e.g. the database was
unreachable longer than the lease), the call is cancelled at once so the contact is never in
two live calls and the trunk never over its lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from config.logs import log_event
from dialer.call_result import CallResult
from dialer.db import DialerDataError
from dialer.dial_gate import DialGate, warn_short_margins
from dialer.models import CampaignState
from dialer.pacing import Pacer
from dialer.retry_policy import Decision, RetryAt
from dialer.store import DialerStore, ExpiredContact, Lease, LeaseLostError, final_outcome
from dialer.trunk_lines import LineHold, LineLostError, TrunkLines
from dialer.worker_types import (
    CallPlacer,
    CallReport,
    CallRequest,
    CampaignSetupError,
    Clock,
    SystemClock,
    WorkerConfig,
    WorkerStats,
)
from ivr.event_publisher import EventPublisher, NullPublisher, dialer_topic

__all__ = [
    "CallPlacer",
    "CallReport",
    "CallRequest",
    "Clock",
    "DialerWorker",
    "SystemClock",
    "WorkerConfig",
    "WorkerStats",
]

_LOG = logging.getLogger("ivr.dialer")


class DialerWorker:
    """One dialling loop; several may share a :class:`Pacer` (one per trunk), a store and
    :class:`TrunkLines` (which several processes share through the database)."""

    def __init__(
        self,
        store: DialerStore,
        pacer: Pacer,
        placer: CallPlacer,
        clock: Clock,
        config: WorkerConfig,
        *,
        events: EventPublisher | None = None,
        lines: TrunkLines | None = None,
    ) -> None:
        self.events: EventPublisher = events or NullPublisher()
        self.store = store
        self.pacer = pacer
        self.placer = placer
        self.clock = clock
        self.config = config
        self.lines = lines
        self.stats = WorkerStats()
        self._calls: set[asyncio.Task[None]] = set()
        self._last_housekeeping: float | None = None
        self._next_expiry: datetime | None = None  # the next waiting contact's last start
        self._lookahead = timedelta(seconds=self.config.poll_interval_s)
        self._wake = asyncio.Event()
        self._settled = False  # a call ended since the last housekeeping
        self._stop: asyncio.Event | None = None

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def start_placer(self) -> None:
        """Start the placer (SIP endpoint, speech models) before any contact is leased."""
        start = getattr(self.placer, "start", None)
        if start is not None:
            await start()

    async def housekeeping(self) -> None:
        """Reclaim dead workers' leases, close do-not-call contacts, expire contacts no call can
        reach in time (an alert each), finish empty campaigns, warn about short margins."""
        now = self.clock.now()
        await asyncio.to_thread(self.store.reclaim_expired_leases, now)
        await asyncio.to_thread(self.store.close_listed_contacts, now)
        # One poll interval ahead: the next look may come that late, and an expiry must come
        # before the last start (at least the margin before the deadline), not after it.
        for gone in await asyncio.to_thread(self.store.expire_due, now, self._lookahead):
            self._publish_expired(gone)
        self._next_expiry = await asyncio.to_thread(self.store.next_last_start, now)
        if self.config.finish_empty_campaigns:
            await asyncio.to_thread(self.store.finish_campaigns, now)
        await warn_short_margins(self.store, self.config)
        self._last_housekeeping = self.clock.monotonic()
        self._settled = False

    async def tick(self) -> int:
        """Start as many calls as pacing allows right now; returns how many were started."""
        mono = self.clock.monotonic()
        if (
            self._last_housekeeping is None
            or mono - self._last_housekeeping >= self.config.housekeeping_interval_s
            or (self._next_expiry is not None and self.clock.now() + self._lookahead >= self._next_expiry)
        ):
            await self.housekeeping()
        started = 0
        while (mono := self.clock.monotonic()) == self.pacer.next_slot_time(mono):
            hold = None
            if self.lines is not None:
                hold = await asyncio.to_thread(self.lines.acquire, self.config.owner, self.clock.now())
                if hold is None:  # every line of the trunk is busy (maybe in another process)
                    break
            leases, gone = await asyncio.to_thread(
                self.store.lease_due, self.config.owner, self.clock.now(), 1, self.config.campaign
            )
            for contact in gone:
                self._publish_expired(contact)
            if not leases:
                await self._free_line(hold)
                break
            lease = leases[0]
            self.stats.leased += 1
            if not self.pacer.try_acquire(mono):
                await asyncio.to_thread(self.store.release, lease, self.clock.now())
                await self._free_line(hold)
                self.stats.released += 1
                break
            task = asyncio.create_task(self._call(lease, hold), name=f"dialer-call-{lease.contact_id}")
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
        """Start the placer, then dial until ``stop`` is set; then let the calls in progress
        finish (a call not yet dialled is cancelled, not counted)."""
        self._stop = stop
        await self.start_placer()
        log_event("dialer.worker_started", logger=_LOG, worker=self.config.owner)
        try:
            while not stop.is_set():
                self._wake.clear()  # before the tick: a wake-up during it is not lost
                await self.tick()
                mono = self.clock.monotonic()
                wake = self.pacer.next_slot_time(mono)
                # A free slot now with nothing started means nothing is due: poll, do not spin.
                delay = (
                    self.config.poll_interval_s
                    if wake is None or wake <= mono
                    else min(self.config.poll_interval_s, wake - mono)
                )
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

    def wake(self) -> None:
        """A contact may have become due (real-time intake): look now, not at the next poll."""
        self._wake.set()

    def _stopping(self) -> str:
        return "the dialer is stopping" if self._stop is not None and self._stop.is_set() else ""

    def _request(self, lease: Lease, gate: DialGate | None = None) -> CallRequest:
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
            ready_to_dial=gate,
        )

    async def _call(self, lease: Lease, hold: LineHold | None) -> None:
        try:
            attempt_id = await asyncio.to_thread(self.store.start_attempt, lease, self.clock.now())
            if attempt_id is None:  # paused or put on the do-not-call list since the lease
                self.stats.released += 1
                return
            gate = DialGate(
                self.store,
                lease,
                attempt_id,
                self.clock,
                stopping=self._stopping,
                on_expired=self._publish_expired,
            )
            checks_itself = bool(getattr(self.placer, "checks_before_invite", False))
            if not checks_itself:
                await gate()  # a placer that does not check: its place() is the INVITE
            if not gate.refused:
                report = await self._place_with_renewal(lease, hold, self._request(lease, gate), gate)
            if gate.lost is not None:
                raise gate.lost
            if gate.refused:  # the store already closed the attempt and moved the contact
                self.stats.cancelled += 1
                return
            if not gate.passed or (report.result is CallResult.CANCELLED and report.invite_at is None):
                await self._not_dialled(lease, attempt_id, report)
                return
            self.stats.placed += 1
            if report.invite_at is None:
                report = dataclasses.replace(report, invite_at=gate.passed_at)
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
            await self._free_line(hold)
            self._settled = True
            self._wake.set()

    async def _not_dialled(self, lease: Lease, attempt_id: int, report: CallReport) -> None:
        """The placer returned without sending the INVITE: cancelled, not counted; the contact
        is called again at once after a shutdown, after a short wait after a failure."""
        now = self.clock.now()
        wait = 0.0 if self._stopping() else self.config.not_dialled_retry_s
        detail = report.detail or "not dialled: the placer sent no INVITE"
        await asyncio.to_thread(
            self.store.cancel_attempt, lease, attempt_id, detail, now, now + timedelta(seconds=wait)
        )
        self.stats.cancelled += 1
        owner, contact = self.config.owner, lease.contact_id
        log_event("dialer.dial_cancelled", logger=_LOG, worker=owner, contact=contact, detail=detail)

    async def _free_line(self, hold: LineHold | None) -> None:
        if hold is None or self.lines is None:
            return
        try:
            await asyncio.to_thread(self.lines.release, hold)
        except (SQLAlchemyError, DialerDataError) as exc:  # the hold expires on its own
            log_event("dialer.line_release_failed", logging.WARNING, _LOG, line=hold.line, error=str(exc))

    def _publish_expired(self, gone: ExpiredContact) -> None:
        self.events.publish(
            dialer_topic(gone.campaign, "expired"),
            {
                "contact_id": gone.contact_id,
                "phone": gone.phone,
                "outcome": "expired",
                "reason": "deadline passed unreached",
            },
        )

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

    async def _place_with_renewal(
        self, lease: Lease, hold: LineHold | None, request: CallRequest, gate: DialGate
    ) -> CallReport:
        started = self.clock.now()
        call = asyncio.create_task(self._place(request, started, gate))
        interval = max((lease.expires_at - started).total_seconds() / 3, 0.05)
        if hold is not None and self.lines is not None:
            interval = min(interval, max(self.lines.hold.total_seconds() / 3, 0.05))
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
                    if hold is not None and self.lines is not None:
                        hold = await asyncio.to_thread(self.lines.renew, hold, self.clock.now())
                except (LeaseLostError, LineLostError) as exc:
                    call.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await call
                    if isinstance(exc, LineLostError):
                        log_event("dialer.line_lost", logging.WARNING, _LOG, contact=lease.contact_id)
                        raise LeaseLostError(str(exc)) from exc
                    raise
        finally:
            if not call.done():
                call.cancel()

    async def _place(self, request: CallRequest, started: datetime, gate: DialGate) -> CallReport:
        try:
            return await self.placer.place(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the placer failed: a network failure if the INVITE had left
            if isinstance(exc, CampaignSetupError) and not gate.passed:
                await self._pause_broken_campaign(request.campaign, str(exc))
                detail = f"not dialled: the campaign was paused: {exc}"
                return CallReport(CallResult.CANCELLED, started, self.clock.now(), detail=detail[:500])
            log_event(
                "dialer.placer_failed",
                logging.ERROR,
                _LOG,
                worker=self.config.owner,
                contact=request.contact_id,
                error=type(exc).__name__,
            )
            if gate.passed:
                failed = str(exc)[:500]
                return CallReport(CallResult.NETWORK_FAILURE, started, self.clock.now(), detail=failed)
            detail = f"not dialled: the placer failed before the INVITE: {type(exc).__name__}: {exc}"
            return CallReport(CallResult.CANCELLED, started, self.clock.now(), detail=detail[:500])

    async def _pause_broken_campaign(self, campaign: str, reason: str) -> None:
        """Pause a campaign no call of which can be placed, once, and tell the managers why."""
        try:
            previous = await asyncio.to_thread(self.store.set_state, campaign, CampaignState.PAUSED)
        except (SQLAlchemyError, DialerDataError) as exc:
            log_event("dialer.pause_failed", logging.ERROR, _LOG, campaign=campaign, error=str(exc))
            return
        if previous is CampaignState.PAUSED:
            return  # another call of the same campaign got here first
        log_event("dialer.campaign_paused", logging.ERROR, _LOG, campaign=campaign, reason=reason)
        self.events.publish(dialer_topic(campaign, "paused"), {"campaign": campaign, "reason": reason})
