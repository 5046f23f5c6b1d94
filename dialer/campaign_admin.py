"""Campaign housekeeping: list every campaign, delete one, recycle contacts for another pass.

Deleting and recycling change what the dialer will do (or destroy what it did), so both are
refused while they could race a call, and both log an audit line (``campaign.deleted``,
``campaign.recycled``, logger ``ivr.dialer.audit``) naming the operating-system user and the
counts. A recycled contact also gets a ``recycled`` contact event.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, delete, false, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from config.logs import log_event
from dialer.call_result import CallResult
from dialer.db import CampaignNotFoundError, DialerDataError
from dialer.models import Attempt, Campaign, CampaignHour, CampaignState, Contact, ContactEvent, ContactState
from dialer.rates import success_outcomes
from dialer.store_types import DO_NOT_CALL_OUTCOME, WORKER_LOST

_AUDIT = logging.getLogger("ivr.dialer.audit")
RECYCLED_EVENT = "recycled"
"""``contact_events.kind`` of a contact put back in the queue by ``campaign recycle``."""
RECYCLABLE_RESULTS = frozenset({*(r.value for r in CallResult), WORKER_LOST})
_LIVE = (ContactState.LEASED.value, ContactState.IN_CALL.value)


def operator() -> str:
    """Who is running the command, for the audit line."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (a bare container)
        return f"uid {os.getuid()}"


@dataclass(frozen=True)
class CampaignSummary:
    name: str
    kind: str
    state: str
    created_at: datetime
    contacts: int
    pending: int
    in_call: int
    done: int
    dnc: int
    attempts: int
    """Attempts dialled and not cancelled by us (those with a result and the calls in progress)."""


def list_campaigns(engine: Engine) -> list[CampaignSummary]:
    with Session(engine) as session:
        states: dict[int, dict[str, int]] = {}
        for campaign_id, state, n in session.execute(
            select(Contact.campaign_id, Contact.state, func.count()).group_by(
                Contact.campaign_id, Contact.state
            )
        ):
            states.setdefault(campaign_id, {})[state] = n
        dnc_query = (
            select(Contact.campaign_id, func.count())
            .where(Contact.dnc.is_(True))
            .group_by(Contact.campaign_id)
        )
        dnc = {campaign_id: int(n) for campaign_id, n in session.execute(dnc_query)}
        # Dialled attempts from the counters (dialer.hourly_counters; a join over every attempt
        # took ~0.3 s at 100,000), plus the calls in progress (the partial index of live ones).
        counted_query = select(CampaignHour.campaign_id, func.sum(CampaignHour.attempts)).group_by(
            CampaignHour.campaign_id
        )
        attempts = {campaign_id: int(n or 0) for campaign_id, n in session.execute(counted_query)}
        live_query = (
            select(Contact.campaign_id, func.count())
            .join(Attempt, Attempt.contact_id == Contact.id)
            .where(Attempt.ended_at.is_(None), Attempt.invite_at.is_not(None), Attempt.result.is_(None))
            .group_by(Contact.campaign_id)
        )
        for campaign_id, n in session.execute(live_query):
            attempts[campaign_id] = attempts.get(campaign_id, 0) + int(n)
        summaries = []
        for camp in session.scalars(select(Campaign).order_by(Campaign.name)):
            counts = states.get(camp.id, {})
            summaries.append(
                CampaignSummary(
                    name=camp.name,
                    kind=camp.kind,
                    state=camp.state,
                    created_at=camp.created_at,
                    contacts=sum(counts.values()),
                    pending=counts.get(ContactState.PENDING.value, 0),
                    in_call=sum(counts.get(s, 0) for s in _LIVE),
                    done=counts.get(ContactState.DONE.value, 0),
                    dnc=dnc.get(camp.id, 0),
                    attempts=attempts.get(camp.id, 0),
                )
            )
        return summaries


@dataclass(frozen=True)
class DeleteReport:
    campaign: str
    contacts: int
    attempts: int
    events: int


def _locked_campaign(session: Session, name: str) -> Campaign:
    query = select(Campaign).where(Campaign.name == name)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # a concurrent `campaign start` waits for us
    camp = session.scalars(query).one_or_none()
    if camp is None:
        raise CampaignNotFoundError(name)
    return camp


def _live_calls(session: Session, campaign_id: int) -> int:
    query = select(func.count()).where(Contact.campaign_id == campaign_id, Contact.state.in_(_LIVE))
    return session.scalar(query) or 0


def delete_campaign(engine: Engine, name: str, user: str | None = None) -> DeleteReport:
    """Remove the campaign with its contacts, attempts and events, in one transaction.

    Refused while it is running or any of its calls is still in progress."""
    with Session(engine) as session, session.begin():
        camp = _locked_campaign(session, name)
        if camp.state == CampaignState.RUNNING:
            raise DialerDataError(
                f"campaign '{name}' is running: pause it first (campaign pause {name}),"
                " then delete it once its calls have ended"
            )
        live = _live_calls(session, camp.id)
        if live:
            raise DialerDataError(
                f"campaign '{name}' still has {live} calls in progress; delete it once they have ended"
            )
        contact_ids = select(Contact.id).where(Contact.campaign_id == camp.id).scalar_subquery()
        counts = [
            session.scalar(select(func.count()).where(where)) or 0
            for where in (
                Contact.campaign_id == camp.id,
                Attempt.contact_id.in_(contact_ids),
                ContactEvent.contact_id.in_(contact_ids),
            )
        ]
        report = DeleteReport(name, *counts)
        session.execute(delete(ContactEvent).where(ContactEvent.contact_id.in_(contact_ids)))
        session.execute(delete(Attempt).where(Attempt.contact_id.in_(contact_ids)))
        session.execute(delete(Contact).where(Contact.campaign_id == camp.id))
        kind, state = camp.kind, camp.state
        session.delete(camp)
    log_event(
        "campaign.deleted",
        logger=_AUDIT,
        user=user or operator(),
        campaign=name,
        kind=kind,
        state=state,
        contacts=report.contacts,
        attempts=report.attempts,
        events=report.events,
    )
    return report


@dataclass(frozen=True)
class RecycleReport:
    campaign: str
    recycled: int
    past_deadline: int
    """Matching contacts left alone because their deadline has passed."""
    reopened: bool
    """The campaign was finished and is now paused (``campaign resume`` dials them)."""


def parse_results(text: str) -> frozenset[str]:
    """``busy,no_answer`` -> the set, every name checked."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in RECYCLABLE_RESULTS]
    if not names or unknown:
        allowed = ", ".join(sorted(RECYCLABLE_RESULTS))
        what = f"unknown result {unknown[0]!r}" if unknown else "no result given"
        raise DialerDataError(f"--result {text!r}: {what} (one or more of: {allowed})")
    return frozenset(names)


def recycle_contacts(
    engine: Engine, name: str, results: Iterable[str], now: datetime, user: str | None = None
) -> RecycleReport:
    """Queue again, due ``now`` with their attempt count reset, the contacts whose last result
    is one of ``results`` and that are neither in a call, on the do-not-call list, nor ended
    with a success or do-not-call outcome. A contact whose deadline has passed is left alone
    (it could only expire again). A finished campaign becomes paused."""
    wanted = sorted(set(results))
    who = user or operator()
    with Session(engine) as session, session.begin():
        camp = _locked_campaign(session, name)
        final = success_outcomes(camp.kind) | {DO_NOT_CALL_OUTCOME}
        campaign_over = camp.ends_at is not None and camp.ends_at <= now
        deadline_passed = or_(
            and_(Contact.window_end.is_not(None), Contact.window_end <= now),
            true() if campaign_over else false(),
        )
        matching = (
            Contact.campaign_id == camp.id,
            Contact.last_result.in_(wanted),
            Contact.dnc.is_(False),
            Contact.state.in_([ContactState.PENDING.value, ContactState.DONE.value]),
            or_(Contact.outcome.is_(None), Contact.outcome.not_in(sorted(final))),
        )
        past = session.scalar(select(func.count()).where(*matching, deadline_passed)) or 0
        ids = list(session.scalars(select(Contact.id).where(*matching, ~deadline_passed)))
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            rows = session.execute(
                select(Contact.id, Contact.last_result, Contact.outcome, Contact.attempts).where(
                    Contact.id.in_(chunk)
                )
            ).all()
            session.execute(
                insert(ContactEvent),
                [
                    {
                        "contact_id": cid,
                        "at": now,
                        "kind": RECYCLED_EVENT,
                        "detail": f"by {who}: last result {result}, outcome {outcome or '-'},"
                        f" {attempts} attempts",
                    }
                    for cid, result, outcome, attempts in rows
                ],
            )
            session.execute(
                update(Contact)
                .where(Contact.id.in_(chunk))
                .values(
                    state=ContactState.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    outcome=None,
                    outcome_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
        reopened = bool(ids) and camp.state == CampaignState.FINISHED
        if reopened:
            camp.state = CampaignState.PAUSED.value
    log_event(
        "campaign.recycled",
        logger=_AUDIT,
        user=who,
        campaign=name,
        results=",".join(wanted),
        contacts=len(ids),
        past_deadline=past,
        reopened=reopened,
    )
    return RecycleReport(name, len(ids), past, reopened)
