"""A campaign's rates kept as counters, so the wallboard adds up a few rows instead of
recounting 100,000 attempts on every refresh (1.3-4 s before, see docs/benchmarks.md).

What is kept, all in the transaction that changes an attempt:

- ``campaign_hours``: per UTC hour of the INVITE, the :class:`dialer.rates.Rates` that
  :func:`dialer.rates.hourly` gives (its distinct-contact figures per hour too);
- ``campaign_hour_outcomes``: per hour, how the attempts ended (the outcome chart's labels);
- on each contact, the INVITE time of its latest counted attempt, latest one a person answered
  and latest person-answered one with a success outcome (``dialled_at``, ``reached_at``,
  ``succeeded_at``): "contacts dialled / reached / succeeded since T" become index range counts.

Every change is applied as the difference between one contact's share before and after it,
computed by :mod:`dialer.rates` itself on that contact's few attempts, so the counters always
equal what the reference definitions give on all the rows (a test checks it against
:mod:`dialer.rates_sql` and :mod:`dialer.rates`). Calls still in progress (few rows, a partial
index) and the first, partial hour of a "since" window are read from ``attempts``.
Whoever writes attempt results outside :class:`dialer.attempt_store.AttemptStore` (a repair,
a test) calls :func:`count_change` or :func:`rebuild`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import astuple, dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dialer.models import Attempt, Campaign, CampaignHour, CampaignHourOutcome, Contact
from dialer.rates import CANCELLED, AttemptFacts, Rates, Tally, hour_of, hourly, success_outcomes

FIGURES = tuple(Rates.__dataclass_fields__)
"""The :class:`Rates` fields, in order: the counter columns of ``campaign_hours``."""
IN_CALL = "in call"


def outcome_label(result: str | None, flow_outcome: str | None, ended: bool) -> str:
    """How an attempt ended, as the outcome chart names it."""
    if flow_outcome:
        return flow_outcome
    if result:
        return result
    return "ended" if ended else IN_CALL


@dataclass(frozen=True)
class Share:
    """One contact's part of its campaign's counters."""

    hours: dict[datetime, Rates] = field(default_factory=dict)
    outcomes: dict[tuple[datetime, str], int] = field(default_factory=dict)
    dialled_at: datetime | None = None
    reached_at: datetime | None = None
    succeeded_at: datetime | None = None


def share(attempts: Iterable[AttemptFacts], successes: frozenset[str]) -> Share:
    """What one contact's ``attempts`` add to the counters (its distinct figures are 0 or 1)."""
    facts = list(attempts)
    outcomes: dict[tuple[datetime, str], int] = {}
    for a in facts:
        if a.invite_at is None or a.result == CANCELLED or (a.result is None and a.ended_at is None):
            continue  # not dialled, cancelled by us, or live (read from attempts, see live_calls)
        key = (hour_of(a.invite_at), outcome_label(a.result, a.flow_outcome, a.ended_at is not None))
        outcomes[key] = outcomes.get(key, 0) + 1

    def latest(keep: Iterable[AttemptFacts]) -> datetime | None:
        return max((a.invite_at for a in keep if a.invite_at is not None), default=None)

    return Share(
        hours=dict(hourly(facts, successes)),
        outcomes=outcomes,
        dialled_at=latest(a for a in facts if a.counted),
        reached_at=latest(a for a in facts if a.person),
        succeeded_at=latest(a for a in facts if a.person and a.flow_outcome in successes),
    )


def _minus(after: Rates | None, before: Rates | None) -> tuple[int, ...]:
    zero = (0,) * len(FIGURES)
    a = astuple(after) if after else zero
    b = astuple(before) if before else zero
    return tuple(x - y for x, y in zip(a, b, strict=True))


def facts_of(attempt: Attempt) -> AttemptFacts:
    return AttemptFacts(
        contact_id=attempt.contact_id,
        result=attempt.result,
        invite_at=attempt.invite_at,
        answered_at=attempt.answered_at,
        flow_started_at=attempt.flow_started_at,
        ended_at=attempt.ended_at,
        flow_outcome=attempt.flow_outcome,
    )


FACT_COLUMNS = (
    # AttemptFacts' fields, in order: select(*FACT_COLUMNS) rows build AttemptFacts(*row)
    Attempt.contact_id,
    Attempt.result,
    Attempt.invite_at,
    Attempt.answered_at,
    Attempt.flow_started_at,
    Attempt.ended_at,
    Attempt.flow_outcome,
)


def _contact_attempts(session: Session, contact_id: int) -> dict[int, AttemptFacts]:
    rows = session.execute(select(Attempt.id, *FACT_COLUMNS).where(Attempt.contact_id == contact_id))
    return {row[0]: AttemptFacts(*row[1:]) for row in rows}


def _increment(session: Session, table: Table, keys: dict[str, Any], values: dict[str, int]) -> None:
    """``keys``' row gets ``values`` added (made first if missing): one atomic statement, so
    two workers counting into the same hour at once both count."""
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(table).values(**keys, **values)
    else:
        statement = sqlite.insert(table).values(**keys, **values)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in values}
    )
    session.execute(statement)


def _apply(session: Session, campaign_id: int, before: Share, after: Share) -> None:
    hours_table: Table = CampaignHour.__table__  # type: ignore[assignment]
    outcomes_table: Table = CampaignHourOutcome.__table__  # type: ignore[assignment]
    for hour in sorted(before.hours.keys() | after.hours.keys()):
        delta = _minus(after.hours.get(hour), before.hours.get(hour))
        if any(delta):
            _increment(
                session,
                hours_table,
                {"campaign_id": campaign_id, "hour": hour},
                dict(zip(FIGURES, delta, strict=True)),
            )
    for key in sorted(before.outcomes.keys() | after.outcomes.keys()):
        n = after.outcomes.get(key, 0) - before.outcomes.get(key, 0)
        if n:
            hour, label = key
            _increment(
                session, outcomes_table, {"campaign_id": campaign_id, "hour": hour, "label": label}, {"n": n}
            )


def count_change(session: Session, contact: Contact, before: Mapping[int, AttemptFacts | None]) -> None:
    """Bring the counters up to date after attempts of ``contact`` changed in this transaction:
    ``before`` maps each changed attempt's id to its facts before the change (None: the
    attempt is new). The contact's row should be locked (the store holds it ``FOR UPDATE``)."""
    session.flush()
    kind = session.scalar(select(Campaign.kind).where(Campaign.id == contact.campaign_id))
    successes = success_outcomes(kind or "")
    now = _contact_attempts(session, contact.id)
    then = dict(now)
    for attempt_id, facts in before.items():
        if facts is None:
            then.pop(attempt_id, None)
        else:
            then[attempt_id] = facts
    old, new = share(then.values(), successes), share(now.values(), successes)
    _apply(session, contact.campaign_id, old, new)
    contact.dialled_at = new.dialled_at
    contact.reached_at = new.reached_at
    contact.succeeded_at = new.succeeded_at


def rebuild(session: Session, campaign_id: int | None = None) -> int:
    """Recount the counters of one campaign (all when None) from its attempts; returns the
    attempts read. What the schema upgrade that added the counters runs, and the repair after
    attempts were written by hand."""
    campaigns = select(Campaign.id, Campaign.kind)
    if campaign_id is not None:
        campaigns = campaigns.where(Campaign.id == campaign_id)
    read = 0
    for camp_id, kind in session.execute(campaigns).all():
        read += _rebuild_one(session, camp_id, success_outcomes(kind))
    return read


def _rebuild_one(session: Session, campaign_id: int, successes: frozenset[str]) -> int:
    session.execute(delete(CampaignHour).where(CampaignHour.campaign_id == campaign_id))
    session.execute(delete(CampaignHourOutcome).where(CampaignHourOutcome.campaign_id == campaign_id))
    session.execute(
        update(Contact)
        .where(Contact.campaign_id == campaign_id)
        .values(dialled_at=None, reached_at=None, succeeded_at=None)
    )
    hours: dict[datetime, list[int]] = {}
    outcomes: dict[tuple[datetime, str], int] = {}
    latest: list[dict[str, Any]] = []
    query = (
        select(*FACT_COLUMNS)
        .join(Contact, Contact.id == Attempt.contact_id)
        .where(Contact.campaign_id == campaign_id)
        .order_by(Attempt.contact_id)
        .execution_options(yield_per=10_000)
    )
    read = 0
    rows: Iterator[Any] = iter(session.execute(query))
    for contact_id, group in groupby(rows, key=lambda row: row[0]):
        facts = [AttemptFacts(*row) for row in group]
        read += len(facts)
        part = share(facts, successes)
        for hour, rates in part.hours.items():
            total = hours.setdefault(hour, [0] * len(FIGURES))
            for i, n in enumerate(astuple(rates)):
                total[i] += n
        for key, n in part.outcomes.items():
            outcomes[key] = outcomes.get(key, 0) + n
        if part.dialled_at is not None:
            latest.append(
                {
                    "cid": contact_id,
                    "b_dialled": part.dialled_at,
                    "b_reached": part.reached_at,
                    "b_succeeded": part.succeeded_at,
                }
            )
    if hours:
        session.execute(
            insert(CampaignHour),
            [
                {"campaign_id": campaign_id, "hour": h, **dict(zip(FIGURES, v, strict=True))}
                for h, v in hours.items()
            ],
        )
    if outcomes:
        session.execute(
            insert(CampaignHourOutcome),
            [
                {"campaign_id": campaign_id, "hour": h, "label": label, "n": n}
                for (h, label), n in outcomes.items()
            ],
        )
    contacts: Table = Contact.__table__  # type: ignore[assignment]
    set_latest = (
        update(contacts)
        .where(contacts.c.id == bindparam("cid"))
        .values(
            dialled_at=bindparam("b_dialled"),
            reached_at=bindparam("b_reached"),
            succeeded_at=bindparam("b_succeeded"),
        )
    )
    for start in range(0, len(latest), 5_000):
        session.connection().execute(set_latest, latest[start : start + 5_000])
    return read


# -- reading -----------------------------------------------------------------------------------


def _summed(session: Session, campaign_id: int, *where: Any) -> list[int]:
    columns = [func.coalesce(func.sum(CampaignHour.__table__.c[name]), 0) for name in FIGURES]
    row = session.execute(select(*columns).where(CampaignHour.campaign_id == campaign_id, *where)).one()
    return [int(n) for n in row]


def _contacts(
    session: Session, campaign_id: int, successes: frozenset[str], since: datetime | None
) -> tuple[int, int, int]:
    """Contacts dialled, reached and succeeded (since ``since``, or ever): index range counts."""
    of_campaign = Contact.campaign_id == campaign_id

    def after(column: Any) -> Any:
        return column.is_not(None) if since is None else column >= since

    dialled = session.scalar(select(func.count()).where(of_campaign, after(Contact.dialled_at))) or 0
    reached = session.scalar(select(func.count()).where(of_campaign, after(Contact.reached_at))) or 0
    succeeded_query = select(func.count()).where(
        of_campaign,
        after(Contact.reached_at),
        or_(after(Contact.succeeded_at), Contact.outcome.in_(sorted(successes))),
    )
    succeeded = session.scalar(succeeded_query) or 0
    return int(dialled), int(reached), int(succeeded)


def _rates(additive: list[int], contacts: tuple[int, int, int]) -> Rates:
    figures = dict(zip(FIGURES, additive, strict=True))
    figures["contacts_dialled"], figures["contacts_reached"], figures["contacts_succeeded"] = contacts
    return Rates(**figures)


def _first_hour_part(session: Session, campaign_id: int, since: datetime) -> list[int]:
    """The additive figures of the attempts from ``since`` to the end of its hour, read from
    ``attempts`` (by their INVITE time index; ``+ 0`` keeps SQLite from starting at contacts)."""
    end = hour_of(since) + timedelta(hours=1)
    rows = session.execute(
        select(*FACT_COLUMNS)
        .join(Contact, Contact.id == Attempt.contact_id)
        .where(Attempt.invite_at >= since, Attempt.invite_at < end, Contact.campaign_id + 0 == campaign_id)
    )
    tally = Tally(frozenset())
    for row in rows:
        tally.add(AttemptFacts(*row))
    got = tally.rates()
    return [0 if name.startswith("contacts_") else int(getattr(got, name)) for name in FIGURES]


def live_calls(
    session: Session, campaign_id: int, since: datetime | None = None
) -> list[tuple[datetime | None, str | None, str | None]]:
    """The campaign's attempts not ended yet (the partial index ``ix_attempts_live``): their
    INVITE time (None: not dialled yet), result and flow outcome (None while the call lasts)."""
    query = (
        select(Attempt.invite_at, Attempt.result, Attempt.flow_outcome)
        .join(Contact, Contact.id == Attempt.contact_id)
        .where(Attempt.ended_at.is_(None), Contact.campaign_id + 0 == campaign_id)
    )
    if since is not None:
        query = query.where(Attempt.invite_at >= since)
    return [(invite, result, outcome) for invite, result, outcome in session.execute(query)]


def campaign_rates(
    session: Session, campaign_id: int, successes: frozenset[str], since: datetime
) -> tuple[Rates, Rates, int]:
    """As :func:`dialer.rates_sql.campaign_rates`, from the counters (``successes`` must be the
    campaign kind's: the counters were kept with those)."""
    total = _rates(_summed(session, campaign_id), _contacts(session, campaign_id, successes, None))
    first = hour_of(since)
    recent_sum = _summed(session, campaign_id, CampaignHour.hour > first)
    partial = _first_hour_part(session, campaign_id, since)
    recent = _rates(
        [a + b for a, b in zip(recent_sum, partial, strict=True)],
        _contacts(session, campaign_id, successes, since),
    )
    lines = sum(invite is not None for invite, _, _ in live_calls(session, campaign_id))
    return total, recent, lines


def hourly_rates(
    session: Session, campaign_id: int, successes: frozenset[str], first_hour: datetime
) -> list[tuple[datetime, Rates]]:
    """As :func:`dialer.rates_sql.hourly_rates`, from the counters."""
    del successes  # kept with the campaign kind's
    rows = session.execute(
        select(CampaignHour)
        .where(
            CampaignHour.campaign_id == campaign_id,
            CampaignHour.hour >= first_hour,
            CampaignHour.attempts > 0,
        )
        .order_by(CampaignHour.hour)
    ).scalars()
    return [(row.hour, Rates(*(getattr(row, name) for name in FIGURES))) for row in rows]


def hourly_outcomes(
    session: Session, campaign_id: int, first_hour: datetime
) -> list[tuple[datetime, str, int]]:
    """``(hour, label, count)`` of the attempts dialled from ``first_hour`` on, calls in
    progress included (``in call``)."""
    query = select(CampaignHourOutcome.hour, CampaignHourOutcome.label, CampaignHourOutcome.n).where(
        CampaignHourOutcome.campaign_id == campaign_id,
        CampaignHourOutcome.hour >= first_hour,
        CampaignHourOutcome.n != 0,
    )
    found = [(hour, label, int(n)) for hour, label, n in session.execute(query)]
    live: Counter[tuple[datetime, str]] = Counter()
    for invite, result, outcome in live_calls(session, campaign_id, first_hour):
        if invite is not None and result is None:  # with a result: already counted (see share)
            live[(hour_of(invite), outcome_label(result, outcome, False))] += 1
    return found + [(hour, label, n) for (hour, label), n in sorted(live.items())]


__all__ = [
    "FACT_COLUMNS",
    "FIGURES",
    "IN_CALL",
    "Share",
    "campaign_rates",
    "count_change",
    "facts_of",
    "hourly_outcomes",
    "hourly_rates",
    "live_calls",
    "outcome_label",
    "rebuild",
    "share",
]
