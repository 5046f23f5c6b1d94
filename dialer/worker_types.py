"""The dialer worker's contracts: what a call placer gets and returns, the clock, the settings.

A :class:`CallPlacer` (the SIP adapter ``ivr.outbound.SipCallPlacer``, or a scripted fake in
tests) turns a :class:`CallRequest` into a :class:`CallReport`. The rules that allow a call
are checked once more right before its INVITE: a placer that declares
``checks_before_invite = True`` awaits ``request.ready_to_dial()`` at that moment (after it
started, loaded the flow and found a free line) and sends nothing when it returns False; for
any other placer the worker awaits it right before ``place()``. A placer may also have
``async start()`` (the worker awaits it before leasing anything: the SIP endpoint and speech
models are up before a contact's clock starts) and ``async aclose()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from dialer.store_types import AttemptReport


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
    ready_to_dial: Callable[[], Awaitable[bool]] | None = None
    """The check right before the INVITE (see the module docstring); None: always ready."""


CallReport = AttemptReport
"""How a placed call went, as the placer reports it and the store records it (one type).

A placer that did not send the INVITE (refused by ``ready_to_dial``, shutting down, no line)
reports ``CallResult.CANCELLED`` with ``invite_at=None`` and says why in ``detail``.
"""


class CampaignSetupError(Exception):
    """The campaign cannot be dialled as it is set up (its flow is missing or invalid).

    Raised by a placer before any INVITE. No contact can be helped by a retry, so the worker
    pauses the campaign and says why, instead of leasing the next contact every few seconds.
    """


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
    expected_call_s: float = 180.0
    """How long an answered call of a flow is expected to last (ring time not included); a
    campaign whose ``retry.deadline_margin`` is shorter than ring time plus this (or than what
    its calls took so far) is warned about when dialling starts."""
    finish_empty_campaigns: bool = True
    """Finish a running campaign once nothing is left to dial; off while real-time intake can
    still add contacts to it (a manager pauses or finishes such a campaign)."""
    not_dialled_retry_s: float = 30.0
    """How long a contact waits after a dial that failed on our side before any INVITE."""


@dataclass
class WorkerStats:
    leased: int = 0
    placed: int = 0
    """Calls whose INVITE left (the check before it passed)."""
    finished: int = 0
    lost: int = 0
    released: int = 0
    cancelled: int = 0
    """Attempts stopped before their INVITE (rules, shutdown, no line): never counted."""
    results: dict[str, int] = field(default_factory=dict)
