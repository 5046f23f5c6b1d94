"""The store on SQLite and PostgreSQL: lease order and rules, attempts, retries, outcomes,
expiry, reclaiming dead workers' leases, refusing late writes from a lost lease."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from dialer.call_result import CallResult, Outcome
from dialer.dnc import add as dnc_add
from dialer.models import Attempt, CampaignState, Contact, ContactEvent, DncEntry, EventKind
from dialer.retry_policy import Final, RetryAt
from dialer.store import AttemptReport, DialerStore, LeaseLostError
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign

LEASE = timedelta(minutes=5)


def report(result: CallResult, at: datetime, **kw: object) -> AttemptReport:
    return AttemptReport(result=result, started_at=at, ended_at=at + timedelta(seconds=30), **kw)  # type: ignore[arg-type]


def contact(engine: Engine, contact_id: int) -> Contact:
    with Session(engine) as session:
        return session.get_one(Contact, contact_id)


def test_dialer_data_lease_order_deadline_priority_attempts(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    late = add_contacts(engine, cid, 1, window=timedelta(hours=30), first_phone=13800000100)
    b, c, d = add_contacts(engine, cid, 3, priorities=[0, 0, 5], first_phone=13800000200)
    with Session(engine) as session, session.begin():
        session.execute(update(Contact).where(Contact.id == b).values(attempts=1))
        session.execute(update(Contact).where(Contact.id == d).values(attempts=2))
    store = DialerStore(engine, LEASE)
    leases = store.lease("w1", T0, limit=3)
    assert [lease.contact_id for lease in leases] == [d, c, b]
    assert [lease.contact_id for lease in store.lease("w1", T0, limit=3)] == late
    assert all(lease.owner == "w1" and lease.expires_at == T0 + LEASE for lease in leases)
    assert leases[0].fields == {"product": "Fund A"} and leases[0].phone.startswith("+86")
    assert store.lease("w2", T0, limit=3) == []


def test_dialer_data_lease_respects_campaign_state_dnc_and_hours(engine: Engine) -> None:
    cid = make_campaign(engine, state=CampaignState.DRAFT, calling_hours={"default": "09:00-21:00"})
    ids = add_contacts(engine, cid, 3)
    store = DialerStore(engine, LEASE)
    assert store.lease("w", T0, limit=5) == []  # draft
    store.set_state("march", CampaignState.RUNNING)
    dnc_add(engine, contact(engine, ids[0]).phone, "asked", T0)
    night = T0 + timedelta(hours=8)  # 22:00 in Shanghai
    assert store.lease("w", night, limit=5) == []
    # Not dialable now: moved to 09:00 local the next morning, so the next scan skips it.
    assert contact(engine, ids[1]).next_attempt_at == datetime.fromisoformat("2025-03-04T01:00:00+00:00")
    assert contact(engine, ids[0]).next_attempt_at == T0 - timedelta(hours=1)  # DNC: untouched
    store.set_state("march", CampaignState.PAUSED)
    assert store.lease("w", T0 + timedelta(hours=19), limit=5) == []
    store.set_state("march", CampaignState.RUNNING)
    leased = store.lease("w", T0 + timedelta(hours=19), limit=5)
    assert sorted(lease.contact_id for lease in leased) == ids[1:]


def test_dialer_data_busy_is_retried_then_answer_sets_flow_outcome(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"busy": "10m"})
    (cid1,) = add_contacts(engine, cid, 1)
    store = DialerStore(engine, LEASE)
    (lease,) = store.lease("w", T0)
    attempt = store.start_attempt(lease, T0)
    assert attempt is not None
    assert contact(engine, cid1).state == "leased"  # until the INVITE leaves
    assert store.dial_gate(lease, attempt, lambda: T0).ok
    assert contact(engine, cid1).state == "in_call"
    decision = store.finish_attempt(lease, attempt, report(CallResult.BUSY, T0, sip_status=486), T0)
    assert isinstance(decision, RetryAt) and decision.when == T0 + timedelta(minutes=10)
    stored = contact(engine, cid1)
    assert (stored.state, stored.attempts, stored.last_result, stored.lease_owner) == (
        "pending",
        1,
        "busy",
        None,
    )
    assert store.lease("w", T0 + timedelta(minutes=9)) == []
    (lease,) = store.lease("w", T0 + timedelta(minutes=10))
    attempt = store.start_attempt(lease, T0 + timedelta(minutes=10))
    assert attempt is not None
    answered = report(
        CallResult.ANSWERED_HUMAN, T0, sip_status=200, flow_outcome="confirmed", recording_id="rec-1"
    )
    decision = store.finish_attempt(lease, attempt, answered, T0 + timedelta(minutes=11))
    assert isinstance(decision, Final)
    stored = contact(engine, cid1)
    assert (stored.state, stored.outcome, stored.recording_id, stored.attempts) == (
        "done",
        "confirmed",
        "rec-1",
        2,
    )
    with Session(engine) as session:
        attempts = session.scalars(select(Attempt).order_by(Attempt.id)).all()
        events = session.scalars(select(ContactEvent)).all()
    assert [(a.result, a.sip_status, a.worker) for a in attempts] == [
        ("busy", 486, "w"),
        ("answered_human", 200, "w"),
    ]
    assert [(e.kind, e.detail.split(":")[0]) for e in events] == [(EventKind.OUTCOME, "confirmed")]


def test_dialer_data_flow_outcome_do_not_call_adds_the_number(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    (cid1,) = add_contacts(engine, cid, 1)
    store = DialerStore(engine, LEASE)
    (lease,) = store.lease("w", T0)
    attempt = store.start_attempt(lease, T0)
    assert attempt is not None
    store.finish_attempt(
        lease, attempt, report(CallResult.ANSWERED_HUMAN, T0, flow_outcome="do_not_call"), T0
    )
    stored = contact(engine, cid1)
    assert (stored.outcome, stored.dnc) == (Outcome.DO_NOT_CALL, True)
    with Session(engine) as session:
        assert session.get(DncEntry, stored.phone) is not None


def test_dialer_data_max_attempts_and_cancelled_not_counted(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"max_attempts": 2, "no_answer": "1m"})
    (cid1,) = add_contacts(engine, cid, 1)
    store = DialerStore(engine, LEASE)
    now = T0
    results = [CallResult.CANCELLED, CallResult.NO_ANSWER, CallResult.NO_ANSWER]
    decisions = []
    for result in results:
        (lease,) = store.lease("w", now)
        attempt = store.start_attempt(lease, now)
        assert attempt is not None
        decisions.append(store.finish_attempt(lease, attempt, report(result, now), now))
        now += timedelta(minutes=2)
    assert isinstance(decisions[-1], Final) and decisions[-1].outcome is Outcome.MAX_ATTEMPTS
    stored = contact(engine, cid1)
    assert (stored.attempts, stored.outcome, stored.state) == (2, "max_attempts", "done")


def test_dialer_data_expire_due_sets_outcome_and_event(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    ids = add_contacts(engine, cid, 2, window=timedelta(hours=2))
    store = DialerStore(engine, LEASE)
    (lease,) = store.lease("w", T0, limit=1)
    assert store.expire_due(T0) == []
    gone = store.expire_due(T0 + timedelta(hours=1, seconds=1))  # the leased one is not touched
    assert len(gone) == 1 and gone[0].phone.startswith("+")
    unleased = ids[1] if lease.contact_id == ids[0] else ids[0]
    stored = contact(engine, unleased)
    assert (stored.state, stored.outcome) == ("done", "expired")
    with Session(engine) as session:
        event = session.scalars(select(ContactEvent)).one()
    assert event.kind == EventKind.EXPIRED and event.contact_id == unleased
    assert "deadline 2025-03-03T07:00:00+00:00" in event.detail


def test_dialer_data_dead_worker_lease_is_reclaimed_and_late_write_refused(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    (cid1,) = add_contacts(engine, cid, 1)
    store = DialerStore(engine, timedelta(seconds=60))
    (dead,) = store.lease("dead", T0)
    dead_attempt = store.start_attempt(dead, T0)
    assert dead_attempt is not None
    assert store.dial_gate(dead, dead_attempt, lambda: T0).ok  # the INVITE left, then it died
    assert store.reclaim_expired_leases(T0 + timedelta(seconds=59)) == 0
    assert store.lease("live", T0 + timedelta(seconds=59)) == []  # still held: never two live calls
    assert store.reclaim_expired_leases(T0 + timedelta(seconds=61)) == 1
    with Session(engine) as session:
        lost = session.get_one(Attempt, dead_attempt)
    assert (lost.result, lost.ended_at) == ("worker_lost", T0 + timedelta(seconds=61))
    (live,) = store.lease("live", T0 + timedelta(seconds=62))
    assert live.contact_id == cid1 and live.token == dead.token + 1 and live.attempts == 1
    with pytest.raises(LeaseLostError):
        store.finish_attempt(
            dead, dead_attempt, report(CallResult.ANSWERED_HUMAN, T0, flow_outcome="confirmed"), T0
        )
    with pytest.raises(LeaseLostError):
        store.renew(dead, T0 + timedelta(seconds=63))
    renewed = store.renew(live, T0 + timedelta(seconds=70))
    assert renewed.expires_at == T0 + timedelta(seconds=130)
    assert contact(engine, cid1).outcome is None


def test_dialer_data_pause_between_lease_and_dial_gives_contact_back(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    (cid1,) = add_contacts(engine, cid, 1)
    store = DialerStore(engine, LEASE)
    (lease,) = store.lease("w", T0)
    store.set_state("march", CampaignState.PAUSED)
    assert store.start_attempt(lease, T0) is None
    stored = contact(engine, cid1)
    assert (stored.state, stored.attempts, stored.lease_owner) == ("pending", 0, None)


def test_dialer_data_finish_campaigns(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    ids = add_contacts(engine, cid, 2)
    dnc_add(engine, contact(engine, ids[1]).phone, "", T0)
    store = DialerStore(engine, LEASE)
    assert store.finish_campaigns(T0) == []
    (lease,) = store.lease("w", T0, limit=5)
    attempt = store.start_attempt(lease, T0)
    assert attempt is not None
    store.finish_attempt(lease, attempt, report(CallResult.INVALID_NUMBER, T0, sip_status=404), T0)
    assert store.finish_campaigns(T0) == ["march"]
    assert store.campaign("march").state == "finished"
    assert [contact(engine, i).outcome for i in ids] == ["invalid_number", "do_not_call"]


def test_dialer_data_worker_dead_before_dialling_costs_no_attempt(engine: Engine) -> None:
    """A worker that died between taking a contact and its INVITE: the attempt is closed
    ``cancelled`` (not ``worker_lost``) and the contact, with one attempt allowed, is called."""
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"max_attempts": 1})
    (cid1,) = add_contacts(engine, cid, 1)
    store = DialerStore(engine, timedelta(seconds=60))
    (dead,) = store.lease("dead", T0)
    attempt = store.start_attempt(dead, T0)
    assert attempt is not None
    assert store.reclaim_expired_leases(T0 + timedelta(seconds=61)) == 1
    with Session(engine) as session:
        closed = session.get_one(Attempt, attempt)
        event = session.scalars(select(ContactEvent)).one()
    assert (closed.result, closed.invite_at, closed.detail) == (
        "cancelled",
        None,
        "not dialled: worker dead lost before the INVITE",
    )
    assert event.detail == "lease of dead expired before dialling"
    stored = contact(engine, cid1)
    assert (stored.state, stored.attempts, stored.outcome, stored.last_result) == ("pending", 0, None, None)
    (live,) = store.lease("live", T0 + timedelta(seconds=62))
    second = store.start_attempt(live, T0 + timedelta(seconds=62))
    assert second is not None and store.dial_gate(live, second, lambda: T0 + timedelta(seconds=62)).ok
    store.finish_attempt(live, second, report(CallResult.NO_ANSWER, T0 + timedelta(seconds=62)), T0)
    assert (contact(engine, cid1).attempts, contact(engine, cid1).outcome) == (1, "max_attempts")


def test_dialer_data_attempt_records_the_call_events(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, 1)
    store = DialerStore(engine, LEASE)
    (lease,) = store.lease("w", T0)
    attempt = store.start_attempt(lease, T0)
    assert attempt is not None
    invite, answer, prompt = (T0 + timedelta(seconds=s) for s in (3, 9, 10))
    assert store.dial_gate(lease, attempt, lambda: invite).at == invite
    answered = AttemptReport(
        CallResult.ANSWERED_HUMAN,
        T0,
        T0 + timedelta(seconds=70),
        200,
        "confirmed",
        invite_at=invite + timedelta(milliseconds=5),
        answered_at=answer,
        flow_started_at=prompt,
        decision_text="yes I confirm " * 50,
        decision_confidence=0.82,
    )
    store.finish_attempt(lease, attempt, answered, T0 + timedelta(seconds=70))
    with Session(engine) as session:
        row = session.get_one(Attempt, attempt)
    assert (row.started_at, row.invite_at, row.answered_at, row.flow_started_at) == (
        T0,
        invite + timedelta(milliseconds=5),
        answer,
        prompt,
    )
    assert row.decision_text is not None and len(row.decision_text) == 500
    assert (row.decision_confidence, row.ended_after_deadline, row.detail) == (0.82, False, "")
