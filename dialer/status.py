"""A campaign's progress for the people watching it: counts, lines in use, rates per campaign
and per hour, deadlines at risk, and the contacts worth a look (in a call, retrying next,
just finished) with their last outcome and next retry.

The rates are :mod:`dialer.rates` (connect per contact, success per connected contact, machine
and abandonment per answered attempt), counted by the database (:mod:`dialer.rates_sql`) so a
read stays well under a second at 100,000 attempts.
Callees appear by contact id and row, never by number or name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from dialer import hourly_counters, rates_sql
from dialer.call_result import CallResult
from dialer.db import CampaignNotFoundError
from dialer.models import Attempt, Campaign, Contact, ContactState
from dialer.rates import Rates, hour_of, success_outcomes
from dialer.scheduler import at_risk
from dialer.store_types import campaign_policy, slot

OFCOM_WINDOW = timedelta(hours=24)
"""UK Ofcom measures abandonment per campaign per 24 h (the FTC per 30 days)."""
_RISK_SHOWN = 20
_CANCELLED = CallResult.CANCELLED.value


@dataclass(frozen=True)
class ContactLine:
    """One contact as the status shows it."""

    contact_id: int
    row_number: int
    state: str
    attempts: int
    last_result: str | None
    last_outcome: str | None
    """The contact's outcome once final, else the flow outcome of its last call."""
    next_retry: datetime | None
    """When it is next due (pending contacts only)."""
    deadline: datetime | None


@dataclass(frozen=True)
class CampaignStatus:
    name: str
    kind: str
    state: str
    now: datetime
    contacts: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
    dnc: int
    lines_in_use: int
    """Calls in progress: attempts dialled (INVITE sent) that have not ended."""
    rates: Rates
    rates_24h: Rates
    """Over the attempts dialled in the last 24 h (Ofcom's abandonment window)."""
    hourly: list[tuple[datetime, Rates]]
    """The last hours with attempts, oldest first (per UTC hour of the INVITE)."""
    success_outcomes: frozenset[str]
    at_risk: list[ContactLine] = field(default_factory=list)
    at_risk_total: int = 0
    watch: list[ContactLine] = field(default_factory=list)
    """In a call, then next retries, then the latest outcomes."""

    @property
    def attempts(self) -> int:
        return self.rates.attempts

    @property
    def finished(self) -> int:
        return self.by_state.get(ContactState.DONE.value, 0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 strings)."""

        def line(c: ContactLine) -> dict[str, Any]:
            return {
                "contact_id": c.contact_id,
                "row": c.row_number,
                "state": c.state,
                "attempts": c.attempts,
                "last_result": c.last_result,
                "last_outcome": c.last_outcome,
                "next_retry": c.next_retry.isoformat() if c.next_retry else None,
                "deadline": c.deadline.isoformat() if c.deadline else None,
            }

        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "at": self.now.isoformat(),
            "contacts": self.contacts,
            "by_state": self.by_state,
            "by_outcome": self.by_outcome,
            "dnc": self.dnc,
            "lines_in_use": self.lines_in_use,
            "success_outcomes": sorted(self.success_outcomes),
            "rates": self.rates.as_dict(),
            "rates_24h": self.rates_24h.as_dict(),
            "hourly": [{"hour": hour.isoformat(), **r.as_dict()} for hour, r in self.hourly],
            "at_risk_total": self.at_risk_total,
            "at_risk": [line(c) for c in self.at_risk],
            "watch": [line(c) for c in self.watch],
        }


def campaign_status(
    engine: Engine,
    name: str,
    now: datetime,
    horizon: timedelta = timedelta(hours=2),
    extra_success: Iterable[str] = (),
    *,
    hours: int = 24,
    watch_limit: int = 10,
    counters: bool = False,
) -> CampaignStatus:
    """Everything ``campaign status`` shows. Contacts at risk are still open with a deadline
    within ``horizon``; ``hours`` hourly rows at most; success outcomes are the campaign kind's
    (:data:`dialer.rates.SUCCESS_OUTCOMES`) plus ``extra_success``. ``counters``: read the
    rates from the counters the dialer keeps (:mod:`dialer.hourly_counters`, the wallboard's
    way) rather than counting every attempt; they know the kind's success outcomes only."""
    with Session(engine) as session:
        camp = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
        if camp is None:
            raise CampaignNotFoundError(name)
        successes = success_outcomes(camp.kind, extra_success)
        of_campaign = Contact.campaign_id == camp.id
        by_state = _counts(session, Contact.state, of_campaign)
        by_outcome = _counts(session, Contact.outcome, of_campaign, Contact.outcome.is_not(None))
        dnc = session.scalar(select(func.count()).where(of_campaign, Contact.dnc.is_(True))) or 0
        first_hour = hour_of(now) - timedelta(hours=hours - 1)
        source = hourly_counters if counters and not extra_success else rates_sql
        total, recent, lines = source.campaign_rates(session, camp.id, successes, now - OFCOM_WINDOW)
        risky, risk_total = _at_risk(session, camp, now, horizon)
        return CampaignStatus(
            name=camp.name,
            kind=camp.kind,
            state=camp.state,
            now=now,
            contacts=sum(by_state.values()),
            by_state=by_state,
            by_outcome=by_outcome,
            dnc=dnc,
            lines_in_use=lines,
            rates=total,
            rates_24h=recent,
            hourly=source.hourly_rates(session, camp.id, successes, first_hour),
            success_outcomes=successes,
            at_risk=risky,
            at_risk_total=risk_total,
            watch=_watch(session, camp.id, watch_limit),
        )


def _counts(session: Session, column: Any, *where: Any) -> dict[str, int]:
    query = select(column, func.count()).where(*where).group_by(column)
    return {str(value): int(n) for value, n in session.execute(query)}


def _at_risk(
    session: Session, camp: Campaign, now: datetime, horizon: timedelta
) -> tuple[list[ContactLine], int]:
    policy = campaign_policy(camp)
    risky = session.scalars(
        select(Contact)
        .where(
            Contact.campaign_id == camp.id,
            Contact.state != ContactState.DONE,
            Contact.dnc.is_(False),
            Contact.window_end > now,  # the deadline is never after the window's end
            Contact.window_end <= now + horizon,
        )
        .order_by(Contact.window_end, Contact.id)
    ).all()
    flagged = [c for c in risky if at_risk(slot(c), policy, now, horizon)]
    return _lines(session, flagged[:_RISK_SHOWN]), len(flagged)


def _watch(session: Session, campaign_id: int, limit: int) -> list[ContactLine]:
    """The contacts worth a look: in a call, then the next retries, then the latest outcomes."""
    of_campaign = Contact.campaign_id == campaign_id
    live = select(Contact).where(
        of_campaign, Contact.state.in_([ContactState.LEASED.value, ContactState.IN_CALL.value])
    )
    retrying = select(Contact).where(
        of_campaign, Contact.state == ContactState.PENDING.value, Contact.attempts > 0, Contact.dnc.is_(False)
    )
    finished = select(Contact).where(of_campaign, Contact.state == ContactState.DONE.value)
    chosen: list[Contact] = []
    for query in (
        live.order_by(Contact.id),
        retrying.order_by(Contact.next_attempt_at, Contact.id),
        finished.order_by(Contact.outcome_at.desc(), Contact.id.desc()),
    ):
        if len(chosen) < limit:
            chosen.extend(session.scalars(query.limit(limit - len(chosen))))
    return _lines(session, chosen)


def _lines(session: Session, contacts: list[Contact]) -> list[ContactLine]:
    ids = [c.id for c in contacts]
    last: dict[int, tuple[str | None, str | None]] = {}
    if ids:
        newest = (
            select(func.max(Attempt.id))
            .where(
                Attempt.contact_id.in_(ids),
                or_(Attempt.result.is_(None), Attempt.result != _CANCELLED),
            )
            .group_by(Attempt.contact_id)
        )
        for contact_id, result, outcome in session.execute(
            select(Attempt.contact_id, Attempt.result, Attempt.flow_outcome).where(Attempt.id.in_(newest))
        ):
            last[contact_id] = (result, outcome)
    lines = []
    for c in contacts:
        result, flow_outcome = last.get(c.id, (None, None))
        lines.append(
            ContactLine(
                contact_id=c.id,
                row_number=c.row_number,
                state=c.state,
                attempts=c.attempts,
                last_result=result,
                last_outcome=c.outcome or flow_outcome,
                next_retry=c.next_attempt_at if c.state == ContactState.PENDING and not c.dnc else None,
                deadline=c.window_end,
            )
        )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def rates_line(rates: Rates) -> str:
    r = rates
    return (
        f"connect rate: {_pct(r.connect_rate)} ({r.contacts_reached}/{r.contacts_dialled} contacts)"
        f"  success rate: {_pct(rates.success_rate)} ({rates.contacts_succeeded}/{rates.contacts_reached})"
        f"  machine rate: {_pct(rates.machine_rate)} ({rates.machine}/{rates.answered})"
        f"  abandonment rate: {_pct(rates.abandonment_rate)} ({rates.abandoned}/{rates.person_answered})"
    )


def _when(value: datetime | None) -> str:
    return value.isoformat() if value else "-"


def _contact(c: ContactLine) -> str:
    return (
        f"  contact {c.contact_id} (row {c.row_number}): {c.state}, {c.attempts} attempts,"
        f" last result {c.last_result or '-'}, last outcome {c.last_outcome or '-'},"
        f" next retry {_when(c.next_retry)}, deadline {_when(c.deadline)}"
    )


def format_status(status: CampaignStatus) -> str:
    """Plain text (a pipe, a log file): no numbers or names of callees."""
    lines = [
        f"campaign {status.name} ({status.kind}): {status.state}  at {status.now.isoformat()}",
        f"contacts: {status.contacts}  (do-not-call: {status.dnc}, finished: {status.finished})",
        "by state: " + (", ".join(f"{k} {v}" for k, v in sorted(status.by_state.items())) or "none"),
        "by outcome: " + (", ".join(f"{k} {v}" for k, v in sorted(status.by_outcome.items())) or "none"),
        f"attempts: {status.attempts}  lines in use: {status.lines_in_use}",
        rates_line(status.rates),
        f"last 24 h: {status.rates_24h.attempts} attempts, "
        f"abandonment rate: {_pct(status.rates_24h.abandonment_rate)}",
        "success means: " + ", ".join(sorted(status.success_outcomes)),
    ]
    if status.hourly:
        lines.append("per hour (UTC, by INVITE): attempts, connect, success, machine, abandonment")
        lines.extend(
            f"  {hour:%Y-%m-%d %H}:00  {r.attempts}  {_pct(r.connect_rate)}  {_pct(r.success_rate)}"
            f"  {_pct(r.machine_rate)}  {_pct(r.abandonment_rate)}"
            for hour, r in status.hourly
        )
    lines.append(f"at risk of missing their deadline: {status.at_risk_total}")
    lines.extend(_contact(c) for c in status.at_risk)
    if status.at_risk_total > len(status.at_risk):
        lines.append(f"  ... and {status.at_risk_total - len(status.at_risk)} more")
    if status.watch:
        lines.append("contacts (in a call, next retries, latest outcomes):")
        lines.extend(_contact(c) for c in status.watch)
    return "\n".join(lines)
