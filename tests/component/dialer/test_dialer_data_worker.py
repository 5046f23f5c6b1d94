"""The worker loop with a scripted placer and a hand-stepped clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

import jsonschema
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dialer.call_result import CallResult
from dialer.models import CampaignState, Contact, ContactEvent
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.worker import CallReport, CallRequest, DialerWorker, SystemClock, WorkerConfig
from dialer.worker_types import CampaignSetupError
from supervision.event_catalog import load_schema, schema_name
from tests.component.dialer.dialer_data_fakes import FakeClock, Scripted, ScriptedPlacer
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign

ANSWER = Scripted(CallResult.ANSWERED_HUMAN, "confirmed", 200)
BUSY = Scripted(CallResult.BUSY, sip_status=486)
NO_ANSWER = Scripted(CallResult.NO_ANSWER, sip_status=408)


def outcomes(engine: Engine) -> dict[str, tuple[str, str | None, int]]:
    with Session(engine) as session:
        return {c.phone: (c.state, c.outcome, c.attempts) for c in session.scalars(select(Contact))}


def test_dialer_data_worker_runs_campaign_with_retries(engine: Engine) -> None:
    cid = make_campaign(
        engine, calling_hours=ALWAYS_OPEN, retry={"busy": "5m", "no_answer": "5m", "max_attempts": 3}
    )
    add_contacts(engine, cid, 3)
    a, b, c = "+8613800000000", "+8613800000001", "+8613800000002"
    clock = FakeClock(T0)
    placer = ScriptedPlacer(clock, {a: [ANSWER], b: [BUSY, ANSWER], c: [NO_ANSWER] * 3})
    store = DialerStore(engine, timedelta(minutes=5))
    config = WorkerConfig(owner="w1", trunk_uri="sip:{number}@trunk.example", ring_timeout_s=25)
    worker = DialerWorker(store, Pacer(max_concurrent=2, calls_per_second=1.0), placer, clock, config)

    async def scenario() -> None:
        for _ in range(4):  # 3 contacts, 1 call per second: the rate limit, not the cap, binds
            await worker.tick()
            await worker.wait_idle()
            clock.advance(1)
        assert len(placer.requests) == 3
        for _ in range(3):
            clock.advance(300)
            for _ in range(3):
                await worker.tick()
                await worker.wait_idle()
                clock.advance(1)

    asyncio.run(scenario())
    assert outcomes(engine) == {
        a: ("done", "confirmed", 1),
        b: ("done", "confirmed", 2),
        c: ("done", "max_attempts", 3),
    }
    first = placer.requests[0]
    assert first.sip_uri == f"sip:{first.number}@trunk.example"
    assert first.ring_timeout_s == 25 and first.flow == "flows/library/callback.yaml"
    assert first.variables["product"] == "Fund A" and first.variables["campaign"] == "march"
    assert placer.double_calls == []
    assert worker.stats.results == {"answered_human": 2, "busy": 1, "no_answer": 3}


def test_dialer_data_worker_calls_again_after_a_retried_flow_outcome(engine: Engine) -> None:
    """A callee who hung up before deciding (no_decision) is called back; the second call confirms."""
    cid = make_campaign(
        engine,
        calling_hours=ALWAYS_OPEN,
        retry={"outcomes": {"no_decision": {"delay": "10m", "max_attempts": 2}}},
    )
    add_contacts(engine, cid, 2)
    a, b = "+8613800000000", "+8613800000001"
    undecided = Scripted(CallResult.ANSWERED_HUMAN, "no_decision", 200)
    clock = FakeClock(T0)
    placer = ScriptedPlacer(clock, {a: [undecided, ANSWER], b: [undecided] * 3})
    worker = DialerWorker(
        DialerStore(engine, timedelta(minutes=5)),
        Pacer(max_concurrent=2, calls_per_second=100.0, burst=5),
        placer,
        clock,
        WorkerConfig(owner="w"),
    )

    async def scenario() -> None:
        for _ in range(3):
            await worker.tick()
            await worker.wait_idle()
            clock.advance(600)

    asyncio.run(scenario())
    # b: two calls ended no_decision, the rule's cap: the flow's outcome stays the contact's.
    assert outcomes(engine) == {a: ("done", "confirmed", 2), b: ("done", "no_decision", 2)}
    assert len(placer.requests) == 4


def test_dialer_data_worker_calls_back_when_the_callee_asked(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    (contact_id,) = add_contacts(engine, cid, 1)  # Asia/Shanghai; T0 is 14:00 there
    asks = Scripted(CallResult.ANSWERED_HUMAN, "callback_requested", 200, callback_at="2025-03-03T17:30")
    clock = FakeClock(T0)
    placer = ScriptedPlacer(clock, {"+8613800000000": [asks, ANSWER]})
    worker = DialerWorker(
        DialerStore(engine, timedelta(minutes=5)),
        Pacer(max_concurrent=1, calls_per_second=100.0),
        placer,
        clock,
        WorkerConfig(owner="w"),
    )
    due = T0 + timedelta(hours=3, minutes=30)  # 17:30 in Shanghai

    async def scenario() -> None:
        await worker.tick()
        await worker.wait_idle()
        with Session(engine) as session:
            contact = session.get_one(Contact, contact_id)
            assert (contact.state, contact.next_attempt_at) == ("pending", due)
            event = session.scalars(select(ContactEvent).where(ContactEvent.kind == "callback")).one()
            assert "asked for 2025-03-03T17:30 local" in event.detail
        clock.advance(3 * 3600 + 29 * 60)
        assert await worker.tick() == 0  # not before the time asked for
        clock.advance(60)
        assert await worker.tick() == 1
        await worker.wait_idle()

    asyncio.run(scenario())
    assert outcomes(engine) == {"+8613800000000": ("done", "confirmed", 2)}


def test_dialer_data_worker_honours_concurrency_and_pause(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, 5)
    clock = FakeClock(T0)
    long_call = Scripted(CallResult.ANSWERED_HUMAN, "confirmed", 200, seconds=60)
    placer = ScriptedPlacer(clock, {f"+86{13800000000 + i}": [long_call] for i in range(5)})
    store = DialerStore(engine, timedelta(minutes=5))
    pacer = Pacer(max_concurrent=2, calls_per_second=100.0, burst=5)
    worker = DialerWorker(store, pacer, placer, clock, WorkerConfig(owner="w"))

    async def until(predicate: object) -> None:
        for _ in range(500):
            if callable(predicate) and predicate():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not reached")

    async def scenario() -> None:
        assert await worker.tick() == 2
        assert await worker.tick() == 0  # at the concurrency cap
        await until(lambda: len(placer.live) == 2)
        store.set_state("march", CampaignState.PAUSED)
        clock.advance(60)
        await until(lambda: worker.active_calls == 0)
        assert await worker.tick() == 0  # paused: nothing new, even with free slots
        store.set_state("march", CampaignState.RUNNING)
        assert await worker.tick() == 2
        await until(lambda: len(placer.live) == 2)
        clock.advance(60)
        await worker.wait_idle()

    asyncio.run(scenario())
    assert placer.max_live == 2 and placer.double_calls == []
    states = sorted(state for state, _, _ in outcomes(engine).values())
    assert states == ["done"] * 4 + ["pending"]


def test_dialer_data_worker_renews_lease_during_long_call(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    (contact_id,) = add_contacts(engine, cid, 1)
    clock = FakeClock(T0)
    placer = ScriptedPlacer(
        clock, {"+8613800000000": [Scripted(CallResult.ANSWERED_HUMAN, "confirmed", seconds=600)]}
    )
    store = DialerStore(engine, timedelta(seconds=90))
    worker = DialerWorker(store, Pacer(1, 1.0), placer, clock, WorkerConfig(owner="w"))

    async def scenario() -> None:
        await worker.tick()
        for _ in range(2000):  # the call is dialled (the check before it is a database write)
            if placer.invites:
                break
            await asyncio.sleep(0.005)
        for _ in range(20):  # 10 minutes in 30 s steps, the lease being 90 s
            for _ in range(10):  # let the renewal's database write land
                await asyncio.sleep(0.005)
            clock.advance(30)
            # Another worker's housekeeping never finds the live call's lease expired.
            assert store.reclaim_expired_leases(clock.now()) == 0
        await worker.wait_idle()

    asyncio.run(scenario())
    with Session(engine) as session:
        stored = session.get_one(Contact, contact_id)
    assert (stored.state, stored.outcome) == ("done", "confirmed")


def test_dialer_data_worker_run_loop_with_real_clock(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, 6, start=SystemClock().now() - timedelta(hours=1))
    clock = SystemClock()
    fake = FakeClock(T0)
    placer = ScriptedPlacer(fake, {f"+86{13800000000 + i}": [ANSWER] for i in range(6)})
    store = DialerStore(engine, timedelta(minutes=5))
    config = WorkerConfig(owner="w", poll_interval_s=0.05, housekeeping_interval_s=0.2)
    worker = DialerWorker(store, Pacer(3, 50.0, burst=3), placer, clock, config)

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(worker.run(stop))
        for _ in range(200):
            if store.campaign("march").state == "finished":
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(runner, 10)

    asyncio.run(scenario())
    assert store.campaign("march").state == "finished"
    assert {o for _, o, _ in outcomes(engine).values()} == {"confirmed"}


class CollectingPublisher:
    """An in-memory EventPublisher: what a broker would have received, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def publish(self, topic_suffix: str, payload: Mapping[str, object]) -> None:
        self.events.append((topic_suffix, dict(payload)))

    def start(self) -> None:
        return None

    async def aclose(self, drain_timeout_s: float = 2.0) -> None:
        return None


def publishing_worker(
    engine: Engine, clock: FakeClock, script: dict[str, list[Scripted]]
) -> tuple[DialerWorker, CollectingPublisher]:
    events = CollectingPublisher()
    config = WorkerConfig(owner="w1", trunk_uri="sip:{number}@trunk.example", ring_timeout_s=25)
    placer = ScriptedPlacer(clock, script)
    store = DialerStore(engine, timedelta(minutes=5))
    return DialerWorker(store, Pacer(2, 10.0), placer, clock, config, events=events), events


def test_dialer_data_worker_publishes_attempts_and_outcomes(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN, retry={"busy": "5m", "max_attempts": 2})
    add_contacts(engine, cid, 2)
    a, b = "+8613800000000", "+8613800000001"
    clock = FakeClock(T0)
    worker, events = publishing_worker(engine, clock, {a: [BUSY, ANSWER], b: [BUSY, BUSY]})

    async def scenario() -> None:
        for _ in range(2):  # two rounds, five minutes apart (the busy retry delay)
            for _ in range(3):
                await worker.tick()
                await worker.wait_idle()
                clock.advance(1)
            clock.advance(300)

    asyncio.run(scenario())
    attempts = [p for t, p in events.events if t == "dialer/march/attempt"]
    assert [(p["phone"], p["result"], p["attempt"]) for p in attempts] == [
        (a, "busy", 1),
        (b, "busy", 1),
        (a, "answered_human", 2),
        (b, "busy", 2),
    ]
    assert "retry_at" in attempts[0] and "outcome" not in attempts[0]
    outcomes = [(p["phone"], p["outcome"]) for t, p in events.events if t == "dialer/march/outcome"]
    assert outcomes == [(a, "confirmed"), (b, "max_attempts")]


def test_dialer_data_worker_publishes_expired_contacts(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, 1)
    clock = FakeClock(T0 + timedelta(hours=24))  # the 24 h window closed an hour ago, unreached
    worker, events = publishing_worker(engine, clock, {})
    asyncio.run(worker.housekeeping())
    assert [(t, p["phone"], p["outcome"]) for t, p in events.events] == [
        ("dialer/march/expired", "+8613800000000", "expired")
    ]


class BrokenFlowPlacer:
    """The SIP placer when the campaign's flow does not load: it fails before any INVITE."""

    checks_before_invite = True

    def __init__(self) -> None:
        self.calls = 0

    async def place(self, request: CallRequest) -> CallReport:
        self.calls += 1
        raise CampaignSetupError(f"flow {request.flow}: flows/x.yaml:3:5: unknown step 'nowhere'")


def test_dialer_data_worker_pauses_a_campaign_whose_flow_does_not_load(engine: Engine) -> None:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, 3)
    clock = FakeClock(T0)
    events = CollectingPublisher()
    placer = BrokenFlowPlacer()
    store = DialerStore(engine, timedelta(minutes=5))
    config = WorkerConfig(owner="w1", trunk_uri="sip:{number}@trunk.example", not_dialled_retry_s=30)
    worker = DialerWorker(store, Pacer(1, 10.0), placer, clock, config, events=events)

    async def scenario() -> None:
        for _ in range(5):  # without the pause, each round would lease a contact again
            await worker.tick()
            await worker.wait_idle()
            clock.advance(60)

    asyncio.run(scenario())
    assert placer.calls == 1
    assert store.campaign("march").state == CampaignState.PAUSED.value
    reason = "flow flows/library/callback.yaml: flows/x.yaml:3:5: unknown step 'nowhere'"
    assert events.events == [("dialer/march/paused", {"campaign": "march", "reason": reason})]
    stamped = {**events.events[0][1], "ts": "2026-03-02T10:00:00.000Z"}  # the publisher adds ts
    jsonschema.validate(stamped, load_schema(schema_name("ivr/dialer/march/paused", "ivr") or "?"))
    assert {attempts for _, _, attempts in outcomes(engine).values()} == {0}  # nothing burned
