"""Property: whatever the timing, no INVITE leaves outside the rules (issue 14).

Hypothesis drives the real worker and store (SQLite) with a hand-stepped clock across closing
times, the 2025 DST changes of New York and London, deadlines with margins, do-not-call
listings and a placer that takes a while (start-up, waiting for a line) before each INVITE.
The placer records the clock when it sends each INVITE; an oracle that shares no code with
the dialer then checks every INVITE against the rules in force at that moment.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dialer import dnc
from dialer.call_result import CallResult
from dialer.db import make_engine, upgrade_database
from dialer.models import Attempt, Contact
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.worker import CallReport, CallRequest, DialerWorker, WorkerConfig
from tests.component.dialer.dialer_data_fakes import FakeClock
from tests.component.dialer.dialer_data_helpers import add_contacts, make_campaign

DAYS = [datetime(2025, 3, d, tzinfo=UTC) for d in (8, 9, 29, 30)] + [
    datetime(2025, 10, 25, tzinfo=UTC),
    datetime(2025, 10, 26, tzinfo=UTC),
    datetime(2025, 11, 1, tzinfo=UTC),
    datetime(2025, 11, 2, tzinfo=UTC),
]
ZONES = ["America/New_York", "Europe/London", "America/Los_Angeles", "Asia/Shanghai"]
HOURS = ["09:00-17:08", "00:30-02:30", "01:00-03:00", "16:00-17:00", "08:00-20:00", "17:07-17:09"]
RESULTS = [CallResult.BUSY, CallResult.NO_ANSWER, CallResult.NETWORK_FAILURE, CallResult.ANSWERED_HUMAN]


@dataclass(frozen=True)
class Step:
    pre_invite_s: int
    result: CallResult
    seconds: int


class RecordingPlacer:
    """Waits ``pre_invite_s``, asks ``ready_to_dial``, records the INVITE time, then talks."""

    checks_before_invite = True

    def __init__(self, clock: FakeClock, scripts: dict[str, list[Step]]) -> None:
        self.clock = clock
        self.scripts = scripts
        self.busy = 0  # inside the check: the driver must not step the clock now
        self.invites: list[tuple[int, str, datetime]] = []

    async def place(self, request: CallRequest) -> CallReport:
        started = self.clock.now()
        script = self.scripts[request.number]
        step = script.pop(0) if script else Step(0, CallResult.BUSY, 0)
        if step.pre_invite_s:
            await self.clock.sleep(step.pre_invite_s)
        self.busy += 1
        try:
            assert request.ready_to_dial is not None
            if not await request.ready_to_dial():
                return CallReport(CallResult.CANCELLED, started, self.clock.now(), detail="not dialled")
            invite_at = self.clock.now()
            self.invites.append((request.contact_id, request.number, invite_at))
        finally:
            self.busy -= 1
        if step.seconds:
            await self.clock.sleep(step.seconds)
        return CallReport(
            step.result,
            started,
            self.clock.now(),
            sip_status=200 if step.result.connected else 486,
            flow_outcome="no_decision" if step.result.connected else None,
            invite_at=invite_at,
        )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "dialer.sqlite3"
    upgrade_database(f"sqlite:///{path}")
    return path


_RUNS = itertools.count()


contacts_st = st.lists(
    st.tuples(
        st.sampled_from(ZONES),
        st.one_of(st.integers(-600, 1800), st.integers(1800, 14 * 3600)),  # deadline, from the start
        st.lists(
            st.builds(
                Step,
                st.one_of(st.integers(0, 10), st.integers(10, 240)),
                st.sampled_from(RESULTS),
                st.one_of(st.integers(0, 60), st.integers(60, 900)),
            ),
            max_size=5,
        ),
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    day=st.sampled_from(DAYS),
    before_close_s=st.integers(0, 3 * 3600),
    hours=st.sampled_from(HOURS),
    margin_s=st.integers(0, 900),
    max_attempts=st.integers(1, 3),
    contacts=contacts_st,
    steps=st.lists(st.one_of(st.integers(1, 60), st.integers(60, 1800)), min_size=5, max_size=30),
    dnc_at=st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 29))),
)
def test_property_no_invite_outside_the_rules(
    template: Path,
    tmp_path: Path,
    *,
    day: datetime,
    before_close_s: int,
    hours: str,
    margin_s: int,
    max_attempts: int,
    contacts: list[tuple[str, int, list[Step]]],
    steps: list[int],
    dnc_at: tuple[int, int] | None,
) -> None:
    db = tmp_path / f"run-{next(_RUNS)}.sqlite3"
    shutil.copy(template, db)
    engine = make_engine(f"sqlite:///{db}")
    try:
        # Start shortly before the hours close for the first contact, on a DST-change weekend.
        close = time.fromisoformat(hours.split("-")[1])
        closing = datetime.combine(day.date(), close, tzinfo=ZoneInfo(contacts[0][0])).astimezone(UTC)
        _run(
            engine,
            closing - timedelta(seconds=before_close_s),
            hours=hours,
            margin_s=margin_s,
            max_attempts=max_attempts,
            contacts=contacts,
            steps=steps,
            dnc_at=dnc_at,
        )
    finally:
        engine.dispose()
        db.unlink(missing_ok=True)


def _run(
    engine: Engine,
    start: datetime,
    *,
    hours: str,
    margin_s: int,
    max_attempts: int,
    contacts: list[tuple[str, int, list[Step]]],
    steps: list[int],
    dnc_at: tuple[int, int] | None,
) -> None:
    retry = {
        "max_attempts": max_attempts,
        "deadline_margin": f"{margin_s}s",
        "busy": "1m",
        "no_answer": "2m",
        "network_failure": "1m",
        "outcomes": {"no_decision": "3m"},
    }
    cid = make_campaign(engine, calling_hours={"default": hours}, retry=retry)
    deadlines: dict[str, datetime] = {}
    zones: dict[str, str] = {}
    scripts: dict[str, list[Step]] = {}
    for n, (tz, deadline_s, script) in enumerate(contacts):
        deadline = start + timedelta(seconds=deadline_s)
        add_contacts(
            engine,
            cid,
            1,
            start=deadline - timedelta(days=2),
            window=timedelta(days=2),
            tz=tz,
            first_phone=13800000000 + n,
        )
        phone = f"+86{13800000000 + n}"
        deadlines[phone], zones[phone], scripts[phone] = deadline, tz, list(script)
    with Session(engine) as session, session.begin():  # due now, not two days ago
        for row in session.scalars(select(Contact)):
            row.next_attempt_at = start
    clock = FakeClock(start)
    placer = RecordingPlacer(clock, scripts)
    worker = DialerWorker(
        DialerStore(engine, timedelta(minutes=5)),
        Pacer(3, 100.0, burst=3),
        placer,
        clock,
        WorkerConfig(owner="prop", housekeeping_interval_s=60),
    )
    listed: dict[str, datetime] = {}

    async def settle() -> None:
        last: tuple[int, ...] = ()
        calm = 0
        for _ in range(4000):
            await asyncio.sleep(0.001)
            now = (
                clock.pending_sleeps,
                len(placer.invites),
                placer.busy,
                worker.active_calls,
                worker.stats.finished,
                worker.stats.cancelled,
            )
            calm = calm + 1 if placer.busy == 0 and now == last else 0
            last = now
            if calm >= 10:
                return

    async def scenario() -> None:
        for n, step in enumerate(steps):
            if dnc_at is not None and dnc_at[1] == n and dnc_at[0] < len(contacts):
                phone = f"+86{13800000000 + dnc_at[0]}"
                dnc.add(engine, phone, "property test", clock.now())
                listed[phone] = clock.now()
            await worker.tick()
            await settle()
            clock.advance(step)
            await settle()
        for _ in range(20):  # let the calls in progress end; nothing new is started
            if not worker.active_calls:
                break
            clock.advance(3600)
            await settle()
        await worker.wait_idle()

    asyncio.run(scenario())

    start_t, end_t = (time.fromisoformat(part) for part in hours.split("-"))
    counts: dict[str, int] = {}
    for _, phone, at in placer.invites:
        wall = at.astimezone(ZoneInfo(zones[phone])).time()
        assert start_t <= wall < end_t, f"INVITE to {phone} at {wall} local, hours {hours}"
        cutoff = deadlines[phone] - timedelta(seconds=margin_s)
        assert at < cutoff, f"INVITE at {at}, last start {cutoff}"
        assert phone not in listed or at < listed[phone], f"INVITE to a listed number at {at}"
        counts[phone] = counts.get(phone, 0) + 1
        assert counts[phone] <= max_attempts, f"{counts[phone]} INVITEs to {phone}, {max_attempts} allowed"
    with Session(engine) as session:
        rows = list(session.scalars(select(Attempt)))
        stored = {c.phone: c for c in session.scalars(select(Contact))}
    assert all(row.invite_at is None for row in rows if row.result == "cancelled"), "a cancelled dial left"
    for attempt in rows:
        if attempt.result == "cancelled":
            event(f"refused at dial time: {attempt.detail.split(' (')[0].split(' at 20')[0]}")
    event(f"INVITEs: {min(len(placer.invites), 5)}{'+' if len(placer.invites) >= 5 else ''}")
    assert sum(1 for row in rows if row.invite_at is not None) == len(placer.invites)
    first = stored["+8613800000000"]
    event(f"first contact: {first.outcome or first.state}")
    for phone, person in stored.items():
        assert person.attempts == counts.get(phone, 0), (phone, person.attempts, counts)
        if phone in listed and person.outcome_at is not None and person.outcome_at >= listed[phone]:
            assert person.outcome == "do_not_call", f"a contact listed while open ended {person.outcome}"
