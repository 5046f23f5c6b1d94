"""The dialer's periodic upkeep: reclaim dead workers' leases, close do-not-call contacts,
expire contacts nobody can reach in time, finish campaigns with nothing left.

Each function is one transaction on rows other workers may hold too: on PostgreSQL the rows
are taken ``FOR UPDATE SKIP LOCKED``, so upkeep never waits for a worker's live write.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, insert, or_, select, true
from sqlalchemy.orm import Session

from dialer.call_result import CallResult, Outcome
from dialer.contact_rows import expire, finish, unlease
from dialer.hourly_counters import count_change, facts_of
from dialer.models import Attempt, Campaign, CampaignState, Contact, ContactEvent, ContactState, EventKind
from dialer.rates import AttemptFacts
from dialer.scheduler import expired
from dialer.store_types import WORKER_LOST, ExpiredContact, campaign_policy, slot


def reclaim_expired_leases(engine: Engine, for_update: bool, now: datetime) -> int:
    """Put contacts whose worker died (lease expired) back in the queue.

    A call whose INVITE had left keeps its attempt, closed with result ``worker_lost`` (it
    counts). An attempt that never dialled is closed ``cancelled`` and does not count.
    """
    with Session(engine) as session, session.begin():
        query = select(Contact).where(
            Contact.state.in_([ContactState.LEASED, ContactState.IN_CALL]), Contact.lease_expires_at < now
        )
        if for_update:
            query = query.with_for_update(skip_locked=True)
        contacts = list(session.scalars(query))
        for contact in contacts:
            owner = contact.lease_owner
            open_attempts = session.scalars(
                select(Attempt).where(Attempt.contact_id == contact.id, Attempt.ended_at.is_(None))
            )
            dialled = False
            before: dict[int, AttemptFacts | None] = {}
            for attempt in open_attempts:
                before[attempt.id] = facts_of(attempt)
                attempt.ended_at = now
                if attempt.invite_at is not None:
                    dialled = True
                    attempt.result = WORKER_LOST
                    attempt.detail = f"worker {owner} lost during the call"
                else:
                    attempt.result = CallResult.CANCELLED.value
                    attempt.detail = f"not dialled: worker {owner} lost before the INVITE"
            if dialled:
                contact.last_result = WORKER_LOST
            count_change(session, contact, before)
            detail = f"lease of {owner} expired{' during a call' if dialled else ' before dialling'}"
            session.execute(
                insert(ContactEvent).values(
                    contact_id=contact.id, at=now, kind=EventKind.LEASE_RECLAIMED, detail=detail
                )
            )
            contact.next_attempt_at = max(contact.next_attempt_at, now)
            unlease(contact, ContactState.PENDING)
    return len(contacts)


def close_listed_contacts(engine: Engine, for_update: bool, now: datetime) -> int:
    """Contacts waiting to be called whose number is on the do-not-call list (e.g. imported so)
    end ``do_not_call`` now: they are never dialled, and never reported expired."""
    with Session(engine) as session, session.begin():
        query = select(Contact).where(Contact.state == ContactState.PENDING, Contact.dnc.is_(True))
        if for_update:
            query = query.with_for_update(skip_locked=True)
        contacts = list(session.scalars(query))
        for contact in contacts:
            finish(session, contact, Outcome.DO_NOT_CALL.value, now, "on the do-not-call list")
    return len(contacts)


def expire_due(
    engine: Engine, for_update: bool, now: datetime, lookahead: timedelta = timedelta(0)
) -> list[ExpiredContact]:
    """Give outcome ``expired`` (and an event) to waiting contacts no call may reach in time.

    A contact expires once no call may start any more: at its deadline less the campaign's
    ``retry.deadline_margin`` at the latest, so the alert comes at least the margin before
    the deadline, while someone can still act on the order. ``lookahead``: also those whose
    last start comes within it (the worker passes its poll interval, so an expiry it raises
    at its next look is never after the last start; :func:`next_last_start` says when to look).
    """
    expired_now: list[ExpiredContact] = []
    with Session(engine) as session, session.begin():
        campaigns = session.scalars(select(Campaign).where(Campaign.state != CampaignState.FINISHED))
        for camp in list(campaigns):
            policy = campaign_policy(camp)
            horizon = now + lookahead + policy.retry.deadline_margin
            ends = camp.ends_at is not None and camp.ends_at <= horizon
            due = true() if ends else Contact.window_end <= horizon
            query = select(Contact).where(
                and_(Contact.campaign_id == camp.id, Contact.state == ContactState.PENDING, due)
            )
            if for_update:
                query = query.with_for_update(skip_locked=True)
            for contact in session.scalars(query):
                if contact.dnc:
                    finish(session, contact, Outcome.DO_NOT_CALL.value, now, "on the do-not-call list")
                elif expired(slot(contact), now + lookahead, policy):
                    expire(session, contact, now, "deadline passed unreached")
                    expired_now.append(ExpiredContact(contact.id, camp.name, contact.phone))
    return expired_now


def next_last_start(engine: Engine, now: datetime) -> datetime | None:
    """The earliest last start (deadline less the margin) after ``now`` of a contact still
    waiting in a campaign that is not finished: when :func:`expire_due` has work next."""
    found: datetime | None = None
    with Session(engine) as session:
        for camp in session.scalars(select(Campaign).where(Campaign.state != CampaignState.FINISHED)):
            margin = campaign_policy(camp).retry.deadline_margin
            waiting = and_(
                Contact.campaign_id == camp.id, Contact.state == ContactState.PENDING, Contact.dnc.is_(False)
            )
            first = session.scalar(select(func.min(Contact.window_end)).where(waiting))
            if camp.ends_at is not None and session.scalar(select(Contact.id).where(waiting).limit(1)):
                first = camp.ends_at if first is None else min(first, camp.ends_at)
            if first is not None:
                start = first - margin
                if start > now and (found is None or start < found):
                    found = start
    return found


def finish_campaigns(engine: Engine, now: datetime) -> list[str]:
    """Finish running campaigns with nothing left to dial; their do-not-call contacts get
    outcome ``do_not_call`` so every contact of a finished campaign has an outcome."""
    with Session(engine) as session, session.begin():
        open_contacts = (
            select(Contact.id)
            .where(
                Contact.campaign_id == Campaign.id,
                Contact.state != ContactState.DONE,
                or_(Contact.dnc.is_(False), Contact.state != ContactState.PENDING),
            )
            .exists()
        )
        done = list(
            session.scalars(select(Campaign).where(Campaign.state == CampaignState.RUNNING, ~open_contacts))
        )
        for camp in done:
            camp.state = CampaignState.FINISHED
            skipped = session.scalars(
                select(Contact).where(Contact.campaign_id == camp.id, Contact.state == ContactState.PENDING)
            )
            for contact in skipped:
                finish(session, contact, Outcome.DO_NOT_CALL.value, now, "on the do-not-call list")
        return [c.name for c in done]


def answered_call_seconds(engine: Engine, flow: str, limit: int = 200) -> list[float]:
    """How long the latest answered calls of ``flow`` lasted, INVITE to hang-up, in seconds."""
    with Session(engine) as session:
        rows = session.execute(
            select(Attempt.invite_at, Attempt.ended_at)
            .join(Contact, Contact.id == Attempt.contact_id)
            .join(Campaign, Campaign.id == Contact.campaign_id)
            .where(
                Campaign.flow == flow,
                Attempt.answered_at.is_not(None),
                Attempt.invite_at.is_not(None),
                Attempt.ended_at.is_not(None),
            )
            .order_by(Attempt.id.desc())
            .limit(limit)
        ).all()
    return [(ended - started).total_seconds() for started, ended in rows if started and ended]
