"""The rates ``campaign status`` counts in SQL equal the reference definitions of
:mod:`dialer.rates` on the same rows: seeded random campaigns on SQLite and PostgreSQL, with
times on the edges that matter (exactly 2 s from answer to flow, exactly 24 h ago, on the hour)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from dialer.models import Attempt, Contact
from dialer.rates import AttemptFacts, ContactFacts, hour_of, hourly, rates, success_outcomes
from dialer.status import OFCOM_WINDOW, campaign_status
from tests.component.dialer.dialer_data_helpers import T0, add_contacts, make_campaign

NOW = T0 + timedelta(minutes=37, seconds=11, microseconds=123_456)
RESULTS = [
    None,
    "cancelled",
    "answered",
    "answered_human",
    "answered_machine",
    "busy",
    "no_answer",
    "rejected",
]
OUTCOMES = [None, "confirmed", "retained", "declined", "success", "completed", "callback"]
US = timedelta(microseconds=1)


def _time(rng: random.Random) -> datetime | None:
    """An INVITE time: none, on an edge, or anywhere in the last ~50 h (or just ahead)."""
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.16:
        edge = rng.choice([NOW - OFCOM_WINDOW, hour_of(NOW) - timedelta(hours=rng.randint(0, 30)), NOW])
        return edge + rng.choice([-US, timedelta(0), US])
    return NOW - timedelta(seconds=rng.uniform(-3600, 50 * 3600))


def _attempt(rng: random.Random, contact: int) -> dict[str, Any]:
    invite = _time(rng)
    answered = (
        None if invite is None or rng.random() < 0.2 else invite + timedelta(seconds=rng.uniform(0, 30))
    )
    if answered is not None and rng.random() < 0.3:  # fractions SQLite's date functions round up
        answered = answered.replace(microsecond=rng.choice([999_999, 999_500, 999_499, 0]))
    flow = None
    if answered is not None and rng.random() < 0.85:
        wait = rng.choice([2 * 1_000_000, 2 * 1_000_000 + 1, 2 * 1_000_000 - 1, rng.randint(0, 5_000_000)])
        flow = answered + wait * US
    ended = None if rng.random() < 0.15 else (invite or NOW) + timedelta(seconds=rng.uniform(1, 300))
    return {
        "contact_id": contact,
        "started_at": invite or NOW,
        "invite_at": invite,
        "answered_at": answered,
        "flow_started_at": flow,
        "ended_at": ended,
        "result": rng.choice(RESULTS),
        "flow_outcome": rng.choice(OUTCOMES),
        "worker": "w",
    }


def _campaign(
    engine: Engine, rng: random.Random, name: str, kind: str, first_phone: int
) -> tuple[list[ContactFacts], list[AttemptFacts]]:
    """A campaign of random contacts and attempts, written to the database and returned as facts."""
    camp = make_campaign(engine, name, kind=kind)
    ids = add_contacts(engine, camp, rng.randint(5, 40), first_phone=first_phone)
    contacts = [ContactFacts(id=i, outcome=rng.choice(OUTCOMES), dnc=rng.random() < 0.1) for i in ids]
    rows = [_attempt(rng, rng.choice(ids)) for _ in range(rng.randint(0, 300))]
    with Session(engine) as session, session.begin():
        for c in contacts:
            session.query(Contact).filter(Contact.id == c.id).update({"outcome": c.outcome, "dnc": c.dnc})
        if rows:
            session.execute(insert(Attempt), rows)
    facts = [
        AttemptFacts(**{k: v for k, v in row.items() if k not in ("started_at", "worker")}) for row in rows
    ]
    return contacts, facts


@pytest.mark.parametrize("seed", range(4))
def test_dialer_status_sql_rates_equal_the_reference_definitions(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    kind = rng.choice(["compliance_callback", "retention", "survey"])
    extra = rng.sample(["declined", "callback", "success"], rng.randint(0, 1))
    contacts, attempts = _campaign(engine, rng, "target", kind, 13800000000)
    _campaign(engine, rng, "neighbour", kind, 13900000000)  # its attempts must not count
    hours = rng.choice([1, 6, 24, 72])

    status = campaign_status(engine, "target", NOW, extra_success=extra, hours=hours)

    successes = success_outcomes(kind, extra)
    assert status.rates == rates(contacts, attempts, successes)
    assert status.rates_24h == rates(contacts, attempts, successes, since=NOW - OFCOM_WINDOW)
    first_hour = hour_of(NOW) - timedelta(hours=hours - 1)
    assert status.hourly == [(h, r) for h, r in hourly(attempts, successes) if h >= first_hour]
    assert status.lines_in_use == sum(a.invite_at is not None and a.ended_at is None for a in attempts)
    assert status.rates.attempts > 0 or not any(a.counted for a in attempts)
