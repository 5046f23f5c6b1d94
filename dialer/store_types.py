"""What the dialer store hands out and takes back: leases, attempt reports, verdicts.

Plain values, shared by :mod:`dialer.store`, :mod:`dialer.housekeeping`, the worker and the
call placer, plus the two conversions the store needs from stored rows to policy objects
(:func:`campaign_policy`, :func:`slot`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.call_result import CallResult, Outcome
from dialer.calling_hours import CallingHours
from dialer.db import DialerDataError
from dialer.models import Campaign, Contact
from dialer.retry_policy import Final, RetryPolicy
from dialer.scheduler import CampaignKind, CampaignPolicy, ContactSlot

_LOG = logging.getLogger("ivr.dialer.store")

WORKER_LOST = "worker_lost"
"""``attempts.result`` of a call whose worker died after its INVITE left."""
DO_NOT_CALL_OUTCOME = "do_not_call"


class LeaseLostError(DialerDataError):
    """The lease expired and was reclaimed; the worker must drop this contact."""


@dataclass(frozen=True)
class ExpiredContact:
    """A contact whose window closed unreached: someone must act on its order."""

    contact_id: int
    campaign: str
    phone: str


@dataclass(frozen=True)
class Lease:
    """A contact held by one worker until ``expires_at``; carries what a call needs."""

    contact_id: int
    token: int
    owner: str
    expires_at: datetime
    campaign_id: int
    campaign: str
    flow: str
    machine_policy: str
    phone: str
    timezone: str
    attempts: int
    first_name: str = ""
    last_name: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttemptReport:
    """How one call went; ``result`` drives retries, ``flow_outcome`` becomes the outcome.

    The call placer returns it (``dialer.worker.CallReport`` is this type) and the store records it.
    The event times are the real ones (None when it did not happen): ``invite_at`` when the
    INVITE left, ``answered_at`` the 200 OK, ``flow_started_at`` the flow's first prompt.
    """

    result: CallResult
    started_at: datetime
    ended_at: datetime
    sip_status: int | None = None
    flow_outcome: str | None = None
    """The flow's outcome when a person answered (``confirmed``, ``declined``, ``do_not_call``...)."""
    recording_id: str | None = None
    message_left: bool = False
    """True when a message was left on an answering machine."""
    callback_at: str | None = None
    """When the callee asked to be called back, in their local time (``YYYY-MM-DDTHH:MM``)."""
    invite_at: datetime | None = None
    answered_at: datetime | None = None
    flow_started_at: datetime | None = None
    detail: str = ""
    """Why it ended as it did when the result does not say (e.g. why it was cancelled)."""
    decision_text: str | None = None
    """The recognized words of the answer that decided the flow outcome."""
    decision_confidence: float | None = None


@dataclass(frozen=True)
class DialVerdict:
    """The answer of the check right before an INVITE: dial now, or not (and why)."""

    ok: bool
    reason: str = "ok"
    detail: str = ""
    expired: ExpiredContact | None = None
    """Set when the check found the contact expired: the worker raises the alert."""
    at: datetime | None = None
    """When the check passed (the INVITE leaves right after)."""


DIAL_OK = DialVerdict(True)


def final_outcome(decision: Final, report: AttemptReport) -> str:
    """The contact's outcome: the flow's, when a person answered and the flow set one.

    A deadline that left no room for the call a callee needed (a call-back they asked for, a
    retry after they hung up undecided) makes it ``expired`` whatever the flow said.
    """
    if decision.outcome is Outcome.EXPIRED:
        return decision.outcome.value
    if report.result.connected and report.flow_outcome:
        return report.flow_outcome
    return decision.outcome.value


def callee_local_time(text: str | None, tz: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` on the callee's clock as an aware time; None when absent or unreadable.

    An unreadable time (a flow that set it wrongly) must not lose the call's outcome: the
    contact is then treated as if no time had been asked for.
    """
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text)
        zone = ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        _LOG.warning("ignoring call-back time %r (time zone %s): not YYYY-MM-DDTHH:MM", text, tz)
        return None
    return local.replace(tzinfo=zone) if local.tzinfo is None else local


def campaign_policy(campaign: Campaign) -> CampaignPolicy:
    """The scheduling policy stored with ``campaign`` (validated by the policy classes)."""
    return CampaignPolicy(
        kind=CampaignKind(campaign.kind),
        hours=CallingHours.from_config(campaign.calling_hours, f"campaign {campaign.name} calling_hours"),
        retry=RetryPolicy.from_config(campaign.retry, f"campaign {campaign.name} retry"),
        callback_window=timedelta(seconds=campaign.callback_window_s),
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
    )


def slot(contact: Contact) -> ContactSlot:
    return ContactSlot(
        id=contact.id,
        e164=contact.phone,
        tz=contact.timezone,
        window_start=contact.window_start,
        window_end=contact.window_end,
        priority=contact.priority,
        attempts=contact.attempts,
        next_attempt_at=contact.next_attempt_at,
        dnc=contact.dnc,
        state=contact.state,
    )
