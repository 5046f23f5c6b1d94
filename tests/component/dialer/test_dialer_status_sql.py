"""The rates ``campaign status`` counts in SQL equal the reference definitions of
:mod:`dialer.rates` on the same rows: seeded random campaigns on SQLite and PostgreSQL, with
times on the edges that matter (exactly 2 s from answer to flow, exactly 24 h ago, on the hour)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from dialer.models import Attempt, Contact
from dialer.rates import AttemptFacts, ContactFacts, hour_of, hourly, rates, success_outcomes
from dialer.status import OFCOM_WINDOW, campaign_status
from tests.component.dialer.dialer_data_helpers import add_contacts, make_campaign
from tests.component.dialer.random_attempts import NOW, OUTCOMES, RESULTS, RandomAttempts

ATTEMPTS = RandomAttempts(
    results=[*RESULTS, "rejected"],
    # 24 h ago, an hour's start up to 30 h back, or now (just ahead counts too)
    edges=lambda rng: [NOW - OFCOM_WINDOW, hour_of(NOW) - timedelta(hours=rng.randint(0, 30)), NOW],
    edge_below=0.16,
    unended=0.15,
    rounded=0.3,  # fractions SQLite's date functions round up
)


def _attempt(rng: random.Random, contact: int) -> dict[str, Any]:
    invite = ATTEMPTS.invite(rng)
    return {
        "contact_id": contact,
        "started_at": invite or NOW,
        "invite_at": invite,
        **ATTEMPTS.final(rng, invite),
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
