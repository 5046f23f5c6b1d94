"""The counters the wallboard reads (:mod:`dialer.hourly_counters`) equal the rates counted in
SQL (:mod:`dialer.rates_sql`) and the reference definitions (:mod:`dialer.rates`): seeded
random campaigns on SQLite and PostgreSQL whose attempts are written and then changed one at a
time, as the dialer does; the store's own writes; and the schema upgrade that fills them in."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from dialer import hourly_counters
from dialer.call_result import CallResult
from dialer.db import make_engine, upgrade_database
from dialer.models import Attempt, CampaignHour, CampaignHourOutcome, Contact
from dialer.rates import AttemptFacts, ContactFacts, hour_of, hourly, rates, success_outcomes
from dialer.status import OFCOM_WINDOW, CampaignStatus, campaign_status
from dialer.store import AttemptReport, DialerStore
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign
from tests.component.dialer.random_attempts import NOW, OUTCOMES, RESULTS, RandomAttempts

ATTEMPTS = RandomAttempts(
    results=[*RESULTS, "worker_lost"],
    # 24 h ago, the start of that hour, the start of the hour 3 h back
    edges=lambda _rng: [NOW - OFCOM_WINDOW, hour_of(NOW - OFCOM_WINDOW), hour_of(NOW) - timedelta(hours=3)],
    edge_below=0.2,
    unended=0.1,
)


def _facts(row: dict[str, Any]) -> AttemptFacts:
    return AttemptFacts(**{k: v for k, v in row.items() if k in AttemptFacts.__dataclass_fields__})


def _campaign(
    engine: Engine, rng: random.Random, name: str, kind: str, first_phone: int
) -> tuple[int, list[int]]:
    camp = make_campaign(engine, name, kind=kind)
    ids = add_contacts(engine, camp, rng.randint(5, 30), first_phone=first_phone)
    with Session(engine) as session, session.begin():
        for i in ids:
            session.execute(
                update(Contact)
                .where(Contact.id == i)
                .values(outcome=rng.choice(OUTCOMES), dnc=rng.random() < 0.1)
            )
    return camp, ids


def _write_attempts(
    engine: Engine, rng: random.Random, ids: list[int], count: int
) -> dict[int, dict[str, Any]]:
    """``count`` attempts, each in its own transaction: most written live first (no result) and
    ended later, in shuffled order; the rest written ended. Returns their rows by id."""
    rows: dict[int, dict[str, Any]] = {}
    pending: list[int] = []
    for _ in range(count):
        contact_id = rng.choice(ids)
        invite = ATTEMPTS.invite(rng)
        row: dict[str, Any] = {"contact_id": contact_id, "invite_at": invite}
        live = rng.random() < 0.7
        row.update({"result": None, "ended_at": None} if live else ATTEMPTS.final(rng, invite))
        with Session(engine) as session, session.begin():
            contact = session.get_one(Contact, contact_id)
            attempt = Attempt(started_at=invite or NOW, worker="w", **row)
            session.add(attempt)
            session.flush()
            hourly_counters.count_change(session, contact, {attempt.id: None})
            attempt_id = attempt.id
        rows[attempt_id] = row
        if live:
            pending.append(attempt_id)
    rng.shuffle(pending)
    for attempt_id in pending[: int(len(pending) * 0.9)]:  # a tenth stay in progress
        with Session(engine) as session, session.begin():
            attempt = session.get_one(Attempt, attempt_id)
            before = hourly_counters.facts_of(attempt)
            changes = ATTEMPTS.final(rng, attempt.invite_at)
            for key, value in changes.items():
                setattr(attempt, key, value)
            contact = session.get_one(Contact, attempt.contact_id)
            hourly_counters.count_change(session, contact, {attempt_id: before})
            rows[attempt_id].update(changes)
    return rows


def _counter_rows(engine: Engine, campaign_id: int) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    with Session(engine) as session:
        hours = {
            tuple(getattr(row, name) for name in ("hour", *hourly_counters.FIGURES))
            for row in session.scalars(select(CampaignHour).where(CampaignHour.campaign_id == campaign_id))
            if row.attempts or any(getattr(row, name) for name in hourly_counters.FIGURES)
        }
        outcomes = {
            (row.hour, row.label, row.n)
            for row in session.scalars(
                select(CampaignHourOutcome).where(CampaignHourOutcome.campaign_id == campaign_id)
            )
            if row.n
        }
    return hours, outcomes


def _same_rates(a: CampaignStatus, b: CampaignStatus) -> None:
    assert (a.rates, a.rates_24h, a.hourly, a.lines_in_use) == (
        b.rates,
        b.rates_24h,
        b.hourly,
        b.lines_in_use,
    )


@pytest.mark.parametrize("seed", range(4))
def test_counters_equal_sql_and_the_reference_on_random_campaigns(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    kind = rng.choice(["compliance_callback", "retention", "survey"])
    camp, ids = _campaign(engine, rng, "target", kind, 13800000000)
    rows = _write_attempts(engine, rng, ids, rng.randint(1, 250))
    _, others = _campaign(engine, rng, "neighbour", kind, 13900000000)
    _write_attempts(engine, rng, others, 60)  # must not count
    hours = rng.choice([1, 6, 24, 72])

    counted = campaign_status(engine, "target", NOW, hours=hours, counters=True)
    recounted = campaign_status(engine, "target", NOW, hours=hours)

    with Session(engine) as session:
        contacts = [
            ContactFacts(c.id, c.outcome, c.dnc)
            for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))
        ]
    attempts = [_facts(row) for row in rows.values()]
    successes = success_outcomes(kind)
    assert counted.rates == rates(contacts, attempts, successes)
    assert counted.rates_24h == rates(contacts, attempts, successes, since=NOW - OFCOM_WINDOW)
    first_hour = hour_of(NOW) - timedelta(hours=hours - 1)
    assert counted.hourly == [(h, r) for h, r in hourly(attempts, successes) if h >= first_hour]
    assert counted.lines_in_use == sum(a.invite_at is not None and a.ended_at is None for a in attempts)
    _same_rates(counted, recounted)

    expected = Counter(
        (
            hour_of(a.invite_at),
            hourly_counters.outcome_label(a.result, a.flow_outcome, a.ended_at is not None),
        )
        for a in attempts
        if a.invite_at is not None and a.invite_at >= first_hour and a.result != "cancelled"
    )
    with Session(engine) as session:
        found: Counter[tuple[datetime, str]] = Counter()
        for hour, label, n in hourly_counters.hourly_outcomes(session, camp, first_hour):
            found[(hour, label)] += n
    assert found == expected

    kept = _counter_rows(engine, camp)
    with Session(engine) as session, session.begin():
        assert hourly_counters.rebuild(session, camp) == len(rows)
    assert _counter_rows(engine, camp) == kept
    _same_rates(campaign_status(engine, "target", NOW, hours=hours, counters=True), recounted)


def _report(result: CallResult, at: datetime, **kw: Any) -> AttemptReport:
    return AttemptReport(result=result, started_at=at, ended_at=at + timedelta(seconds=30), **kw)


def test_the_store_counts_results_and_dead_workers_calls(engine: Engine) -> None:
    march = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    first, second = add_contacts(engine, march, 2)
    other = make_campaign(engine, "other", calling_hours=ALWAYS_OPEN)
    add_contacts(engine, other, 2, first_phone=13900000000)
    store = DialerStore(engine, timedelta(minutes=1))
    leases = {lease.contact_id: lease for lease in store.lease("w", T0, limit=4)}
    lease = leases[first]
    attempt = store.start_attempt(lease, T0)
    assert attempt is not None and store.dial_gate(lease, attempt, lambda: T0).ok
    live = campaign_status(engine, "march", T0, counters=True)
    assert (live.lines_in_use, live.rates.attempts) == (1, 0)
    answered = _report(
        CallResult.ANSWERED_HUMAN,
        T0,
        answered_at=T0 + timedelta(seconds=5),
        flow_started_at=T0 + timedelta(seconds=8),
        flow_outcome="confirmed",
    )
    store.finish_attempt(lease, attempt, answered, T0 + timedelta(seconds=40))
    lost = store.start_attempt(leases[second], T0)
    assert lost is not None and store.dial_gate(leases[second], lost, lambda: T0).ok
    assert store.reclaim_expired_leases(T0 + timedelta(minutes=2)) >= 1  # "w" died mid-call

    counted = campaign_status(engine, "march", T0 + timedelta(minutes=3), counters=True)
    assert counted.rates.attempts == 2 and counted.rates.contacts_succeeded == 1
    assert counted.rates.abandoned == 1 and counted.lines_in_use == 0  # the flow started 3 s late
    _same_rates(counted, campaign_status(engine, "march", T0 + timedelta(minutes=3)))
    with Session(engine) as session:
        labels = {label: n for _, label, n in hourly_counters.hourly_outcomes(session, march, hour_of(T0))}
    assert labels == {"confirmed": 1, "worker_lost": 1}


def test_the_upgrade_fills_the_counters_from_stored_attempts(db_url: str) -> None:
    upgrade_database(db_url, revision="0003")
    engine = make_engine(db_url)
    try:
        rng = random.Random(11)
        camp = make_campaign(engine, "old", kind="retention")
        ids = add_contacts(engine, camp, 20)
        rows = []
        for _ in range(150):
            invite = ATTEMPTS.invite(rng)
            rows.append(
                {
                    "contact_id": rng.choice(ids),
                    "started_at": NOW,
                    "worker": "w",
                    "invite_at": invite,
                    **ATTEMPTS.final(rng, invite),
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(Attempt.__table__), rows)  # type: ignore[arg-type]
        upgrade_database(db_url)
        _same_rates(campaign_status(engine, "old", NOW, counters=True), campaign_status(engine, "old", NOW))
        assert campaign_status(engine, "old", NOW, counters=True).rates.attempts > 0
    finally:
        engine.dispose()
