"""The repository the dialer workers share: campaigns, leases, attempts, retries, outcomes, expiry.

Leasing is the one place two workers can race. On PostgreSQL the candidates are selected
``FOR UPDATE SKIP LOCKED`` so concurrent workers take disjoint rows without waiting; on
SQLite every transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`dialer.db`) so leases
are taken one writer at a time. Every lease bumps ``lease_token``; a worker's later writes
name the token and are refused (:class:`LeaseLostError`) once the lease was reclaimed.

Rules come from the policy modules (:mod:`dialer.scheduler`, :mod:`dialer.retry_policy`):
SQL pre-selects in the scheduler's order, :func:`dialer.scheduler.is_dialable` has the last
word at lease time, and a contact that is not dialable yet gets ``next_attempt_at`` moved to
when it will be, so it drops out of the next scan instead of being read again and again.
The rules are checked once more right before the INVITE (:meth:`AttemptStore.dial_gate`,
in :mod:`dialer.attempt_store` with the rest of an attempt's writes); the periodic upkeep
lives in :mod:`dialer.housekeeping`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dialer.attempt_store import DIAL_GUARD, AttemptStore, ContactClosedError
from dialer.call_result import Outcome
from dialer.contact_rows import expire, finish
from dialer.db import CampaignNotFoundError, DialerDataError
from dialer.housekeeping import (
    answered_call_seconds,
    close_listed_contacts,
    expire_due,
    finish_campaigns,
    next_last_start,
    reclaim_expired_leases,
)
from dialer.models import Campaign, CampaignState, Contact, ContactState
from dialer.scheduler import CampaignPolicy, Reason, is_dialable
from dialer.store_types import (
    DIAL_OK,
    DO_NOT_CALL_OUTCOME,
    WORKER_LOST,
    AttemptReport,
    DialVerdict,
    ExpiredContact,
    Lease,
    LeaseLostError,
    callee_local_time,
    campaign_policy,
    final_outcome,
    slot,
)

__all__ = [
    "DIAL_OK",
    "DO_NOT_CALL_OUTCOME",
    "WORKER_LOST",
    "AttemptReport",
    "ContactClosedError",
    "DialVerdict",
    "DialerStore",
    "ExpiredContact",
    "Lease",
    "LeaseLostError",
    "callee_local_time",
    "campaign_policy",
    "final_outcome",
    "slot",
]

_SCAN_ROUNDS = 8


class DialerStore(AttemptStore):
    """Database operations of the dialer, each one short transaction (see module docstring)."""

    def __init__(
        self,
        engine: Engine,
        lease_duration: timedelta = timedelta(seconds=300),
        dial_guard: timedelta = DIAL_GUARD,
    ) -> None:
        super().__init__(engine, lease_duration, dial_guard)

    # -- campaigns -------------------------------------------------------------------------
    def campaign(self, name: str) -> Campaign:
        with Session(self.engine) as session:
            found = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
        if found is None:
            raise CampaignNotFoundError(name)
        return found

    def campaigns(self) -> list[Campaign]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Campaign).order_by(Campaign.name)))

    def set_state(self, name: str, state: CampaignState) -> CampaignState:
        """Start, pause, resume or finish; takes effect for the next lease any worker takes."""
        with Session(self.engine) as session, session.begin():
            campaign = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
            if campaign is None:
                raise CampaignNotFoundError(name)
            previous = CampaignState(campaign.state)
            if previous is CampaignState.FINISHED and state is not CampaignState.FINISHED:
                raise DialerDataError(f"campaign '{name}' is finished; import into a new campaign")
            campaign_policy(campaign)  # refuse to run a campaign whose stored rules are invalid
            campaign.state = state.value
        return previous

    # -- leasing ---------------------------------------------------------------------------
    def lease(self, owner: str, now: datetime, limit: int = 1, campaign: str | None = None) -> list[Lease]:
        """Lease up to ``limit`` dialable contacts of running campaigns, in policy order."""
        return self.lease_due(owner, now, limit, campaign)[0]

    def lease_due(
        self, owner: str, now: datetime, limit: int = 1, campaign: str | None = None
    ) -> tuple[list[Lease], list[ExpiredContact]]:
        """:meth:`lease`, also returning the contacts found expired on the way (to alert on)."""
        leases: list[Lease] = []
        gone: list[ExpiredContact] = []
        policies: dict[int, CampaignPolicy] = {}
        with Session(self.engine) as session, session.begin():
            for _ in range(_SCAN_ROUNDS):
                wanted = limit - len(leases)
                if wanted <= 0:
                    break
                rows = session.execute(self._candidates(now, wanted + 8, campaign)).all()
                if not rows:
                    break
                for contact, camp in rows:
                    if len(leases) >= limit:
                        break
                    if camp.id not in policies:
                        policies[camp.id] = campaign_policy(camp)
                    verdict = is_dialable(slot(contact), policies[camp.id], now)
                    if verdict.ok:
                        leases.append(self._take(contact, camp, owner, now))
                    elif verdict.not_before is not None:
                        contact.next_attempt_at = verdict.not_before
                    elif verdict.reason is Reason.NO_ATTEMPTS_LEFT:
                        finish(session, contact, Outcome.MAX_ATTEMPTS.value, now, "no attempts left")
                    elif verdict.reason in (
                        Reason.EXPIRED,
                        Reason.OUTSIDE_CALLING_HOURS,
                        Reason.WINDOW_NOT_OPEN,
                    ):
                        expire(session, contact, now, "no calling hours left before the deadline")
                        gone.append(ExpiredContact(contact.id, camp.name, contact.phone))
                session.flush()
        return leases, gone

    def _candidates(self, now: datetime, batch: int, campaign: str | None) -> Any:
        query = (
            select(Contact, Campaign)
            .join(Campaign, Campaign.id == Contact.campaign_id)
            .where(
                Campaign.state == CampaignState.RUNNING,
                Contact.state == ContactState.PENDING,
                Contact.dnc.is_(False),
                Contact.next_attempt_at <= now,
            )
            .order_by(
                Contact.window_end.asc().nulls_last(), Contact.priority.desc(), Contact.attempts, Contact.id
            )
            .limit(batch)
        )
        if campaign is not None:
            query = query.where(Campaign.name == campaign)
        if self._for_update:
            query = query.with_for_update(skip_locked=True, of=Contact)
        return query

    def _take(self, contact: Contact, camp: Campaign, owner: str, now: datetime) -> Lease:
        contact.state = ContactState.LEASED
        contact.lease_owner = owner
        contact.lease_expires_at = now + self.lease_duration
        contact.lease_token += 1
        return Lease(
            contact_id=contact.id,
            token=contact.lease_token,
            owner=owner,
            expires_at=contact.lease_expires_at,
            campaign_id=camp.id,
            campaign=camp.name,
            flow=camp.flow,
            machine_policy=camp.machine_policy,
            phone=contact.phone,
            timezone=contact.timezone,
            attempts=contact.attempts,
            first_name=contact.first_name,
            last_name=contact.last_name,
            fields=dict(contact.fields),
        )

    # -- housekeeping (dialer.housekeeping) ------------------------------------------------
    def reclaim_expired_leases(self, now: datetime) -> int:
        """Put contacts whose worker died back in the queue (see :mod:`dialer.housekeeping`)."""
        return reclaim_expired_leases(self.engine, self._for_update, now)

    def close_listed_contacts(self, now: datetime) -> int:
        """Waiting contacts on the do-not-call list end ``do_not_call`` now."""
        return close_listed_contacts(self.engine, self._for_update, now)

    def expire_due(self, now: datetime, lookahead: timedelta = timedelta(0)) -> list[ExpiredContact]:
        """Expire waiting contacts no call may reach in time (the margin before the deadline),
        or within ``lookahead`` of now."""
        return expire_due(self.engine, self._for_update, now, lookahead)

    def next_last_start(self, now: datetime) -> datetime | None:
        """When the next waiting contact's last start comes (see :mod:`dialer.housekeeping`)."""
        return next_last_start(self.engine, now)

    def finish_campaigns(self, now: datetime) -> list[str]:
        """Finish running campaigns with nothing left to dial."""
        return finish_campaigns(self.engine, now)

    def answered_call_seconds(self, flow: str, limit: int = 200) -> list[float]:
        """How long the latest answered calls of ``flow`` lasted (INVITE to hang-up), seconds."""
        return answered_call_seconds(self.engine, flow, limit)
