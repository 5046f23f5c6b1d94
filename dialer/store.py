"""The repository the dialer workers share: leases, attempts, retries, outcomes, expiry.

Leasing is the one place two workers can race. On PostgreSQL the candidates are selected
``FOR UPDATE SKIP LOCKED`` so concurrent workers take disjoint rows without waiting; on
SQLite every transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`dialer.db`) so leases
are taken one writer at a time. Every lease bumps ``lease_token``; a worker's later writes
name the token and are refused (:class:`LeaseLostError`) once the lease was reclaimed, so a
worker that stalled past its lease cannot overwrite the newer holder's state.

Rules come from the policy modules (:mod:`dialer.scheduler`, :mod:`dialer.retry_policy`):
SQL pre-selects in the scheduler's order, :func:`dialer.scheduler.is_dialable` has the last
word, and a contact that is not dialable yet gets ``next_attempt_at`` moved to when it will
be, so it drops out of the next scan instead of being read again and again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from dialer.call_result import CallResult, Outcome
from dialer.calling_hours import CallingHours
from dialer.db import CampaignNotFoundError, DialerDataError
from dialer.dnc import add_in_session
from dialer.models import Attempt, Campaign, CampaignState, Contact, ContactEvent, ContactState, EventKind
from dialer.retry_policy import Decision, Final, RetryAt, RetryPolicy
from dialer.scheduler import CampaignKind, CampaignPolicy, ContactSlot, Reason, expired, is_dialable

_LOG = logging.getLogger("ivr.dialer.store")

WORKER_LOST = "worker_lost"
"""``attempts.result`` of a call whose worker died before reporting it."""
DO_NOT_CALL_OUTCOME = "do_not_call"
_SCAN_ROUNDS = 8


class LeaseLostError(DialerDataError):
    """The lease expired and was reclaimed; the worker must drop this contact."""


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


class DialerStore:
    """Database operations of the dialer, each one short transaction (see module docstring)."""

    def __init__(self, engine: Engine, lease_duration: timedelta = timedelta(seconds=300)) -> None:
        self.engine = engine
        self.lease_duration = lease_duration
        self._for_update = engine.dialect.name == "postgresql"

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
        leases: list[Lease] = []
        policies: dict[int, tuple[Campaign, CampaignPolicy]] = {}
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
                        policies[camp.id] = (camp, campaign_policy(camp))
                    policy = policies[camp.id][1]
                    verdict = is_dialable(slot(contact), policy, now)
                    if verdict.ok:
                        leases.append(self._take(contact, camp, owner, now))
                    elif verdict.not_before is not None:
                        contact.next_attempt_at = verdict.not_before
                    elif verdict.reason is Reason.NO_ATTEMPTS_LEFT:
                        self._finish(session, contact, Outcome.MAX_ATTEMPTS.value, now, "no attempts left")
                    elif verdict.reason in (
                        Reason.EXPIRED,
                        Reason.OUTSIDE_CALLING_HOURS,
                        Reason.WINDOW_NOT_OPEN,
                    ):
                        self._expire(session, contact, now, "no calling hours left before the deadline")
                session.flush()
        return leases

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

    def _held(self, session: Session, lease: Lease) -> Contact:
        query = select(Contact).where(Contact.id == lease.contact_id)
        if self._for_update:
            query = query.with_for_update()
        contact = session.scalars(query).one_or_none()
        if (
            contact is None
            or contact.lease_token != lease.token
            or contact.lease_owner != lease.owner
            or contact.state not in (ContactState.LEASED, ContactState.IN_CALL)
        ):
            raise LeaseLostError(f"lease {lease.token} on contact {lease.contact_id} was lost")
        return contact

    def renew(self, lease: Lease, now: datetime) -> Lease:
        """Extend a lease that is still held (a long call); raises :class:`LeaseLostError`."""
        with Session(self.engine) as session, session.begin():
            contact = self._held(session, lease)
            contact.lease_expires_at = now + self.lease_duration
            expires = contact.lease_expires_at
        return dataclasses.replace(lease, expires_at=expires)

    def release(self, lease: Lease, now: datetime) -> None:
        """Give a contact back undialled (paused campaign, shutdown, pacing)."""
        with Session(self.engine) as session, session.begin():
            try:
                contact = self._held(session, lease)
            except LeaseLostError:
                return
            if contact.state != ContactState.LEASED:
                raise DialerDataError(f"contact {lease.contact_id} is in a call; finish it instead")
            self._unlease(contact, ContactState.PENDING)

    # -- calls -----------------------------------------------------------------------------
    def start_attempt(self, lease: Lease, now: datetime) -> int | None:
        """Record that the call is being placed now; returns the attempt id.

        Returns None (and gives the contact back) when the campaign was paused or the number
        put on the do-not-call list since the lease was taken: the last check before dialling.
        """
        with Session(self.engine) as session, session.begin():
            contact = self._held(session, lease)
            if contact.state != ContactState.LEASED:
                raise DialerDataError(f"contact {lease.contact_id} already has a live call")
            state = session.scalar(select(Campaign.state).where(Campaign.id == contact.campaign_id))
            if contact.dnc or state != CampaignState.RUNNING:
                self._unlease(contact, ContactState.PENDING)
                return None
            contact.state = ContactState.IN_CALL
            contact.attempts += 1
            attempt = Attempt(contact_id=contact.id, started_at=now, worker=lease.owner)
            session.add(attempt)
            session.flush()
            return attempt.id

    def finish_attempt(self, lease: Lease, attempt_id: int, report: AttemptReport, now: datetime) -> Decision:
        """Store the call's result and apply the retry policy or the final outcome."""
        with Session(self.engine) as session, session.begin():
            attempt = session.get(Attempt, attempt_id)
            if attempt is None or attempt.contact_id != lease.contact_id:
                raise DialerDataError(f"attempt {attempt_id} is not an attempt of contact {lease.contact_id}")
            attempt.ended_at = report.ended_at
            attempt.sip_status = report.sip_status
            attempt.result = report.result.value
            attempt.flow_outcome = report.flow_outcome
            attempt.recording_id = report.recording_id
            session.flush()
            contact = self._held(session, lease)
            camp = session.get_one(Campaign, contact.campaign_id)
            contact.last_result = report.result.value
            if report.recording_id:
                contact.recording_id = report.recording_id
            if report.result is CallResult.CANCELLED:
                contact.attempts -= 1  # our own hang-up (pause, shutdown) costs the callee nothing
            policy = campaign_policy(camp)
            decision = self._decide(session, contact, policy, report, now)
            if isinstance(decision, RetryAt):
                contact.next_attempt_at = decision.when
                self._unlease(contact, ContactState.PENDING)
                if report.callback_at and report.flow_outcome == policy.retry.callback_outcome:
                    detail = f"asked for {report.callback_at} local; calling at {decision.when.isoformat()}"
                    session.add(
                        ContactEvent(contact_id=contact.id, at=now, kind=EventKind.CALLBACK, detail=detail)
                    )
            else:
                outcome = final_outcome(decision, report)
                if report.flow_outcome == DO_NOT_CALL_OUTCOME:
                    add_in_session(session, contact.phone, f"flow outcome in campaign {camp.name}", now)
                self._finish(session, contact, outcome, now, decision.reason)
        return decision

    def _decide(
        self, session: Session, contact: Contact, policy: CampaignPolicy, report: AttemptReport, now: datetime
    ) -> Decision:
        if report.flow_outcome == DO_NOT_CALL_OUTCOME:
            return Final(Outcome.DO_NOT_CALL, "the callee asked not to be called again")
        retried_outcome = policy.retry.follows_flow_outcome(report.result, report.flow_outcome)
        same = session.scalar(
            select(func.count())
            .select_from(Attempt)
            .where(
                Attempt.contact_id == contact.id,
                Attempt.flow_outcome == report.flow_outcome
                if retried_outcome
                else Attempt.result == report.result.value,
            )
        )
        return policy.retry.decide(
            report.result,
            contact.attempts,
            now,
            same_result_count=max(1, same or 0),
            deadline=min((t for t in (contact.window_end, policy.ends_at) if t is not None), default=None),
            hours=policy.hours,
            tz=contact.timezone,
            message_left=report.message_left,
            flow_outcome=report.flow_outcome,
            requested_at=callee_local_time(report.callback_at, contact.timezone),
        )

    @staticmethod
    def _unlease(contact: Contact, state: ContactState) -> None:
        contact.state = state
        contact.lease_owner = None
        contact.lease_expires_at = None

    def _finish(self, session: Session, contact: Contact, outcome: str, now: datetime, detail: str) -> None:
        self._unlease(contact, ContactState.DONE)
        contact.outcome = outcome
        contact.outcome_at = now
        kind = EventKind.EXPIRED if outcome == Outcome.EXPIRED else EventKind.OUTCOME
        session.add(ContactEvent(contact_id=contact.id, at=now, kind=kind, detail=f"{outcome}: {detail}"))

    def _expire(self, session: Session, contact: Contact, now: datetime, why: str) -> None:
        deadline = contact.window_end.isoformat() if contact.window_end else "campaign end"
        detail = f"{why}; deadline {deadline}, {contact.attempts} attempts, last result {contact.last_result}"
        self._finish(session, contact, Outcome.EXPIRED.value, now, detail)

    # -- housekeeping ----------------------------------------------------------------------
    def expire_due(self, now: datetime) -> list[ExpiredContact]:
        """Give outcome ``expired`` (and an event) to pending contacts whose deadline passed."""
        expired_now: list[ExpiredContact] = []
        with Session(self.engine) as session, session.begin():
            query = (
                select(Contact, Campaign)
                .join(Campaign, Campaign.id == Contact.campaign_id)
                .where(
                    Contact.state == ContactState.PENDING,
                    or_(
                        Contact.window_end <= now,
                        and_(Campaign.ends_at.is_not(None), Campaign.ends_at <= now),
                    ),
                )
            )
            if self._for_update:
                query = query.with_for_update(skip_locked=True, of=Contact)
            for contact, camp in session.execute(query):
                if expired(slot(contact), now, campaign_policy(camp)):
                    self._expire(session, contact, now, "deadline passed unreached")
                    expired_now.append(ExpiredContact(contact.id, camp.name, contact.phone))
        return expired_now

    def reclaim_expired_leases(self, now: datetime) -> int:
        """Put contacts whose worker died (lease expired) back in the queue.

        A call that was live when its worker vanished keeps its attempt, closed with result
        ``worker_lost``; the contact is retried (and its attempts still count).
        """
        with Session(self.engine) as session, session.begin():
            query = select(Contact).where(
                Contact.state.in_([ContactState.LEASED, ContactState.IN_CALL]), Contact.lease_expires_at < now
            )
            if self._for_update:
                query = query.with_for_update(skip_locked=True)
            contacts = list(session.scalars(query))
            for contact in contacts:
                was_in_call = contact.state == ContactState.IN_CALL
                if was_in_call:
                    session.execute(
                        update(Attempt)
                        .where(Attempt.contact_id == contact.id, Attempt.ended_at.is_(None))
                        .values(ended_at=now, result=WORKER_LOST)
                    )
                    contact.last_result = WORKER_LOST
                detail = f"lease of {contact.lease_owner} expired{' during a call' if was_in_call else ''}"
                session.execute(
                    insert(ContactEvent).values(
                        contact_id=contact.id, at=now, kind=EventKind.LEASE_RECLAIMED, detail=detail
                    )
                )
                contact.next_attempt_at = max(contact.next_attempt_at, now)
                self._unlease(contact, ContactState.PENDING)
        return len(contacts)

    def finish_campaigns(self, now: datetime) -> list[str]:
        """Finish running campaigns with nothing left to dial; their do-not-call contacts get
        outcome ``do_not_call`` so every contact of a finished campaign has an outcome."""
        with Session(self.engine) as session, session.begin():
            open_contacts = (
                select(Contact.id)
                .where(
                    Contact.campaign_id == Campaign.id,
                    Contact.state != ContactState.DONE,
                    Contact.dnc.is_(False),
                )
                .exists()
            )
            done = list(
                session.scalars(
                    select(Campaign).where(Campaign.state == CampaignState.RUNNING, ~open_contacts)
                )
            )
            for camp in done:
                camp.state = CampaignState.FINISHED
                skipped = session.scalars(
                    select(Contact).where(Contact.campaign_id == camp.id, Contact.state != ContactState.DONE)
                )
                for contact in skipped:
                    self._finish(session, contact, Outcome.DO_NOT_CALL.value, now, "on the do-not-call list")
            return [c.name for c in done]
