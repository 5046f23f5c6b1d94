"""The worker's side of the check before an INVITE, and the deadline-margin warning.

:class:`DialGate` is what a :class:`~dialer.worker_types.CallRequest` carries as
``ready_to_dial``: awaited once, right before the INVITE, it runs
:meth:`dialer.store.DialerStore.dial_gate` (the contact re-read, every rule judged at that
moment) and remembers the verdict, so the worker knows afterwards whether the call went out.

:func:`warn_short_margins` warns once per campaign when its ``retry.deadline_margin`` is
shorter than a call is expected to take: calls started in time could end after the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Callable
from datetime import datetime, timedelta

from config.logs import log_event, mask_number
from dialer.call_result import PolicyError
from dialer.models import CampaignState
from dialer.scheduler import margin_shortfall
from dialer.store import DialerStore
from dialer.store_types import DialVerdict, ExpiredContact, Lease, LeaseLostError, campaign_policy
from dialer.worker_types import Clock, WorkerConfig

_LOG = logging.getLogger("ivr.dialer")
_WARNED: set[tuple[int, str, float]] = set()


class DialGate:
    """``ready_to_dial`` for one attempt (see the module docstring)."""

    def __init__(
        self,
        store: DialerStore,
        lease: Lease,
        attempt_id: int,
        clock: Clock,
        *,
        stopping: Callable[[], str],
        on_expired: Callable[[ExpiredContact], None],
    ) -> None:
        self.store = store
        self.lease = lease
        self.attempt_id = attempt_id
        self.clock = clock
        self._stopping = stopping
        self._on_expired = on_expired
        self.verdict: DialVerdict | None = None
        self.lost: LeaseLostError | None = None

    @property
    def passed(self) -> bool:
        """The check passed: the INVITE went out (or was about to)."""
        return self.verdict is not None and self.verdict.ok

    @property
    def refused(self) -> bool:
        """The check said no; the store has already closed the attempt and moved the contact."""
        return self.verdict is not None and not self.verdict.ok

    @property
    def passed_at(self) -> datetime | None:
        return self.verdict.at if self.verdict is not None else None

    async def __call__(self) -> bool:
        if self.verdict is not None:  # asked twice: the first answer stands
            return self.verdict.ok
        try:
            verdict = await asyncio.to_thread(
                self.store.dial_gate, self.lease, self.attempt_id, self.clock.now, self._stopping()
            )
        except LeaseLostError as exc:
            self.lost = exc
            verdict = DialVerdict(False, "lease_lost", f"not dialled: {exc}")
        self.verdict = verdict
        if verdict.expired is not None:
            self._on_expired(verdict.expired)
        if verdict.ok:
            log_event(
                "dialer.call_placed",
                logger=_LOG,
                worker=self.lease.owner,
                contact=self.lease.contact_id,
                number=mask_number(self.lease.phone),
            )
        else:
            log_event(
                "dialer.dial_cancelled",
                logger=_LOG,
                worker=self.lease.owner,
                contact=self.lease.contact_id,
                reason=verdict.reason,
                detail=verdict.detail,
            )
        return verdict.ok


async def warn_short_margins(store: DialerStore, config: WorkerConfig) -> None:
    """Warn (once per campaign and margin) about running campaigns whose deadline margin is
    shorter than ring time plus the expected call (the flow's answered calls so far, at the
    90th percentile, or ``config.expected_call_s`` when longer or nothing is known yet)."""
    campaigns = await asyncio.to_thread(store.campaigns)
    for camp in campaigns:
        if camp.state != CampaignState.RUNNING or config.campaign not in (None, camp.name):
            continue
        try:
            policy = campaign_policy(camp)
        except PolicyError:
            continue
        margin = policy.retry.deadline_margin
        key = (id(store.engine), camp.name, margin.total_seconds())
        if key in _WARNED:
            continue
        _WARNED.add(key)
        seen = await asyncio.to_thread(store.answered_call_seconds, camp.flow)
        observed = statistics.quantiles(seen, n=10)[-1] if len(seen) >= 5 else 0.0
        call_s = max(config.expected_call_s, observed)
        expected = timedelta(seconds=config.ring_timeout_s + call_s)
        short = margin_shortfall(policy, expected)
        if short is None:
            continue
        log_event(
            "dialer.deadline_margin_short",
            logging.WARNING,
            _LOG,
            campaign=camp.name,
            deadline_margin_s=margin.total_seconds(),
            expected_call_s=round(expected.total_seconds(), 1),
            ring_timeout_s=config.ring_timeout_s,
            observed_p90_s=round(observed, 1),
            short_by_s=round(short.total_seconds(), 1),
            advice="calls started near the deadline may end after it; raise the campaign's "
            "retry deadline_margin (campaign import --retry deadline_margin=10m)",
        )
