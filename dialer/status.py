"""A campaign's progress for the people watching it: counts, rates, deadlines at risk.

Connect rate is attempts answered (by a person or a machine) over attempts with a result;
success rate is contacts whose outcome is a success (``confirmed``, ``answered``, ``success``,
or any outcome listed in ``success_outcomes``) over contacts with an outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dialer.call_result import CallResult
from dialer.db import CampaignNotFoundError
from dialer.models import Attempt, Campaign, Contact, ContactState
from dialer.scheduler import at_risk
from dialer.store import campaign_policy, slot

SUCCESS_OUTCOMES = frozenset({"confirmed", "answered", "success", "completed"})
CONNECTED_RESULTS = frozenset(r.value for r in CallResult if r.connected)
_RISK_SHOWN = 20


@dataclass(frozen=True)
class AtRisk:
    contact_id: int
    row_number: int
    deadline: datetime
    attempts: int
    last_result: str | None


@dataclass(frozen=True)
class CampaignStatus:
    name: str
    kind: str
    state: str
    contacts: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
    dnc: int
    attempts: int
    connected_attempts: int
    successes: int
    at_risk: list[AtRisk] = field(default_factory=list)
    at_risk_total: int = 0

    @property
    def connect_rate(self) -> float | None:
        return None if self.attempts == 0 else self.connected_attempts / self.attempts

    @property
    def success_rate(self) -> float | None:
        finished = sum(self.by_outcome.values())
        return None if finished == 0 else self.successes / finished


def campaign_status(
    engine: Engine,
    name: str,
    now: datetime,
    horizon: timedelta = timedelta(hours=2),
    success_outcomes: Iterable[str] = SUCCESS_OUTCOMES,
) -> CampaignStatus:
    """Everything ``campaign status`` prints; contacts at risk are those still open whose
    deadline falls within ``horizon``."""
    successes_set = frozenset(success_outcomes)
    with Session(engine) as session:
        camp = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
        if camp is None:
            raise CampaignNotFoundError(name)
        of_campaign = Contact.campaign_id == camp.id
        by_state = {
            str(state): int(n)
            for state, n in session.execute(
                select(Contact.state, func.count()).where(of_campaign).group_by(Contact.state)
            )
        }
        by_outcome = {
            str(outcome): int(n)
            for outcome, n in session.execute(
                select(Contact.outcome, func.count())
                .where(of_campaign, Contact.outcome.is_not(None))
                .group_by(Contact.outcome)
            )
        }
        dnc = session.scalar(select(func.count()).where(of_campaign, Contact.dnc.is_(True))) or 0
        attempts_of = Attempt.contact_id.in_(select(Contact.id).where(of_campaign))
        attempts = session.scalar(select(func.count()).where(attempts_of, Attempt.result.is_not(None))) or 0
        connected_query = select(func.count()).where(attempts_of, Attempt.result.in_(CONNECTED_RESULTS))
        connected = session.scalar(connected_query) or 0
        policy = campaign_policy(camp)
        risky = session.scalars(
            select(Contact)
            .where(
                of_campaign,
                Contact.state != ContactState.DONE,
                Contact.dnc.is_(False),
                Contact.window_end.is_not(None),
                Contact.window_end <= now + horizon,
            )
            .order_by(Contact.window_end, Contact.id)
        ).all()
        flagged = [
            AtRisk(c.id, c.row_number, c.window_end, c.attempts, c.last_result)
            for c in risky
            if c.window_end is not None and at_risk(slot(c), policy, now, horizon)
        ]
        return CampaignStatus(
            name=camp.name,
            kind=camp.kind,
            state=camp.state,
            contacts=sum(by_state.values()),
            by_state=by_state,
            by_outcome=by_outcome,
            dnc=dnc,
            attempts=attempts,
            connected_attempts=connected,
            successes=sum(n for outcome, n in by_outcome.items() if outcome in successes_set),
            at_risk=flagged[:_RISK_SHOWN],
            at_risk_total=len(flagged),
        )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def format_status(status: CampaignStatus) -> str:
    """Plain text for a terminal; no numbers or names of callees (rows are identified by id)."""
    lines = [
        f"campaign {status.name} ({status.kind}): {status.state}",
        f"contacts: {status.contacts}  (do-not-call: {status.dnc})",
        "by state: " + (", ".join(f"{k} {v}" for k, v in sorted(status.by_state.items())) or "none"),
        "by outcome: " + (", ".join(f"{k} {v}" for k, v in sorted(status.by_outcome.items())) or "none"),
        f"attempts: {status.attempts}  connect rate: {_pct(status.connect_rate)}"
        f"  success rate: {_pct(status.success_rate)}",
        f"at risk of missing their deadline: {status.at_risk_total}",
    ]
    lines.extend(
        f"  contact {r.contact_id} (row {r.row_number}): deadline {r.deadline.isoformat()},"
        f" {r.attempts} attempts, last result {r.last_result or '-'}"
        for r in status.at_risk
    )
    if status.at_risk_total > len(status.at_risk):
        lines.append(f"  ... and {status.at_risk_total - len(status.at_risk)} more")
    return "\n".join(lines)
