"""The check right before the INVITE (issue 14, A-D) with a scripted placer and a hand-stepped
clock, on SQLite and PostgreSQL: rules re-checked at dial time, cancelled dials never count,
do-not-call contacts end at once, expiry comes the margin before the deadline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from dialer import dnc
from dialer.call_result import CallResult
from dialer.models import Attempt, Contact, ContactEvent, EventKind
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.worker import CallReport, CallRequest, DialerWorker, WorkerConfig
from tests.component.dialer.dialer_data_fakes import FakeClock, Scripted, ScriptedPlacer
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, add_contacts, make_campaign
from tests.component.dialer.test_dialer_data_worker import CollectingPublisher

NY = "America/New_York"
CLOSING = datetime(2025, 3, 5, 21, 59, 58, tzinfo=UTC)  # Wednesday 16:59:58 in New York
NUMBER = "+8613800000000"
ANSWER = Scripted(CallResult.ANSWERED_HUMAN, "confirmed", 200)
BUSY = Scripted(CallResult.BUSY, sip_status=486)


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def build(
    engine: Engine, clock: FakeClock, placer: object, **config: object
) -> tuple[DialerWorker, CollectingPublisher]:
    events = CollectingPublisher()
    worker = DialerWorker(
        DialerStore(engine, timedelta(minutes=5)),
        Pacer(2, 100.0, burst=2),
        placer,  # type: ignore[arg-type]
        clock,
        WorkerConfig(owner="w", **config),  # type: ignore[arg-type]
        events=events,
    )
    return worker, events


def attempts(engine: Engine) -> list[Attempt]:
    with Session(engine) as session:
        return list(session.scalars(select(Attempt).order_by(Attempt.id)))


def contact(engine: Engine, contact_id: int) -> Contact:
    with Session(engine) as session:
        return session.get_one(Contact, contact_id)


def dial_once(
    worker: DialerWorker, clock: FakeClock, before_invite: Callable[[], object] | None = None
) -> None:
    """One tick; the placer waits 5 s before its INVITE (start-up, a line), then the call ends."""

    async def scenario() -> None:
        assert await worker.tick() == 1
        await until(lambda: clock.pending_sleeps >= 2)  # the placer's wait and the lease renewal
        if before_invite is not None:
            before_invite()
        clock.advance(5)
        await worker.wait_idle()

    asyncio.run(scenario())


def test_dialer_data_calling_hours_close_between_lease_and_invite(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours={"default": "09:00-17:00"})
    start = CLOSING - timedelta(hours=1)
    (cid1,) = add_contacts(engine, cid, 1, start=start, window=timedelta(days=3), tz=NY)
    clock = FakeClock(CLOSING)
    placer = ScriptedPlacer(clock, {NUMBER: [ANSWER]}, pre_invite_s=5)
    worker, _ = build(engine, clock, placer)
    dial_once(worker, clock)
    assert placer.invites == [] and placer.refused == [cid1]
    (row,) = attempts(engine)
    assert (row.result, row.invite_at, row.ended_at) == ("cancelled", None, CLOSING + timedelta(seconds=5))
    why = "not dialled: outside the callee's calling hours (next allowed 2025-03-06T14:00"
    assert row.detail.startswith(why)
    stored = contact(engine, cid1)
    morning = datetime(2025, 3, 6, 14, 0, tzinfo=UTC)  # 09:00 in New York
    assert (stored.state, stored.attempts, stored.next_attempt_at, stored.last_result) == (
        "pending",
        0,
        morning,
        None,
    )
    assert (worker.stats.cancelled, worker.stats.placed) == (1, 0)


def test_dialer_data_deadline_passes_between_lease_and_invite(engine: Engine) -> None:
    """The last start is the deadline less the margin (5 min): leased 3 s before it, checked 2 s
    after: not dialled, expired, and the alert goes out minutes before the deadline itself."""
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    t0 = CLOSING
    deadline = t0 + timedelta(minutes=5, seconds=3)
    (cid1,) = add_contacts(engine, cid, 1, start=deadline - timedelta(hours=24), tz=NY)
    clock = FakeClock(t0)
    placer = ScriptedPlacer(clock, {NUMBER: [ANSWER]}, pre_invite_s=5)
    worker, events = build(engine, clock, placer)
    dial_once(worker, clock)
    assert placer.invites == []
    stored = contact(engine, cid1)
    assert (stored.state, stored.outcome, stored.attempts, stored.outcome_at) == (
        "done",
        "expired",
        0,
        t0 + timedelta(seconds=5),
    )
    assert stored.outcome_at is not None and stored.outcome_at < deadline - timedelta(minutes=4)
    assert [(t, p["contact_id"]) for t, p in events.events if t.endswith("/expired")] == [
        ("dialer/march/expired", cid1)
    ]
    (row,) = attempts(engine)
    assert row.result == "cancelled" and "no call may start before the deadline" in row.detail


def test_dialer_data_number_listed_between_lease_and_invite(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    (cid1,) = add_contacts(engine, cid, 1, start=CLOSING - timedelta(hours=1))
    clock = FakeClock(CLOSING)
    placer = ScriptedPlacer(clock, {NUMBER: [ANSWER]}, pre_invite_s=5)
    worker, events = build(engine, clock, placer)
    dial_once(worker, clock, lambda: dnc.add(engine, NUMBER, "asked by letter", CLOSING))
    assert placer.invites == []
    stored = contact(engine, cid1)
    assert (stored.state, stored.outcome, stored.attempts, stored.dnc) == ("done", "do_not_call", 0, True)
    (row,) = attempts(engine)
    assert row.result == "cancelled" and row.invite_at is None and "do_not_call" in row.detail
    with Session(engine) as session:
        kinds = [e.kind for e in session.scalars(select(ContactEvent))]
    assert kinds == [EventKind.DNC_MARKED]
    assert [t for t, _ in events.events] == []  # no "expired" alert, ever
    assert worker.stats.cancelled == 1


def test_dialer_data_number_listed_during_a_live_call(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"busy": "1m"})
    (cid1,) = add_contacts(engine, cid, 1, start=CLOSING - timedelta(hours=1), window=timedelta(hours=2))
    clock = FakeClock(CLOSING)
    busy_a_while = Scripted(CallResult.BUSY, sip_status=486, seconds=30)
    placer = ScriptedPlacer(clock, {NUMBER: [busy_a_while]})
    worker, events = build(engine, clock, placer)

    async def scenario() -> None:
        await worker.tick()
        await until(lambda: bool(placer.invites) and clock.pending_sleeps >= 2)
        dnc.add(engine, NUMBER, "asked", CLOSING)
        assert contact(engine, cid1).state == "in_call"  # the live call is not cut
        clock.advance(30)
        await worker.wait_idle()
        clock.advance(3 * 3600)  # well past the deadline
        await worker.housekeeping()

    asyncio.run(scenario())
    stored = contact(engine, cid1)
    assert (stored.state, stored.outcome, stored.attempts) == ("done", "do_not_call", 1)
    assert not [t for t, _ in events.events if t.endswith("/expired")]


def test_dialer_data_contacts_imported_on_the_list_end_do_not_call_not_expired(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    ids = add_contacts(engine, cid, 2, start=CLOSING - timedelta(hours=23), window=timedelta(hours=23))
    with Session(engine) as session, session.begin():  # as the importer marks a listed number
        session.execute(update(Contact).where(Contact.id == ids[0]).values(dnc=True))
    clock = FakeClock(CLOSING)  # both deadlines have passed
    worker, events = build(engine, clock, ScriptedPlacer(clock, {}))
    asyncio.run(worker.housekeeping())
    assert (contact(engine, ids[0]).outcome, contact(engine, ids[1]).outcome) == ("do_not_call", "expired")
    assert [p["contact_id"] for t, p in events.events if t.endswith("/expired")] == [ids[1]]


def test_dialer_data_expiry_alert_comes_the_margin_before_the_deadline(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"deadline_margin": "10m"})
    deadline = CLOSING + timedelta(hours=1)
    (cid1,) = add_contacts(engine, cid, 1, start=deadline - timedelta(hours=24))
    store = DialerStore(engine)
    assert store.expire_due(deadline - timedelta(minutes=10, seconds=1)) == []
    (gone,) = store.expire_due(deadline - timedelta(minutes=10))
    assert gone.contact_id == cid1
    assert contact(engine, cid1).outcome == "expired"


def test_dialer_data_worker_expires_a_contact_at_its_last_start_not_at_the_next_interval(
    engine: Engine,
) -> None:
    """The acceptance run (bench/acceptance_campaign.py) saw expiries up to the housekeeping
    interval after the last start, less than the margin before the deadline: the worker now
    looks again when the next last start comes, one poll interval ahead."""
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"deadline_margin": "90s"})
    deadline = CLOSING + timedelta(hours=1)
    last_start = deadline - timedelta(seconds=90)
    (cid1,) = add_contacts(engine, cid, 1, start=deadline - timedelta(hours=24))
    with Session(engine) as session, session.begin():  # a retry due just before the last start
        session.execute(
            update(Contact)
            .where(Contact.id == cid1)
            .values(next_attempt_at=last_start - timedelta(seconds=0.8))
        )
    clock = FakeClock(last_start - timedelta(seconds=5))
    placer = ScriptedPlacer(clock, {})
    worker, events = build(engine, clock, placer, housekeeping_interval_s=10.0, poll_interval_s=1.0)
    asyncio.run(worker.tick())  # housekeeping: nothing to expire yet, the retry still fits
    assert contact(engine, cid1).outcome is None
    clock.advance(4.5)  # 0.5 s before the last start, 4.5 s after the last housekeeping
    asyncio.run(worker.tick())
    gone = contact(engine, cid1)
    assert (gone.outcome, gone.attempts) == ("expired", 0)
    assert gone.outcome_at is not None and gone.outcome_at <= last_start  # the margin before the deadline
    assert [p["contact_id"] for t, p in events.events if t.endswith("/expired")] == [cid1]


class FailingPlacer:
    """Fails before its INVITE, or finds no free line, or pjsua refuses the call after the check."""

    checks_before_invite = True

    def __init__(self, how: str) -> None:
        self.how = how

    async def place(self, request: CallRequest) -> CallReport:
        now = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
        if self.how == "raises":
            raise RuntimeError("speech models failed to load")
        if self.how == "refused_after_check":
            assert request.ready_to_dial is not None and await request.ready_to_dial()
        return CallReport(CallResult.CANCELLED, now, now, detail="not dialled: no free line")


@pytest.mark.parametrize("how", ["raises", "no_line", "refused_after_check"])
def test_dialer_data_failures_before_the_invite_cost_no_attempt(engine: Engine, how: str) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"max_attempts": 1})
    (cid1,) = add_contacts(engine, cid, 1, start=CLOSING - timedelta(hours=1))
    clock = FakeClock(CLOSING)
    worker, _ = build(engine, clock, FailingPlacer(how))

    async def scenario() -> None:
        await worker.tick()
        await worker.wait_idle()

    asyncio.run(scenario())
    stored = contact(engine, cid1)
    assert (stored.state, stored.attempts, stored.outcome) == ("pending", 0, None)
    assert stored.next_attempt_at == CLOSING + timedelta(seconds=30)  # a short wait, then again
    (row,) = attempts(engine)
    assert (row.result, row.invite_at) == ("cancelled", None)
    expected = "speech models failed" if how == "raises" else "no free line"
    assert expected in row.detail
    assert (worker.stats.cancelled, worker.stats.placed) == (1, 0)


class StartedPlacer(ScriptedPlacer):
    """Records whether any contact was leased when the dialer started it."""

    def __init__(self, engine: Engine, clock: FakeClock) -> None:
        super().__init__(clock, {NUMBER: [ANSWER]}, pre_invite_s=5)
        self.engine = engine
        self.leased_at_start: list[str] | None = None

    async def start(self) -> None:
        with Session(self.engine) as session:
            self.leased_at_start = list(session.scalars(select(Contact.state)))


def test_dialer_data_stop_before_the_invite_costs_no_attempt(engine: Engine) -> None:
    """SIGINT while the first call starts: the placer was started before any lease, and the
    call not yet dialled is cancelled and the contact given back as it was."""
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"max_attempts": 1})
    (cid1,) = add_contacts(engine, cid, 1, start=CLOSING - timedelta(hours=1))
    clock = FakeClock(CLOSING)
    placer = StartedPlacer(engine, clock)
    worker, _ = build(engine, clock, placer)

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(worker.run(stop))
        await until(lambda: worker.active_calls == 1 and clock.pending_sleeps >= 3)
        stop.set()
        await asyncio.sleep(0.01)
        clock.advance(5)
        await asyncio.wait_for(runner, 10)

    asyncio.run(scenario())
    assert placer.leased_at_start == ["pending"]
    assert placer.invites == []
    stored = contact(engine, cid1)
    assert (stored.state, stored.attempts, stored.outcome, stored.next_attempt_at) == (
        "pending",
        0,
        None,
        CLOSING + timedelta(seconds=5),
    )
    (row,) = attempts(engine)
    assert (row.result, row.detail) == ("cancelled", "not dialled: the dialer is stopping")


def test_dialer_data_call_ending_after_the_deadline_is_flagged(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"deadline_margin": "1m"})
    deadline = CLOSING + timedelta(minutes=2)
    add_contacts(engine, cid, 1, start=deadline - timedelta(hours=24))
    clock = FakeClock(CLOSING)
    placer = ScriptedPlacer(clock, {NUMBER: [Scripted(CallResult.ANSWERED_HUMAN, "confirmed", 200, 300)]})
    worker, _ = build(engine, clock, placer)

    async def scenario() -> None:
        await worker.tick()
        await until(lambda: bool(placer.invites) and clock.pending_sleeps >= 2)
        for _ in range(10):
            clock.advance(30)
            await asyncio.sleep(0.01)
        await worker.wait_idle()

    with caplog.at_level(logging.WARNING, logger="ivr.dialer.store"):
        asyncio.run(scenario())
    (row,) = attempts(engine)
    assert row.invite_at == CLOSING and row.ended_at is not None and row.ended_at > deadline
    assert row.ended_after_deadline is True
    (record,) = [r for r in caplog.records if r.getMessage() == "dialer.call_ended_after_deadline"]
    assert record.fields["deadline"] == deadline.isoformat()  # type: ignore[attr-defined]


def test_dialer_data_warns_when_the_margin_is_shorter_than_a_call(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    tight = make_campaign(engine, "tight", calling_hours=ALWAYS_OPEN, retry={"deadline_margin": "2m"})
    roomy = make_campaign(engine, "roomy", calling_hours=ALWAYS_OPEN, retry={"deadline_margin": "10m"})
    add_contacts(engine, tight, 1, start=CLOSING)  # running campaigns with work left
    add_contacts(engine, roomy, 1, start=CLOSING, first_phone=13900000000)
    clock = FakeClock(CLOSING)
    worker, _ = build(engine, clock, ScriptedPlacer(clock, {}), ring_timeout_s=30, expected_call_s=180)
    with caplog.at_level(logging.WARNING, logger="ivr.dialer"):
        asyncio.run(worker.housekeeping())
        asyncio.run(worker.housekeeping())  # once per campaign, not at every housekeeping
    warned = [r for r in caplog.records if r.getMessage() == "dialer.deadline_margin_short"]
    assert [r.fields["campaign"] for r in warned] == ["tight"]  # type: ignore[attr-defined]
    assert warned[0].fields["expected_call_s"] == 210.0  # type: ignore[attr-defined]
