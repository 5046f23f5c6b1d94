"""A campaign's :mod:`dialer.rates` counted by the database, on SQLite and PostgreSQL.

Streaming 100,000 attempts into Python to count them took ~9 s. Here the database counts them
(SUM, COUNT DISTINCT, GROUP BY hour) in sequential scans of ``attempts``, the campaign's
contacts given as an ``IN`` set: walking ``attempts`` through its ``contact_id`` index instead
reads the table in random order, which cost 4x on SQLite. :mod:`dialer.rates`
stays the definition; a test checks on random campaigns that both give the same figures, edges
included (a flow started exactly 2 s after the answer, an INVITE exactly 24 h ago).
The wallboard reads the counters the dialer keeps instead (:mod:`dialer.hourly_counters`);
this recount is what ``campaign status`` uses and what the counters are checked against.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, distinct, func, literal_column, not_, or_, select
from sqlalchemy.orm import Session

from dialer.models import Attempt, Contact
from dialer.rates import ABANDON_AFTER, ANSWERED_RESULTS, CANCELLED, MACHINE_RESULTS, PERSON_RESULTS, Rates


def _flag(condition: ColumnElement[bool]) -> Any:
    return case((condition, 1), else_=0)


def _micros(column: Any) -> Any:
    """A stored SQLite time (``YYYY-MM-DD HH:MM:SS.ffffff``) as integer microseconds: exact,
    unlike ``julianday`` (a float), so a flow started exactly 2 s after the answer is on time.
    The seconds come from the text without its fraction: SQLite's date functions round to the
    millisecond, so ``:50.9996`` would read as second 51."""
    seconds = func.cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
    return seconds * 1_000_000 + func.cast(func.substr(column, 21, 6), Integer)


def _waited_too_long(dialect: str) -> ColumnElement[bool]:
    """More than :data:`ABANDON_AFTER` from answer to flow, as ``AttemptFacts.abandoned``."""
    limit_us = ABANDON_AFTER // timedelta(microseconds=1)
    if dialect == "postgresql":
        waited = Attempt.flow_started_at - Attempt.answered_at
        return waited > literal_column(f"interval '{limit_us} microseconds'")
    waited_us: ColumnElement[bool] = (
        _micros(Attempt.flow_started_at) - _micros(Attempt.answered_at) > limit_us
    )
    return waited_us


def counted() -> ColumnElement[bool]:
    """Dialled, over, and not cancelled by us (``AttemptFacts.counted``)."""
    return and_(Attempt.invite_at.is_not(None), Attempt.result.is_not(None), Attempt.result != CANCELLED)


def of_campaign(campaign_id: int, *where: ColumnElement[bool]) -> ColumnElement[bool]:
    """The attempt is of one of the campaign's contacts (matching ``where``). ``+ 0`` keeps the
    planner from walking ``attempts`` by its ``contact_id`` index (random reads of the table)."""
    contacts = select(Contact.id).where(Contact.campaign_id == campaign_id, *where)
    return (Attempt.contact_id + 0).in_(contacts)


def _columns(
    dialect: str,
    successes: frozenset[str],
    succeeded: ColumnElement[bool] | None,
) -> list[Any]:
    """The :class:`Rates` fields, in order, as aggregates over the attempts selected.
    ``succeeded``: the attempt's contact has a final success outcome, which counts once a
    person answered (``Tally``'s ``succeeded_contacts``)."""
    dialled = counted()
    person = and_(dialled, Attempt.result.in_(sorted(PERSON_RESULTS)))
    success: ColumnElement[bool] = Attempt.flow_outcome.in_(sorted(successes))
    if succeeded is not None:
        success = or_(success, succeeded)
    timed = and_(person, Attempt.answered_at.is_not(None))
    # CASE stops at the first true branch: the time arithmetic runs on timed answers only.
    late = case(
        (not_(timed), 0), (Attempt.flow_started_at.is_(None), 1), (_waited_too_long(dialect), 1), else_=0
    )
    return [
        func.sum(_flag(dialled)),
        func.count(distinct(case((dialled, Attempt.contact_id)))),
        func.count(distinct(case((person, Attempt.contact_id)))),
        func.count(distinct(case((and_(person, success), Attempt.contact_id)))),
        func.sum(_flag(and_(dialled, Attempt.result.in_(sorted(ANSWERED_RESULTS))))),
        func.sum(_flag(and_(dialled, Attempt.result.in_(sorted(MACHINE_RESULTS))))),
        func.sum(_flag(timed)),
        func.sum(late),
    ]


def _rates(values: Any) -> Rates:
    return Rates(*(int(n or 0) for n in values))


def campaign_rates(
    session: Session, campaign_id: int, successes: frozenset[str], since: datetime
) -> tuple[Rates, Rates, int]:
    """The campaign's rates, those of the attempts dialled at or after ``since``, and the lines
    in use (dialled, not ended). Two queries: the recent figures evaluated on the recent rows
    only took ~40 % less time on SQLite than both sets of figures on every row."""
    dialect = session.get_bind().dialect.name
    columns = _columns(dialect, successes, of_campaign(campaign_id, Contact.outcome.in_(sorted(successes))))
    lines = func.sum(_flag(and_(Attempt.invite_at.is_not(None), Attempt.ended_at.is_(None))))
    row = session.execute(select(*columns, lines).where(of_campaign(campaign_id))).one()
    recent = session.execute(
        select(*columns).where(of_campaign(campaign_id), Attempt.invite_at >= since)
    ).one()
    return _rates(row[:8]), _rates(recent), int(row[8] or 0)


def hour_bucket(dialect: str) -> Any:
    """The attempt's INVITE time cut to its UTC hour, in SQL (times are stored as naive UTC)."""
    if dialect == "postgresql":
        return func.date_trunc("hour", Attempt.invite_at)
    return func.strftime("%Y-%m-%d %H:00:00", Attempt.invite_at)


def as_hour(value: datetime | str) -> datetime:
    """An hour bucket as an aware UTC time (SQLite gives text, PostgreSQL a naive UTC time)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def hourly_rates(
    session: Session, campaign_id: int, successes: frozenset[str], first_hour: datetime
) -> list[tuple[datetime, Rates]]:
    """Per UTC hour of the INVITE from ``first_hour`` on, oldest first, as
    :func:`dialer.rates.hourly` (a contact succeeded in the hour when a call of that hour ended
    with a success outcome)."""
    dialect = session.get_bind().dialect.name
    query = (
        select(hour_bucket(dialect).label("hour"), *_columns(dialect, successes, None))
        .where(of_campaign(campaign_id), counted(), Attempt.invite_at >= first_hour)
        .group_by(literal_column("hour"))
    )
    found = [(as_hour(row[0]), _rates(row[1:])) for row in session.execute(query)]
    return sorted(found, key=lambda item: item[0])
